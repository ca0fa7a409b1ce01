// Package e2e holds no code: its tests drive the real function binaries,
// built with the Makefile's build-<LogicalId> targets, through the Lambda
// Runtime API (internal/lambdart) inside one local stack
// (internal/localstack): the local NXCloud, the local Secrets Manager, MinIO
// with the versioned media bucket and its ObjectCreated notifications, and
// the HTTP front that turns requests into API Gateway payload format 2.0
// events. They check from the outside every rule of SPEC.md that can be
// observed there: HTTP statuses and bodies, what reaches NXCloud, the tags
// on S3 objects, the failure queue, init failures and that no secret ever
// appears in the functions' output.
//
// One stack serves the whole package (TestMain). Tests that inject faults
// into the shared NXCloud or change the credentials run one after another;
// the others run in parallel afterwards. MinIO must be installed: run
// `make minio` once.
package e2e
