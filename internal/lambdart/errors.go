package lambdart

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrClosed is returned by Invoke once Close has been called.
var ErrClosed = errors.New("lambdart: runtime is closed")

// ErrPayloadTooLarge is returned by Invoke for an event larger than
// MaxRequestBytes, as Lambda rejects it with RequestEntityTooLargeException.
var ErrPayloadTooLarge = errors.New("lambdart: request payload exceeds the 6 MB synchronous invocation limit, send a smaller event")

// Error types used by Lambda for failures the function did not report itself.
const (
	// ErrorTypeTimeout is the error type of an invocation that ran past its deadline.
	ErrorTypeTimeout = "Sandbox.Timedout"
	// ErrorTypeExit is the error type of an invocation or init whose process exited.
	ErrorTypeExit = "Runtime.ExitError"
	// ErrorTypeResponseTooLarge is the error type of a response larger than MaxResponseBytes.
	ErrorTypeResponseTooLarge = "Function.ResponseSizeTooLarge"
	// ErrorTypeNoResponse is the error type of an invocation whose runtime asked
	// for the next event without answering it (lambdart's name; aws-lambda-go
	// never does this).
	ErrorTypeNoResponse = "Runtime.NoResponse"
	// ErrorTypeUnhandled is used when an error body carries no type at all.
	ErrorTypeUnhandled = "Unhandled"
)

// Result is the outcome of one invocation, as Lambda's Invoke API reports it.
type Result struct {
	// RequestID is the Lambda-Runtime-Aws-Request-Id given to the function.
	RequestID string
	// Payload is the response body on success. On a function error it holds
	// the error document (errorType, errorMessage, ...), as Lambda's Invoke
	// API returns it along with X-Amz-Function-Error.
	Payload []byte
	// ContentType is the Content-Type the runtime posted its response with.
	ContentType string
	// Error is non-nil when the invocation failed: the handler returned an
	// error or panicked, the function timed out, or the process exited.
	Error *FunctionError
	// ColdStart reports whether this was the first invocation served by its
	// process (execution environment).
	ColdStart bool
	// InitDuration is the init time of the process that served the
	// invocation (exec to first /next); it is set when ColdStart is true.
	InitDuration time.Duration
	// Duration is the time from handing the event to the function to its
	// answer (or to the timeout or exit).
	Duration time.Duration
}

// FunctionError is an invocation error: the body a runtime POSTs to
// /invocation/{id}/error, or one Lambda makes up for a timeout or a crash.
type FunctionError struct {
	// Type is errorType from the body, else the
	// Lambda-Runtime-Function-Error-Type header, else "Unhandled".
	Type string `json:"errorType"`
	// Message is errorMessage from the body (the raw body if it is not JSON).
	Message string `json:"errorMessage"`
	// StackTrace is the stackTrace member of the body, if any.
	StackTrace json.RawMessage `json:"stackTrace,omitempty"`
	// HeaderType is the Lambda-Runtime-Function-Error-Type header, if sent.
	HeaderType string `json:"-"`
}

// Error implements error.
func (e *FunctionError) Error() string {
	return e.Type + ": " + e.Message
}

// document returns the error as the JSON document Lambda's Invoke API returns.
func (e *FunctionError) document() []byte {
	b, err := json.Marshal(e)
	if err != nil { // StackTrace came from a valid JSON body; cannot happen
		return []byte(`{"errorType":"` + e.Type + `"}`)
	}
	return b
}

// InitError is a failed init phase: the function POSTed /runtime/init/error,
// exited before asking for its first event, or did not finish init in time.
type InitError struct {
	// Function is the function name.
	Function string
	// Type is the reported errorType, or Runtime.ExitError / Sandbox.Timedout.
	Type string
	// Message is the reported errorMessage, or a description of the exit.
	Message string
	// ExitStatus is the process's exit status ("exit status 1",
	// "signal: killed"), empty if unknown.
	ExitStatus string
	// Output is the last lines the process wrote to stdout and stderr
	// (bounded), which usually name the variable at fault.
	Output string
}

// Error implements error; it includes the captured output so a test can
// assert on the message the function printed.
func (e *InitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "lambdart: function %q failed init: %s: %s", e.Function, e.Type, e.Message)
	if e.ExitStatus != "" && !strings.Contains(e.Message, e.ExitStatus) {
		fmt.Fprintf(&b, " (%s)", e.ExitStatus)
	}
	if e.Output != "" {
		fmt.Fprintf(&b, "; output:\n%s", e.Output)
	}
	return b.String()
}
