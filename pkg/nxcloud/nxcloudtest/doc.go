// Package nxcloudtest is a local NXCloud: an http.Handler that serves
// /api/wa/getMedia, /api/wa/deleteMedia, /api/wa/uploadTemplateFile and
// /api/wa/uploadMedia as the NXCloud documentation describes them
// (nxcloud-docs/ and https://github.com/nxtele/http-api-document), for unit
// tests, end-to-end tests, benchmarks and the local run.
//
// It enforces the API call convention: POST only, every signed header present
// (accessKey, ts, bizType=2, action matching the path, sign), ts 13 digits
// within 60 s of the server's clock, algorithm md5 or sha256, and the
// signature, which it recomputes independently of package nxcloud (see
// [VerifySign]): over the exact raw body for JSON calls, over the headers
// only for multipart calls.
//
// Result codes (HTTP 200 unless a fault says otherwise):
//
//	0     Request successful
//	1001  authentication: unknown accessKey (also after a rotation, see Server.SetCredentials)
//	1002  authentication: bad signature
//	1003  authentication: ts malformed or more than 60 s from the server's clock
//	1004  authentication: a required header is missing or empty
//	1005  authentication: bizType is not 2, action does not match the path, or an unknown algorithm
//	9000  parameter exception: wrong Content-Type, a missing or wrong field, a type the
//	      upload does not accept (not a MediaType of nxcloud.TemplateFileTypes or
//	      nxcloud.MessageMediaTypes, spelled as the table spells it: no parameters, no
//	      alias), a file over its type's MaxBytes (uploadMedia), an empty or missing file,
//	      a chunked upload without Content-Length, or a Media-ID the server does not know
//	      ("media not found")
//	9002  merchant phone error: not 5 to 20 digits, configured with WithNotWhatsAppPhones,
//	      or not among WithKnownPhones when that option is given
//	9006  WhatsApp number not bound to the application: configured with WithUnboundPhones
//
// -1 and 9001 are never answered on their own; inject them with Server.Inject,
// along with HTTP errors, raw bodies, delays and dropped connections.
//
// Uploaded files are streamed: the server counts and hashes them (SHA-256)
// without holding them in memory unless WithKeepContent is set. uploadMedia
// answers a UUID id (a75c6d9b-a7c8-4f41-8f61-94548e92cbee), uploadTemplateFile
// a "4:..." handle; stored media are served by getMedia (mime_type, file_name
// and a url under /files/ that serves the bytes kept with WithKeepContent)
// and removed by deleteMedia. Every request is recorded as a Call under its
// action, and faults are injected per action.
package nxcloudtest
