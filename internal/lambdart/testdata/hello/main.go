// Command hello is a test function for package lambdart. Its behaviour is
// chosen by the event's "action": echo, error, sleep, panic, exit or big.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// event selects what the handler does.
type event struct {
	Action  string `json:"action"`
	Message string `json:"message"`
	MS      int    `json:"ms"`
	Code    int    `json:"code"`
	Bytes   int    `json:"bytes"`
	Env     string `json:"env"`
}

// reply echoes the event and what the function sees of its invocation.
type reply struct {
	Message      string `json:"message"`
	RequestID    string `json:"requestId"`
	DeadlineMS   int64  `json:"deadlineMs"`
	FunctionARN  string `json:"functionArn"`
	TraceID      string `json:"traceId"`
	FunctionName string `json:"functionName"`
	Memory       int    `json:"memory"`
	Version      string `json:"version"`
	Env          string `json:"env,omitempty"`
	PID          int    `json:"pid"`
}

// helloError is a custom error type; Lambda reports its type name.
type helloError struct{ msg string }

func (e *helloError) Error() string { return e.msg }

func handle(ctx context.Context, ev event) (any, error) {
	switch ev.Action {
	case "echo":
		lc, _ := lambdacontext.FromContext(ctx)
		dl, _ := ctx.Deadline()
		r := reply{
			Message:      ev.Message,
			DeadlineMS:   dl.UnixMilli(),
			TraceID:      os.Getenv("_X_AMZN_TRACE_ID"),
			FunctionName: lambdacontext.FunctionName,
			Memory:       lambdacontext.MemoryLimitInMB,
			Version:      lambdacontext.FunctionVersion,
			PID:          os.Getpid(),
		}
		if lc != nil {
			r.RequestID, r.FunctionARN = lc.AwsRequestID, lc.InvokedFunctionArn
		}
		if ev.Env != "" {
			r.Env = ev.Env + "=" + os.Getenv(ev.Env)
		}
		fmt.Println("hello: echo", ev.Message)
		return r, nil
	case "error":
		return nil, &helloError{msg: ev.Message}
	case "sleep":
		time.Sleep(time.Duration(ev.MS) * time.Millisecond) // ignores ctx on purpose
		return reply{Message: "woke"}, nil
	case "panic":
		panic("hello: " + ev.Message)
	case "exit":
		fmt.Fprintln(os.Stderr, "hello: exiting with", ev.Code)
		os.Exit(ev.Code)
	case "big":
		return json.RawMessage(`"` + strings.Repeat("x", ev.Bytes) + `"`), nil
	}
	return nil, fmt.Errorf("unknown action %q", ev.Action)
}

func main() {
	// HELLO_INIT_FAIL_FILE lets a test make a later cold start fail init.
	if f := os.Getenv("HELLO_INIT_FAIL_FILE"); f != "" {
		if _, err := os.Stat(f); err == nil {
			fmt.Fprintln(os.Stderr, "FOO: must be set")
			os.Exit(1)
		}
	}
	lambda.Start(handle)
}
