// Package bench holds what the benchmarks of the bundle share: the "floor"
// each function is measured against, built without any of the bundle's code.
//
//   - NewJSONRequest is the plain, hand-signed NXCloud getMedia/deleteMedia
//     request that a warm get or delete invocation is compared with.
//   - UploadFrame is the multipart framing of a hand-built uploadTemplateFile
//     request, for the raw io.Copy and naive peers of the upload function.
//   - Summarize turns repeated measurements into a median with its spread.
//
// The package's Go benchmarks (go test -bench . -benchmem ./bench) measure the
// in-process handler path of the get and delete functions
// (mediaapi.NewLambdaHandler over a real nxcloud.Client with
// nxcloud.StaticCredentials) against the plain call. The runner that measures
// the built binaries (sizes, init, warm invocations, secrets, streaming
// upload) and writes BENCHMARKS.md is cmd/bench; the reference binaries live
// in bench/hello (an aws-lambda-go hello world), bench/appnew (app.New timed
// in a fresh process) and bench/peer (the upload peers).
package bench
