// Package mediaapi is the HTTP face of the bundle: plain net/http handlers
// serving
//
//	GET    /media/{mediaId}?business_phone=8615812341795
//	DELETE /media/{mediaId}?business_phone=8615812341795
//	GET    /media/{mediaId}/content?business_phone=8615812341795   (302 to the file)
//	POST   /media/{mediaId}/archive?business_phone=8615812341795   (the file into S3)
//	POST   /uploads                                                (an upload session)
//	GET    /uploads/{uploadId}                                     (its status)
//
// that GetMediaFunction, DeleteMediaFunction, ArchiveMediaFunction and
// UploadSessionsFunction put behind an API Gateway HTTP API (payload format
// 2.0) through aws-lambda-go-api-proxy's httpadapter. Each function serves
// its own routes ([NewHandler], [NewArchiveHandler], [NewUploadsHandler]) on
// one net/http.ServeMux with Go 1.22 patterns; a path it does not serve is a
// JSON 404, a method it does not serve on one of its paths a JSON 405 with
// Allow. Request logging and the removal of API Gateway's stage prefix are
// middleware around the mux.
//
// The handlers validate their input before any call to NXCloud or to the
// stores, call a [MediaService] (the *nxcloud.Client in production), an
// [ArchiveService] (package s3archive) or an [UploadService] (the S3 store of
// package sessions), and map every failure to an HTTP status through one
// table. Every response is application/json; an error is
//
//	{"error": {"message": "...", "nxcloud_code": 9002}}
//
// where nxcloud_code is present only when NXCloud answered with a code.
//
// The package knows nothing about Secrets Manager or S3: it imports the
// S3-free contracts of the stores (packages session and archive), so that
// the get and delete functions link no S3 client. It knows little about
// Lambda: it reads the API Gateway request id and stage from the request's
// context when the adapter put them there, and works unchanged behind any
// net/http server.
package mediaapi
