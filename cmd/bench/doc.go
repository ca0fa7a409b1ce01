// Command bench measures the built functions side by side with their floor
// and writes the figures to BENCHMARKS.md:
//
//	go run ./cmd/bench -out BENCHMARKS.md          # full run (make bench)
//	go run ./cmd/bench -out BENCHMARKS.md -quick   # seconds, small sizes (make bench-ci)
//
// What it measures, every figure a median with its spread over repeated runs:
//
//  1. Binary size of each bootstrap for arm64 and amd64, built with the
//     Makefile's build-<LogicalId> targets, against an aws-lambda-go hello
//     world (bench/hello) built by the same recipe; and that the get and
//     delete functions link no S3 client (go list -deps).
//  2. Init time (exec to the first /runtime/invocation/next, under the local
//     Lambda Runtime API of internal/lambdart) against the hello world, with
//     GODEBUG=inittrace=1 summarised per package and app.New timed in a fresh
//     process (bench/appnew).
//  3. Warm get and delete invocations through the Runtime API against the same
//     signed NXCloud call made with a plain http.Client, and the in-process
//     handler path against the plain call (the Go benchmarks of package bench,
//     -benchmem).
//  4. Secrets Manager: GetSecretValue calls per 1,000 warm invocations and
//     per TTL, and the first invocation's extra latency with the endpoint
//     delayed by 100 ms.
//  5. Streaming upload through the real upload function, MinIO and the local
//     NXCloud for 1, 16, 256 and 1024 MiB objects: throughput, CPU seconds per
//     GiB and peak RSS, against a raw io.Copy peer and a read-it-all peer
//     (bench/peer).
//  6. Signing: BenchmarkSign of pkg/nxcloud.
//
// Targets are reported as met or not met; nothing here fails on a number.
// The tool needs the MinIO server binary (make minio) and must run from
// inside the checkout.
package main
