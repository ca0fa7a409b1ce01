// Package mediaapi is the HTTP face of the NXCloud media API: a plain
// net/http handler serving
//
//	GET    /media/{mediaId}?business_phone=8615812341795
//	DELETE /media/{mediaId}?business_phone=8615812341795
//
// that GetMediaFunction and DeleteMediaFunction put behind an API Gateway HTTP
// API (payload format 2.0) through aws-lambda-go-api-proxy's httpadapter.
//
// The handler validates its input before any call to NXCloud, calls a
// [MediaService] (the *nxcloud.Client in production), and maps every failure
// to an HTTP status through one table (see [NewHandler]). Every response is
// application/json; an error is
//
//	{"error": {"message": "...", "nxcloud_code": 9002}}
//
// where nxcloud_code is present only when NXCloud answered with a code.
//
// The package knows nothing about Secrets Manager and little about Lambda: it
// reads the API Gateway request id and stage from the request's context when
// the adapter put them there, and works unchanged behind any net/http server.
package mediaapi
