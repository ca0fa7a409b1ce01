// Command hello is the test function of package lambdart: what it does is
// the event's "action" (echo, error, sleep, panic or exit). HELLO_INIT makes
// its init fail: "exit" exits, "post" reports the error to the Runtime API
// as the bundle's functions do (app.InitFailed). HELLO_STUBBORN makes it
// ignore SIGTERM and leave a child process behind.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/app"
)

type event struct {
	Action  string `json:"action"`
	Message string `json:"message"`
	MS      int    `json:"ms"`
	Code    int    `json:"code"`
}

// reply is what the function sees of its invocation.
type reply struct {
	Message    string `json:"message"`
	RequestID  string `json:"requestId"`
	TraceID    string `json:"traceId"`
	ARN        string `json:"arn"`
	DeadlineMS int64  `json:"deadlineMs"`
	PID        int    `json:"pid"`
	Child      int    `json:"child"`
}

// helloError is a custom error type; Lambda reports its type name.
type helloError struct{ msg string }

func (e *helloError) Error() string { return e.msg }

var child int

func handle(ctx context.Context, ev event) (any, error) {
	switch ev.Action {
	case "echo":
		lc, _ := lambdacontext.FromContext(ctx)
		dl, _ := ctx.Deadline()
		fmt.Println("hello: echo", ev.Message)
		trace, _ := ctx.Value("x-amzn-trace-id").(string) // where aws-lambda-go puts Lambda-Runtime-Trace-Id
		return reply{Message: ev.Message, RequestID: lc.AwsRequestID, TraceID: trace, ARN: lc.InvokedFunctionArn, DeadlineMS: dl.UnixMilli(), PID: os.Getpid(), Child: child}, nil
	case "error":
		return nil, &helloError{msg: ev.Message}
	case "sleep":
		time.Sleep(time.Duration(ev.MS) * time.Millisecond) // ignores ctx on purpose
		return reply{Message: "woke"}, nil
	case "panic":
		panic("hello: " + ev.Message)
	case "exit":
		os.Exit(ev.Code)
	}
	return nil, fmt.Errorf("unknown action %q", ev.Action)
}

func main() {
	switch os.Getenv("HELLO_INIT") {
	case "exit":
		fmt.Fprintln(os.Stderr, "FOO: must be set")
		os.Exit(1)
	case "post":
		app.InitFailed(app.NewLogger(os.Getenv), os.Getenv, errors.New("FOO: must be set"))
	}
	if os.Getenv("HELLO_STUBBORN") != "" {
		signal.Ignore(syscall.SIGTERM)
		cmd := exec.Command("sleep", "300")
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "hello: start child:", err)
			os.Exit(2)
		}
		child = cmd.Process.Pid
	}
	lambda.Start(handle)
}
