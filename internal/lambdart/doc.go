// Package lambdart is a local implementation of the AWS Lambda Runtime API
// (version 2018-06-01), as much of it as the bundle's functions use
// (aws-lambda-go with -tags lambda.norpc): it drives a built bootstrap
// binary exactly as Lambda does, without Docker.
//
// Start execs the binary with the environment Lambda sets
// (AWS_LAMBDA_RUNTIME_API, AWS_LAMBDA_FUNCTION_NAME, ...) and waits for its
// init phase to end, which is its first GET /runtime/invocation/next. Invoke
// serves an event on that long poll with the request id, deadline, X-Ray
// trace and invoked function ARN headers and waits for the POST of
// /invocation/{id}/response or /error; an error answers the error document
// as Lambda's Invoke API does.
//
// A Runtime is one execution environment: it runs one invocation at a time
// (concurrent Invoke calls queue) and follows Lambda's lifecycle:
//
//   - a function that does not answer by its deadline is killed (SIGKILL to
//     its process group) and the invocation fails with Sandbox.Timedout;
//   - a process that exits mid-invocation fails it with Runtime.ExitError;
//   - a process that has exited is replaced on the next Invoke by a fresh
//     one, a new cold start;
//   - a process that POSTs /runtime/init/error or exits before its first
//     /next fails its init with an *InitError carrying the reported error and
//     the exit status.
//
// Each process gets its own Runtime API listener on 127.0.0.1, so a dying
// process can never take an event meant for its successor. PID, PeakRSS and
// LastInitDuration let benchmarks measure the process. It needs a Unix host
// (process groups); PeakRSS needs Linux (/proc).
package lambdart
