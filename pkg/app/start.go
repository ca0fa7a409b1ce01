package app

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/metrics"
)

// invocations counts the invocations Start's handler has begun in this
// process: the first is the cold start.
var invocations atomic.Int64

// current is the invocation Start's handler is running or last ran, for
// the log lines logged without its context: aws-lambda-go logs a failed
// invocation's error after the handler returned, and Lambda runs one
// invocation at a time in a process, so it stays until the next one.
var current atomic.Pointer[invocation]

type invocation struct{ requestID, traceRoot string }

// coldStart reports whether this process has not begun a second invocation:
// the init phase and the first invocation are its cold start.
func coldStart() bool { return invocations.Load() <= 1 }

// Start is lambda.Start for every function of the bundle, the last call of
// its main: it sets the Go memory limit from the function's memory
// (MemoryLimit), then runs handler (any handler lambda.Start takes) so that
// the log lines know the invocation (cold_start, and the request id and
// trace of a line logged without the invocation's context), records the
// ColdStarts metric with rec (nil records none) at the first invocation, and
// keeps an error's message fit for the Runtime API (headerSafe). It does not
// return.
func Start(handler any, rec *metrics.Recorder) {
	if limit, ok := MemoryLimit(os.Getenv); ok {
		debug.SetMemoryLimit(limit)
	}
	lambda.Start(&invoker{next: lambda.NewHandler(handler), rec: rec, function: os.Getenv("AWS_LAMBDA_FUNCTION_NAME")})
}

// invoker is the lambda.Handler Start hands the runtime.
type invoker struct {
	next     lambda.Handler
	rec      *metrics.Recorder
	function string
}

// Invoke runs one invocation.
func (i *invoker) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	n := invocations.Add(1)
	id, trace := invocationOf(ctx)
	inv := &invocation{requestID: id, traceRoot: trace}
	current.Store(inv)
	if n == 1 {
		i.rec.ColdStart(ctx, i.function)
	}
	out, err := i.next.Invoke(ctx, payload)
	if err != nil {
		return nil, headerSafe(err)
	}
	return out, nil
}

// headerSafe returns err, or, when its message holds a byte an HTTP header
// cannot carry (a control character other than tab, DEL: an odd S3 key in
// it, say), the same error with those bytes escaped (\x7f) and its type
// kept (an aws-lambda-go error document, messages.InvokeResponse_Error, has
// its Message escaped). aws-lambda-go sends the message to the Runtime API in a header too
// (the X-Ray error cause): with such a byte that request fails and the
// runtime exits, and Lambda reports Runtime.ExitError instead of the error.
func headerSafe(err error) error {
	if ive, ok := err.(messages.InvokeResponse_Error); ok { //nolint:errorlint // aws-lambda-go takes this exact type as the error document
		if strings.ContainsFunc(ive.Message, notInHeader) {
			ive.Message = escapeForHeader(ive.Message)
			return ive
		}
		return err
	}
	msg := err.Error()
	if !strings.ContainsFunc(msg, notInHeader) {
		return err
	}
	t := reflect.TypeOf(err)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return messages.InvokeResponse_Error{Message: escapeForHeader(msg), Type: t.Name()}
}

// escapeForHeader writes the bytes notInHeader refuses as \x7f.
func escapeForHeader(s string) string {
	var b strings.Builder
	for _, r := range s {
		if notInHeader(r) {
			fmt.Fprintf(&b, "\\x%02x", r)
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func notInHeader(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }

// MemoryLimitShare is the share of the function's memory (MemorySize, which
// Lambda passes as AWS_LAMBDA_FUNCTION_MEMORY_SIZE, in MB) that MemoryLimit
// gives the Go runtime as its soft memory limit: the garbage collector works
// harder near it instead of letting the heap grow into the sandbox's hard
// limit, where Lambda kills the process. The rest is for what the Go
// runtime does not count (the binary's text, the kernel's buffers).
const MemoryLimitShare = 0.9

// MemoryLimit is the soft memory limit (debug.SetMemoryLimit, in bytes) of a
// function: MemoryLimitShare of AWS_LAMBDA_FUNCTION_MEMORY_SIZE MB. ok is
// false when GOMEMLIMIT is set (the Go runtime applies it itself) or the
// memory size is not a positive number of MB (not under Lambda).
func MemoryLimit(getenv func(string) string) (limit int64, ok bool) {
	if getenv("GOMEMLIMIT") != "" {
		return 0, false
	}
	mb, err := strconv.ParseInt(getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), 10, 64)
	if err != nil || mb <= 0 {
		return 0, false
	}
	return int64(float64(mb<<20) * MemoryLimitShare), true
}
