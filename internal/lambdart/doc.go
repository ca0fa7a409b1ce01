// Package lambdart is a local, faithful implementation of the AWS Lambda
// Runtime API (version 2018-06-01) that drives a real, built function binary
// (a `bootstrap` file built with aws-lambda-go and `-tags lambda.norpc`)
// exactly as Lambda does, without Docker.
//
// Start execs the binary with the environment Lambda sets
// (AWS_LAMBDA_RUNTIME_API, AWS_LAMBDA_FUNCTION_NAME, _HANDLER, ...) and waits
// for its init phase to end, which is the first GET
// /2018-06-01/runtime/invocation/next. Invoke queues an event, serves it on
// that long poll with the Lambda-Runtime-* headers, and waits for the runtime
// to POST /invocation/{id}/response or /invocation/{id}/error.
//
// Like a Lambda execution environment, a Runtime is single-concurrency: it
// runs one invocation at a time and concurrent Invoke calls queue. Start
// several Runtimes for concurrency. The lifecycle also follows Lambda:
//
//   - a function that does not answer by its deadline is killed (SIGKILL to
//     its process group) and the invocation fails with Sandbox.Timedout;
//   - a process that exits mid-invocation fails it with Runtime.ExitError;
//   - a process that has exited (crash, panic, timeout kill) is replaced on
//     the next Invoke by a fresh one, a new cold start (see ColdStarts);
//   - a process that POSTs /runtime/init/error or exits before its first
//     /next fails its init with an *InitError carrying the reported error,
//     the exit status and the last lines of its output.
//
// Each execution environment (process) gets its own Runtime API listener on
// 127.0.0.1 with a free port, so a dying process can never take an event
// meant for its successor. The Extensions API is not served: the functions
// register no extension.
//
// Memory size is only advertised (AWS_LAMBDA_FUNCTION_MEMORY_SIZE); it is not
// enforced. PID and PeakRSS let benchmarks measure the process.
//
// The package needs a Unix host (process groups); peak RSS needs Linux.
package lambdart
