// Package mediaapi is the HTTP face of the bundle: plain net/http handlers
// serving
//
//	GET    /media/{mediaId}?business_phone=8615812341795
//	DELETE /media/{mediaId}?business_phone=8615812341795
//	GET    /media/{mediaId}/content?business_phone=8615812341795   (302 to the file)
//	POST   /uploads                                                (an upload session)
//	GET    /uploads/{uploadId}                                     (its status)
//
// that GetMediaFunction, DeleteMediaFunction and UploadSessionsFunction put
// behind an API Gateway HTTP API (payload format 2.0) through
// aws-lambda-go-api-proxy's httpadapter.
//
// The handlers validate their input before any call to NXCloud or to the
// upload store, call a [MediaService] (the *nxcloud.Client in production) or
// an [UploadService] (the S3 store of package sessions), and map every
// failure to an HTTP status through one table (see [NewHandler] and
// [NewUploadsHandler]). Every response is application/json; an error is
//
//	{"error": {"message": "...", "nxcloud_code": 9002}}
//
// where nxcloud_code is present only when NXCloud answered with a code.
//
// The package knows nothing about Secrets Manager or S3 (the get and delete
// functions link no S3 client) and little about Lambda: it reads the API
// Gateway request id and stage from the request's context when the adapter
// put them there, and works unchanged behind any net/http server.
package mediaapi
