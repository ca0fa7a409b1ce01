// Package nxcloud is a client for the NXCloud WhatsApp media API: getMedia,
// deleteMedia and uploadTemplateFile, every call signed as the NXCloud API call
// convention describes (accessKey, ts, bizType, action and sign headers).
//
// The package knows nothing about AWS or Lambda: credentials come from a
// [CredentialsProvider], time from an injectable clock, and the transport from
// an injectable *http.Client.
//
// Upstream documentation:
//   - getMedia: https://github.com/nxtele/http-api-document (WhatsApp, Get Media File)
//   - deleteMedia: https://github.com/nxtele/http-api-document (WhatsApp, Delete Media File)
//   - uploadTemplateFile: https://github.com/nxtele/http-api-document (WhatsApp, Upload Template Example File)
//   - signing: https://github.com/nxtele/http-api-document/wiki (API call convention)
package nxcloud
