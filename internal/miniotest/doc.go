// Package miniotest runs a real MinIO server on the loopback interface, for the
// upload tests and for the local run of the bundle: no Docker, no AWS account.
//
// The MinIO binary is built once with `make minio` (go install of a pinned
// github.com/minio/minio) and found at $MINIO_BIN, else $(go env GOPATH)/bin/minio,
// else on PATH.
//
// In tests, [Start] gives each caller its own server stopped by t.Cleanup, and
// [Shared] gives every test of a package one server (stop it from TestMain with
// [StopShared]). Outside tests, [Run] starts a server the caller closes. Unless
// Options.DataDir names one, the data directory is temporary and lives on
// /dev/shm when the machine has it.
package miniotest
