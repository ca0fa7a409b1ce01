// Package localstack runs the whole bundle on this machine, as `make local`
// and the end-to-end tests use it: the local NXCloud (or the real one), a local
// Secrets Manager, MinIO with the media bucket and its S3 event notifications,
// and the real function binaries under the Lambda Runtime API behind an
// API Gateway HTTP API front.
//
// Every function runs with credentials of its own whose rights are exactly
// its policy in template.yaml (Roles): a MinIO user for the S3 part, its
// access key known to the local Secrets Manager for the rest. With
// Options.RecordS3 the functions reach S3 through a proxy that records their
// requests in Roles().Ledger(), for the least-privilege check of the
// end-to-end suite.
package localstack
