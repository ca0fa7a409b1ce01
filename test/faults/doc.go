// Package faults holds no code: its tests drive the real, built function
// binaries (functions/*) through the local Lambda Runtime API
// (internal/lambdart) against a local NXCloud (nxcloudtest), a local Secrets
// Manager (internal/localsm) and a real MinIO (internal/miniotest), with
// faults injected on every dependency: NXCloud timeouts, slow and truncated
// answers, connection resets, non-JSON bodies, HTTP 429/500/503, rotated
// credentials; S3 objects deleted before processing, access denied,
// throttling; Secrets Manager outages and malformed secrets; and Lambda
// deadlines too short for the work.
//
// The invariants checked on every fault: the HTTP functions answer the
// SPEC.md status within the function's time budget; the upload function
// either completes once or returns an error (Lambda retries the event) and
// leaves the object untagged or rejected; an object is never tagged
// nxcloud-status=uploaded unless NXCloud answered that media id; an object
// is never uploaded twice when NXCloud never stored it the first time; and
// no captured function output holds a secret value, an access key or a
// request signature.
//
// A small TCP proxy (see proxy_test.go) stands in front of the local
// NXCloud for faults below HTTP: resets mid-body, truncated answers and slow
// drips in either direction; an HTTP proxy in front of MinIO answers 503
// SlowDown to the first requests.
package faults
