package lambdart_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
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

// lockedBuffer is a bytes.Buffer safe for the test to read while the
// runtime writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// reply is the hello function's echo.
type reply struct {
	Message      string `json:"message"`
	RequestID    string `json:"requestId"`
	DeadlineMS   int64  `json:"deadlineMs"`
	FunctionARN  string `json:"functionArn"`
	TraceID      string `json:"traceId"`
	FunctionName string `json:"functionName"`
	Memory       int    `json:"memory"`
	Version      string `json:"version"`
	Env          string `json:"env"`
	PID          int    `json:"pid"`
}

func hello(t *testing.T) string { return lambdarttest.Bootstrap(t, "./testdata/hello") }

func initfail(t *testing.T) string { return lambdarttest.Bootstrap(t, "./testdata/initfail") }

// invoke invokes rt and fails the test on an invoke error.
func invoke(t *testing.T, rt *lambdart.Runtime, event string) *lambdart.Result {
	t.Helper()
	res, err := rt.Invoke(t.Context(), []byte(event))
	if err != nil {
		t.Fatalf("Invoke(%s): %v", event, err)
	}
	return res
}

// echo invokes the echo action and decodes the reply.
func echo(t *testing.T, rt *lambdart.Runtime, msg string) (*lambdart.Result, reply) {
	t.Helper()
	res := invoke(t, rt, `{"action":"echo","message":"`+msg+`","env":"CUSTOM"}`)
	if res.Error != nil {
		t.Fatalf("echo failed: %v", res.Error)
	}
	var r reply
	if err := json.Unmarshal(res.Payload, &r); err != nil {
		t.Fatalf("decode echo reply %s: %v", res.Payload, err)
	}
	return res, r
}

// processGone reports whether pid and its process group have stopped
// running. Killed orphans are reaped asynchronously by init, so it polls
// for a while and counts a zombie (state Z) as gone.
func processGone(pid int) bool {
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if !running(pid) && errors.Is(syscall.Kill(-pid, 0), syscall.ESRCH) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// running reports whether pid exists and is not a zombie.
func running(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
	}
	// "pid (comm) S ...": the state follows the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

func TestEchoRoundTrip(t *testing.T) {
	t.Parallel()
	var stdout lockedBuffer
	rt := lambdarttest.Start(t, lambdart.Function{
		Name:     "hello-fn",
		Path:     hello(t),
		Env:      []string{"CUSTOM=yes", "AWS_REGION=eu-west-1", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512"},
		Timeout:  7 * time.Second,
		MemoryMB: 256,
		Stdout:   &stdout,
	})
	if rt.ColdStarts() != 1 || rt.LastInitDuration() <= 0 || rt.PID() == 0 || rt.InitError() != nil {
		t.Fatalf("after Start: ColdStarts=%d LastInitDuration=%v PID=%d InitError=%v, want 1, >0, >0, nil",
			rt.ColdStarts(), rt.LastInitDuration(), rt.PID(), rt.InitError())
	}

	before := time.Now()
	res, r := echo(t, rt, "hi there")
	if r.Message != "hi there" {
		t.Errorf("message = %q, want %q", r.Message, "hi there")
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(res.RequestID) {
		t.Errorf("request id %q is not a uuid", res.RequestID)
	}
	if r.RequestID != res.RequestID {
		t.Errorf("function saw request id %q, Result has %q", r.RequestID, res.RequestID)
	}
	deadline := time.UnixMilli(r.DeadlineMS)
	if lo, hi := before.Add(7*time.Second-time.Second), time.Now().Add(7*time.Second+time.Second); deadline.Before(lo) || deadline.After(hi) {
		t.Errorf("function deadline %v is not about now+7s (%v..%v)", deadline, lo, hi)
	}
	if want := "arn:aws:lambda:eu-west-1:000000000000:function:hello-fn"; r.FunctionARN != want || rt.ARN() != want {
		t.Errorf("function arn = %q, rt.ARN() = %q, want %q", r.FunctionARN, rt.ARN(), want)
	}
	if !regexp.MustCompile(`^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0$`).MatchString(r.TraceID) {
		t.Errorf("trace id %q does not look like an X-Ray header", r.TraceID)
	}
	if r.FunctionName != "hello-fn" || r.Version != "$LATEST" || r.Memory != 512 || r.Env != "CUSTOM=yes" {
		t.Errorf("function saw name=%q version=%q memory=%d env=%q; want hello-fn, $LATEST, 512 (Env wins), CUSTOM=yes",
			r.FunctionName, r.Version, r.Memory, r.Env)
	}
	if r.PID != rt.PID() {
		t.Errorf("function pid %d, rt.PID() %d", r.PID, rt.PID())
	}
	if !res.ColdStart || res.InitDuration != rt.LastInitDuration() || res.Duration <= 0 {
		t.Errorf("first result ColdStart=%v InitDuration=%v Duration=%v, want true, %v, >0",
			res.ColdStart, res.InitDuration, res.Duration, rt.LastInitDuration())
	}

	res2, r2 := echo(t, rt, "again")
	if res2.ColdStart || res2.InitDuration != 0 || res2.RequestID == res.RequestID || r2.PID != r.PID {
		t.Errorf("second result ColdStart=%v InitDuration=%v id=%q pid=%d; want a warm invoke on pid %d with a new id",
			res2.ColdStart, res2.InitDuration, res2.RequestID, r2.PID, r.PID)
	}
	if rt.ColdStarts() != 1 {
		t.Errorf("ColdStarts = %d, want 1", rt.ColdStarts())
	}
	if rss, err := rt.PeakRSS(); err != nil || rss < 1<<20 {
		t.Errorf("PeakRSS = %d, %v; want at least 1 MiB", rss, err)
	}
	if !strings.Contains(stdout.String(), "hello: echo hi there") {
		t.Errorf("stdout %q lacks the function's output", stdout.String())
	}

	pid := rt.PID()
	if err := rt.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !processGone(pid) {
		t.Errorf("process %d still exists after Close", pid)
	}
	if _, err := rt.Invoke(t.Context(), []byte(`{}`)); !errors.Is(err, lambdart.ErrClosed) {
		t.Errorf("Invoke after Close = %v, want ErrClosed", err)
	}
	if err := rt.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}

func TestInvocationFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		timeout        time.Duration
		event          string
		wantType       string
		wantMessage    string // substring
		wantStack      bool
		wantColdStarts int // after a follow-up echo
	}{
		{"handler error", 0, `{"action":"error","message":"boom"}`, "helloError", "boom", false, 1},
		{"unknown action", 0, `{"action":"nope"}`, "errorString", `unknown action "nope"`, false, 1},
		{"bad event json", 0, `[1,2]`, "UnmarshalTypeError", "cannot unmarshal", false, 1},
		{"panic", 0, `{"action":"panic","message":"boom"}`, "string", "hello: boom", true, 2},
		{"exit", 0, `{"action":"exit","code":3}`, lambdart.ErrorTypeExit, "Runtime exited with error: exit status 3", false, 2},
		{"exit zero", 0, `{"action":"exit","code":0}`, lambdart.ErrorTypeExit, "Runtime exited without providing a reason", false, 2},
		{"timeout", time.Second, `{"action":"sleep","ms":20000}`, lambdart.ErrorTypeTimeout, "Task timed out after 1.00 seconds", false, 2},
		{"response too large", 30 * time.Second, fmt.Sprintf(`{"action":"big","bytes":%d}`, lambdart.MaxResponseBytes), lambdart.ErrorTypeResponseTooLarge, "6291556 bytes", false, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rt := lambdarttest.Start(t, lambdart.Function{Path: hello(t), Timeout: tc.timeout})
			pid := rt.PID()
			res := invoke(t, rt, tc.event)
			if res.Error == nil {
				t.Fatalf("Result.Error = nil, want %s; payload %.200s", tc.wantType, res.Payload)
			}
			if res.Error.Type != tc.wantType || !strings.Contains(res.Error.Message, tc.wantMessage) {
				t.Errorf("Result.Error = %v, want type %q and a message containing %q", res.Error, tc.wantType, tc.wantMessage)
			}
			if (len(res.Error.StackTrace) > 0) != tc.wantStack {
				t.Errorf("stack trace %s, want present=%v", res.Error.StackTrace, tc.wantStack)
			}
			var doc struct{ ErrorType, ErrorMessage string }
			if err := json.Unmarshal(res.Payload, &doc); err != nil || doc.ErrorType != tc.wantType {
				t.Errorf("Result.Payload %s is not the error document (%v)", res.Payload, err)
			}
			if tc.name == "timeout" && res.Duration > 6*time.Second {
				t.Errorf("timeout took %v, want about 1s", res.Duration)
			}
			_, r := echo(t, rt, "after")
			if got := rt.ColdStarts(); got != tc.wantColdStarts {
				t.Errorf("ColdStarts = %d, want %d", got, tc.wantColdStarts)
			}
			if restarted := r.PID != pid; restarted != (tc.wantColdStarts == 2) {
				t.Errorf("follow-up ran on pid %d, first pid %d; want a restart: %v", r.PID, pid, tc.wantColdStarts == 2)
			}
			if tc.wantColdStarts == 2 {
				if !processGone(pid) {
					t.Errorf("the failed process %d still exists", pid)
				}
				if n := len(rt.InitDurations()); n != 2 {
					t.Errorf("InitDurations has %d entries, want 2", n)
				}
			}
		})
	}
}

func TestInitFailure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		env         []string
		initTimeout time.Duration
		wantType    string
		wantMessage string
		wantStatus  string
		wantOutput  string
	}{
		{"exit", nil, 0, lambdart.ErrorTypeExit, "Runtime exited with error: exit status 1", "exit status 1", "initfail: starting\nFOO: must be set"},
		{"post init error", []string{"INITFAIL_MODE=post"}, 0, "ConfigError", "FOO: must be set", "exit status 1", "init error posted, status 202"},
		{"post init error and hang", []string{"INITFAIL_MODE=post", "INITFAIL_STAY=1"}, 0, "ConfigError", "FOO: must be set", "signal: killed", "init error posted"},
		{"init timeout", []string{"INITFAIL_MODE=hang"}, 500 * time.Millisecond, lambdart.ErrorTypeTimeout, "init phase did not finish within 0.50 seconds", "signal: killed", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rt, err := lambdart.Start(t.Context(), lambdart.Function{Name: "initfail", Path: initfail(t), Env: tc.env, InitTimeout: tc.initTimeout})
			if err == nil {
				_ = rt.Close()
				t.Fatal("Start succeeded, want an init error")
			}
			var ie *lambdart.InitError
			if !errors.As(err, &ie) {
				t.Fatalf("Start error %v (%T) is not an *InitError", err, err)
			}
			if ie.Function != "initfail" || ie.Type != tc.wantType || ie.Message != tc.wantMessage || ie.ExitStatus != tc.wantStatus {
				t.Errorf("InitError = %+v, want type %q message %q status %q", ie, tc.wantType, tc.wantMessage, tc.wantStatus)
			}
			if !strings.Contains(ie.Output, tc.wantOutput) {
				t.Errorf("InitError.Output = %q, want it to contain %q", ie.Output, tc.wantOutput)
			}
			if tc.wantType != lambdart.ErrorTypeTimeout && !strings.Contains(err.Error(), "FOO: must be set") {
				t.Errorf("error %q does not name the variable", err)
			}
		})
	}
}

func TestInitFailureOnRestart(t *testing.T) {
	t.Parallel()
	marker := filepath.Join(t.TempDir(), "fail-init")
	rt := lambdarttest.Start(t, lambdart.Function{Path: hello(t), Env: []string{"HELLO_INIT_FAIL_FILE=" + marker}})
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if res := invoke(t, rt, `{"action":"exit","code":2}`); res.Error == nil || res.Error.Type != lambdart.ErrorTypeExit {
		t.Fatalf("exit action: Result.Error = %v, want Runtime.ExitError", res.Error)
	}
	_, err := rt.Invoke(t.Context(), []byte(`{"action":"echo"}`))
	var ie *lambdart.InitError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "FOO: must be set") {
		t.Fatalf("Invoke on a failing cold start = %v, want an *InitError naming FOO", err)
	}
	if rt.InitError() != ie || rt.ColdStarts() != 2 {
		t.Errorf("InitError() = %v, ColdStarts() = %d; want the returned error and 2", rt.InitError(), rt.ColdStarts())
	}
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	echo(t, rt, "fixed")
	if rt.InitError() != nil || rt.ColdStarts() != 3 || len(rt.InitDurations()) != 2 {
		t.Errorf("after recovery InitError() = %v, ColdStarts() = %d, InitDurations() = %v; want nil, 3, two entries",
			rt.InitError(), rt.ColdStarts(), rt.InitDurations())
	}
}

func TestConcurrentInvokesQueue(t *testing.T) {
	t.Parallel()
	rt := lambdarttest.Start(t, lambdart.Function{Path: hello(t)})
	const n = 3
	var wg sync.WaitGroup
	results := make([]*lambdart.Result, n)
	errs := make([]error, n)
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = rt.Invoke(t.Context(), []byte(`{"action":"sleep","ms":300}`))
		})
	}
	wg.Wait()
	ids := map[string]bool{}
	for i := range n {
		if errs[i] != nil || results[i].Error != nil {
			t.Fatalf("invoke %d: %v, %v", i, errs[i], results[i].Error)
		}
		ids[results[i].RequestID] = true
	}
	if len(ids) != n {
		t.Errorf("request ids %v are not distinct", ids)
	}
	if elapsed := time.Since(start); elapsed < n*300*time.Millisecond {
		t.Errorf("%d invokes of 300ms took %v; they ran concurrently on one single-concurrency runtime", n, elapsed)
	}
	if rt.ColdStarts() != 1 {
		t.Errorf("ColdStarts = %d, want 1", rt.ColdStarts())
	}
}

func TestInvokeContextCanceled(t *testing.T) {
	t.Parallel()
	rt := lambdarttest.Start(t, lambdart.Function{Path: hello(t)})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := rt.Invoke(ctx, []byte(`{"action":"sleep","ms":600}`)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Invoke with a short ctx = %v, want context.DeadlineExceeded", err)
	}
	// The abandoned invocation runs to its end on the same process.
	start := time.Now()
	echo(t, rt, "next")
	if time.Since(start) < 300*time.Millisecond || rt.ColdStarts() != 1 {
		t.Errorf("next invoke took %v with ColdStarts %d; want it to wait for the running one on the same process",
			time.Since(start), rt.ColdStarts())
	}
}

func TestCloseDuringInvoke(t *testing.T) {
	t.Parallel()
	rt, err := lambdart.Start(t.Context(), lambdart.Function{Path: hello(t), Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	pid := rt.PID()
	done := make(chan error, 1)
	go func() {
		_, err := rt.Invoke(context.Background(), []byte(`{"action":"sleep","ms":60000}`))
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	if err := rt.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, lambdart.ErrClosed) {
			t.Errorf("in-flight Invoke = %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("in-flight Invoke did not return after Close")
	}
	if !processGone(pid) {
		t.Errorf("process %d still exists after Close", pid)
	}
	if rt.PID() != 0 || rt.Addr() != "" {
		t.Errorf("after Close PID() = %d, Addr() = %q; want 0 and empty", rt.PID(), rt.Addr())
	}
}

func TestRuntimeAPIErrors(t *testing.T) {
	t.Parallel()
	rt := lambdarttest.Start(t, lambdart.Function{Path: hello(t)})
	base := "http://" + rt.Addr()
	tests := []struct {
		name, method, path, body string
		header                   http.Header
		wantStatus               int
		wantType                 string
	}{
		{"response for unknown id", http.MethodPost, "/2018-06-01/runtime/invocation/not-an-id/response", `{}`, nil, http.StatusBadRequest, "InvalidRequestID"},
		{"error for unknown id", http.MethodPost, "/2018-06-01/runtime/invocation/not-an-id/error", `{}`, nil, http.StatusBadRequest, "InvalidRequestID"},
		{"init error after init", http.MethodPost, "/2018-06-01/runtime/init/error", `{"errorType":"X","errorMessage":"late"}`, nil, http.StatusForbidden, "InvalidStateTransition"},
		{"unknown path", http.MethodGet, "/2018-06-01/runtime/nope", "", nil, http.StatusNotFound, ""},
		{"wrong method", http.MethodGet, "/2018-06-01/runtime/invocation/x/response", "", nil, http.StatusMethodNotAllowed, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tc.method, base+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header[k] = v
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if tc.wantType != "" {
				var doc struct{ ErrorType string }
				if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || doc.ErrorType != tc.wantType {
					t.Errorf("errorType = %q (%v), want %q", doc.ErrorType, err, tc.wantType)
				}
			}
		})
	}
	// The runtime is unharmed.
	echo(t, rt, "still fine")
}

func TestInvokeRequestTooLarge(t *testing.T) {
	t.Parallel()
	rt := lambdarttest.Start(t, lambdart.Function{Path: hello(t)})
	if _, err := rt.Invoke(t.Context(), make([]byte, lambdart.MaxRequestBytes+1)); !errors.Is(err, lambdart.ErrPayloadTooLarge) {
		t.Errorf("Invoke with a 6 MB+1 event = %v, want ErrPayloadTooLarge", err)
	}
}

func TestStartValidation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notExec := filepath.Join(dir, "bootstrap")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		fn   lambdart.Function
		want string
	}{
		{"no path", lambdart.Function{}, "Function.Path is empty"},
		{"missing binary", lambdart.Function{Path: filepath.Join(dir, "nope")}, "build the function first"},
		{"directory", lambdart.Function{Path: dir}, "not an executable file"},
		{"not executable", lambdart.Function{Path: notExec}, "not an executable file"},
		{"negative timeout", lambdart.Function{Path: hello(t), Timeout: -time.Second}, "Function.Timeout"},
		{"bad env", lambdart.Function{Path: hello(t), Env: []string{"NOEQUALS"}}, "not KEY=value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rt, err := lambdart.Start(t.Context(), tc.fn)
			if err == nil {
				_ = rt.Close()
				t.Fatalf("Start succeeded, want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Start error = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestHandWrittenRuntime(t *testing.T) {
	t.Parallel()
	rt := lambdarttest.Start(t, lambdart.Function{Path: lambdarttest.Bootstrap(t, "./testdata/raw")})
	tests := []struct {
		event       string
		wantPayload string
		wantCT      string
		wantType    string
		wantMessage string
	}{
		{event: "hello", wantPayload: "raw: hello", wantCT: "text/plain"},
		{event: "plain-error", wantType: "Runtime.Custom", wantMessage: "something broke"},
		{event: "header-type", wantType: "Function.FromHeader", wantMessage: "typed by header"},
		{event: "no-type", wantType: lambdart.ErrorTypeUnhandled, wantMessage: "untyped"},
		{event: "double", wantPayload: `"first"`, wantCT: "application/json"},
		{event: "status", wantPayload: "double: 202 400", wantCT: "text/plain"},
		{event: "skip", wantType: lambdart.ErrorTypeNoResponse, wantMessage: "without answering"},
		{event: "after skip", wantPayload: "raw: after skip", wantCT: "text/plain"},
	}
	// Sequential: each case runs on the same process, in order.
	for _, tc := range tests {
		t.Run(tc.event, func(t *testing.T) {
			res := invoke(t, rt, tc.event)
			if tc.wantType == "" {
				if res.Error != nil || string(res.Payload) != tc.wantPayload || res.ContentType != tc.wantCT {
					t.Errorf("Result = %q (%s), error %v; want %q (%s)", res.Payload, res.ContentType, res.Error, tc.wantPayload, tc.wantCT)
				}
				return
			}
			if res.Error == nil || res.Error.Type != tc.wantType || !strings.Contains(res.Error.Message, tc.wantMessage) {
				t.Errorf("Result.Error = %v, want type %q with message %q", res.Error, tc.wantType, tc.wantMessage)
			}
			if !json.Valid(res.Payload) {
				t.Errorf("error payload %q is not a json document", res.Payload)
			}
		})
	}
	if rt.ColdStarts() != 1 {
		t.Errorf("ColdStarts = %d, want 1", rt.ColdStarts())
	}
}

func TestCloseKillsStubbornProcessAndChildren(t *testing.T) {
	t.Parallel()
	var stdout lockedBuffer
	rt, err := lambdart.Start(t.Context(), lambdart.Function{
		Path:   lambdarttest.Bootstrap(t, "./testdata/raw"),
		Env:    []string{"RAW_STUBBORN=1"},
		Stdout: &stdout,
	})
	if err != nil {
		t.Fatal(err)
	}
	pid := rt.PID()
	var child int
	if _, err := fmt.Sscanf(strings.TrimSpace(stdout.String()), "raw: child pid %d", &child); err != nil {
		_ = rt.Close()
		t.Fatalf("no child pid in stdout %q: %v", stdout.String(), err)
	}
	start := time.Now()
	if err := rt.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if took := time.Since(start); took < lambdart.ShutdownGrace {
		t.Errorf("Close took %v; a process ignoring SIGTERM should get the %v grace", took, lambdart.ShutdownGrace)
	}
	for _, p := range []int{pid, child} {
		if !processGone(p) {
			t.Errorf("process %d still runs after Close", p)
		}
	}
}
