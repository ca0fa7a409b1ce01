// Package miniotest runs a real MinIO server on the loopback interface, for
// the tests and for the local run of the bundle: no Docker, no AWS account.
//
// The MinIO binary is installed once by `make minio` (go install of a pinned
// github.com/minio/minio) and found at $MINIO_BIN, else in $GOBIN or
// $(go env GOPATH)/bin, else on PATH. [Run] starts a server the caller
// closes; in tests, [Shared] gives every test of a package one server (run
// the tests with [Main], or call [StopShared] after them), on which each test
// makes its own bucket ([Server.NewBucket]). The data lives in a temporary
// directory, on /dev/shm when the machine has it. [Tags] and [Keys] read
// what the functions leave in a bucket.
package miniotest
