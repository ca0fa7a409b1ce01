package lambdart_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart/lambdarttest"
)

func TestMain(m *testing.M) { os.Exit(lambdarttest.Main(m)) }

// reply is what the hello function's echo says of its invocation.
type reply struct {
	RequestID  string `json:"requestId"`
	TraceID    string `json:"traceId"`
	ARN        string `json:"arn"`
	DeadlineMS int64  `json:"deadlineMs"`
	PID        int    `json:"pid"`
	Child      int    `json:"child"`
}

func hello(t *testing.T) string { return lambdarttest.Bootstrap(t, "./testdata/hello") }

// echo invokes the echo action and decodes the reply.
func echo(t *testing.T, rt *lambdart.Runtime, msg string) (*lambdart.Result, reply) {
	t.Helper()
	res, err := rt.Invoke(t.Context(), []byte(`{"action":"echo","message":"`+msg+`"}`))
	if err != nil || res.Error != nil {
		t.Fatalf("echo: %v %v", err, res)
	}
	var r reply
	if err := json.Unmarshal(res.Payload, &r); err != nil {
		t.Fatalf("decode echo reply %s: %v", res.Payload, err)
	}
	return res, r
}

// gone reports whether pid has stopped running (a zombie counts as gone),
// polling for a while: killed orphans are reaped by init in their time.
func gone(pid int) bool {
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) || (err == nil && strings.Contains(string(stat), ") Z ")) {
			return true
		}
	}
	return false
}

// TestInvoke: the function gets the event with a request id and the deadline
// of its timeout, answers through the Runtime API, and stays warm.
func TestInvoke(t *testing.T) {
	t.Parallel()
	out := &lambdarttest.Buffer{}
	rt := lambdarttest.Start(t, lambdart.Function{Name: "hello-fn", Path: hello(t), Timeout: 7 * time.Second, Stdout: out})
	if rt.ColdStarts() != 1 || rt.LastInitDuration() <= 0 || rt.PID() == 0 {
		t.Fatalf("after Start: ColdStarts=%d LastInitDuration=%v PID=%d, want 1, >0, >0", rt.ColdStarts(), rt.LastInitDuration(), rt.PID())
	}
	before := time.Now()
	res, r := echo(t, rt, "hi there")
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`).MatchString(res.RequestID) || r.RequestID != res.RequestID {
		t.Errorf("request id %q (the function saw %q), want one uuid", res.RequestID, r.RequestID)
	}
	// The X-Ray trace header, as Lambda hands it: a root of this second.
	root := fmt.Sprintf("Root=1-%08x-", before.Unix())
	if !regexp.MustCompile(`^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0$`).MatchString(res.TraceID) ||
		r.TraceID != res.TraceID || !strings.HasPrefix(res.TraceID, root) {
		t.Errorf("trace header %q (the function saw %q), want %s<24 hex>;Parent=<16 hex>;Sampled=0", res.TraceID, r.TraceID, root)
	}
	if r.ARN != lambdart.FunctionARN("hello-fn") {
		t.Errorf("invoked function ARN %q, want %q", r.ARN, lambdart.FunctionARN("hello-fn"))
	}
	if deadline := time.UnixMilli(r.DeadlineMS); deadline.Before(before.Add(6*time.Second)) || deadline.After(time.Now().Add(8*time.Second)) {
		t.Errorf("function deadline %v is not about now+7s", deadline)
	}
	if r.PID != rt.PID() || res.Duration <= 0 {
		t.Errorf("reply %+v, Duration %v; want pid %d and a duration", r, res.Duration, rt.PID())
	}
	if res2, r2 := echo(t, rt, "again"); r2.PID != r.PID || rt.ColdStarts() != 1 || res2.TraceID == res.TraceID {
		t.Errorf("second invocation on pid %d (first %d), ColdStarts %d, trace %q (first %q): want a warm invocation with its own trace",
			r2.PID, r.PID, rt.ColdStarts(), res2.TraceID, res.TraceID)
	}
	if rss, err := rt.PeakRSS(); err != nil || rss < 1<<20 {
		t.Errorf("PeakRSS = %d, %v; want at least 1 MiB", rss, err)
	}
	if !strings.Contains(out.String(), "hello: echo hi there") {
		t.Errorf("stdout %q lacks the function's output", out.String())
	}
}

// TestInvocationFailures: a handler error is the error document; a panic,
// an exit or a timeout (the process is killed) also end the process, and the
// next invocation cold-starts a fresh one.
func TestInvocationFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, event, wantType, wantMessage string
		timeout                            time.Duration
		restart                            bool
	}{
		{"handler error", `{"action":"error","message":"boom"}`, "helloError", "boom", 0, false},
		{"bad event", `[1,2]`, "UnmarshalTypeError", "cannot unmarshal", 0, false},
		{"panic", `{"action":"panic","message":"boom"}`, "string", "hello: boom", 0, true},
		{"exit", `{"action":"exit","code":3}`, lambdart.ErrorTypeExit, "Runtime exited with error: exit status 3", 0, true},
		{"exit zero", `{"action":"exit","code":0}`, lambdart.ErrorTypeExit, "Runtime exited without providing a reason", 0, true},
		{"timeout", `{"action":"sleep","ms":20000}`, lambdart.ErrorTypeTimeout, "Task timed out after 1.00 seconds", time.Second, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rt := lambdarttest.Start(t, lambdart.Function{Path: hello(t), Timeout: tc.timeout})
			pid := rt.PID()
			res, err := rt.Invoke(t.Context(), []byte(tc.event))
			if err != nil || res.Error == nil {
				t.Fatalf("Invoke = %v, %v; want a function error %s", res, err, tc.wantType)
			}
			if res.Error.Type != tc.wantType || !strings.Contains(res.Error.Message, tc.wantMessage) {
				t.Errorf("Result.Error = %v, want type %q and a message containing %q", res.Error, tc.wantType, tc.wantMessage)
			}
			var doc struct{ ErrorType, ErrorMessage string }
			if err := json.Unmarshal(res.Payload, &doc); err != nil || doc.ErrorType != tc.wantType || doc.ErrorMessage != res.Error.Message {
				t.Errorf("Result.Payload %s is not the error document (%v)", res.Payload, err)
			}
			if tc.timeout > 0 && res.Duration > tc.timeout+2*time.Second {
				t.Errorf("the timeout took %v, want about %v", res.Duration, tc.timeout)
			}
			_, r := echo(t, rt, "after")
			if restarted := r.PID != pid; restarted != tc.restart || rt.ColdStarts() != map[bool]int{false: 1, true: 2}[tc.restart] {
				t.Errorf("follow-up on pid %d (first %d), ColdStarts %d; want a restart: %v", r.PID, pid, rt.ColdStarts(), tc.restart)
			}
			if tc.restart && !gone(pid) {
				t.Errorf("the failed process %d still runs", pid)
			}
		})
	}
}

// TestInitFailure: a process that exits before its first /next, or reports
// its init error first as the bundle's functions do, fails Start with an
// *InitError carrying that report.
func TestInitFailure(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ mode, wantType, wantMessage string }{
		{"exit", lambdart.ErrorTypeExit, "Runtime exited with error: exit status 1"},
		{"post", "InvalidConfiguration", "FOO: must be set"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			rt, err := lambdart.Start(t.Context(), lambdart.Function{Name: "initfail", Path: hello(t), Env: []string{"HELLO_INIT=" + tc.mode}})
			var ie *lambdart.InitError
			if !errors.As(err, &ie) {
				if rt != nil {
					_ = rt.Close()
				}
				t.Fatalf("Start = %v, want an *InitError", err)
			}
			if ie.Function != "initfail" || ie.Type != tc.wantType || ie.Message != tc.wantMessage || ie.ExitStatus != "exit status 1" {
				t.Errorf("InitError = %+v, want type %q, message %q, exit status 1", ie, tc.wantType, tc.wantMessage)
			}
		})
	}
}

// TestConcurrentInvokesQueue: one execution environment runs one
// invocation at a time.
func TestConcurrentInvokesQueue(t *testing.T) {
	t.Parallel()
	rt := lambdarttest.Start(t, lambdart.Function{Path: hello(t)})
	start := time.Now()
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if res, err := rt.Invoke(t.Context(), []byte(`{"action":"sleep","ms":300}`)); err != nil || res.Error != nil {
				t.Errorf("invoke: %v %v", err, res)
			}
		})
	}
	wg.Wait()
	if elapsed := time.Since(start); elapsed < 900*time.Millisecond || rt.ColdStarts() != 1 {
		t.Errorf("3 invocations of 300ms took %v on %d processes; want them in turn on one", elapsed, rt.ColdStarts())
	}
}

// TestCloseKillsStubbornProcessAndChildren: Close during an invocation ends
// it with ErrClosed, and a process that ignores SIGTERM is killed after the
// grace with the child it started.
func TestCloseKillsStubbornProcessAndChildren(t *testing.T) {
	t.Parallel()
	rt, err := lambdart.Start(t.Context(), lambdart.Function{Path: hello(t), Env: []string{"HELLO_STUBBORN=1"}, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// The reply names the child: no waiting on the output pipe.
	_, r := echo(t, rt, "child?")
	if r.Child == 0 {
		_ = rt.Close()
		t.Fatal("the function started no child")
	}
	done := make(chan error, 1)
	go func() {
		_, err := rt.Invoke(context.Background(), []byte(`{"action":"sleep","ms":60000}`))
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	if err := rt.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if took := time.Since(start); took < lambdart.ShutdownGrace {
		t.Errorf("Close took %v; a process ignoring SIGTERM should get the %v grace", took, lambdart.ShutdownGrace)
	}
	if err := <-done; !errors.Is(err, lambdart.ErrClosed) {
		t.Errorf("in-flight Invoke = %v, want ErrClosed", err)
	}
	for _, p := range []int{r.PID, r.Child} {
		if !gone(p) {
			t.Errorf("process %d still runs after Close", p)
		}
	}
	if _, err := rt.Invoke(t.Context(), []byte(`{}`)); !errors.Is(err, lambdart.ErrClosed) || rt.PID() != 0 || rt.Close() != nil {
		t.Errorf("after Close: Invoke = %v, PID %d; want ErrClosed, 0, and Close again nil", err, rt.PID())
	}
}
