// Package nxcloud is a client for the NXCloud WhatsApp media API: getMedia,
// deleteMedia, uploadTemplateFile and uploadMedia, every call signed as the
// NXCloud API call convention describes (accessKey, ts, bizType, action and
// sign headers).
//
// The two uploads take the same streamed multipart request and differ in
// what they make: uploadTemplateFile a template header handle ("4:...", for
// createTemplate), uploadMedia a message media id (a UUID, for messages and
// for getMedia and deleteMedia). [TemplateFileTypes] and [MessageMediaTypes]
// are the files each accepts, so that a caller can decide a file's type and
// whether its size is allowed before sending a byte.
//
// The package knows nothing about AWS or Lambda: credentials come from a
// [CredentialsProvider], time from an injectable clock, and the transport from
// an injectable *http.Client.
//
// Upstream documentation:
//   - getMedia: https://github.com/nxtele/http-api-document (WhatsApp, Get Media File)
//   - deleteMedia: https://github.com/nxtele/http-api-document (WhatsApp, Delete Media File)
//   - uploadTemplateFile: https://github.com/nxtele/http-api-document (WhatsApp, Upload Template Example File)
//   - uploadMedia: https://github.com/nxtele/http-api-document (WhatsApp, Upload Media File)
//   - signing: https://github.com/nxtele/http-api-document/wiki (API call convention)
package nxcloud
