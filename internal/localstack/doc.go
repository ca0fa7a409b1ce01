// Package localstack runs the whole bundle on this machine, as `make local`
// and the end-to-end tests use it: the local NXCloud (or the real one), a local
// Secrets Manager, MinIO with the media bucket and its S3 event notifications,
// and the real function binaries under the Lambda Runtime API behind an
// API Gateway HTTP API front.
package localstack
