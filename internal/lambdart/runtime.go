package lambdart

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// DefaultTimeout is the function timeout used when Function.Timeout is zero.
	DefaultTimeout = 3 * time.Second
	// ShutdownGrace is how long Close waits after SIGTERM before SIGKILL.
	ShutdownGrace = 2 * time.Second
)

// Error types of the failures Lambda reports for a function.
const (
	// ErrorTypeTimeout is the error type of an invocation that ran past its deadline.
	ErrorTypeTimeout = "Sandbox.Timedout"
	// ErrorTypeExit is the error type of an invocation or init whose process exited.
	ErrorTypeExit = "Runtime.ExitError"
)

// ErrClosed is returned by Invoke once Close has been called.
var ErrClosed = errors.New("lambdart: runtime is closed")

// Function describes the function to run, like its Lambda configuration.
type Function struct {
	// Name is AWS_LAMBDA_FUNCTION_NAME; empty means the name of the folder
	// holding Path.
	Name string
	// Path is the built bootstrap binary; it runs in the folder that holds it.
	Path string
	// Env is the function's environment, "KEY=value", added after (and
	// winning over) what Lambda sets. The host environment is not inherited.
	Env []string
	// Timeout is the function timeout; zero means DefaultTimeout.
	Timeout time.Duration
	// Stdout and Stderr receive the process's output; nil discards it.
	Stdout, Stderr io.Writer
}

// Result is the outcome of one invocation, as Lambda's Invoke API reports it.
type Result struct {
	// RequestID is the Lambda-Runtime-Aws-Request-Id given to the function.
	RequestID string
	// TraceID is the Lambda-Runtime-Trace-Id given to the function, the X-Ray
	// trace header "Root=1-...;Parent=...;Sampled=0".
	TraceID string
	// Payload is the response, or on a function error the error document
	// ({"errorType", "errorMessage", ...}).
	Payload []byte
	// Error is non-nil when the invocation failed: the handler returned an
	// error or panicked, the function timed out, or its process exited.
	Error *FunctionError
	// Duration is the time from handing the event over to the answer.
	Duration time.Duration
}

// FunctionError is an invocation error: what a runtime POSTs to
// /invocation/{id}/error, or what Lambda reports for a timeout or a crash.
type FunctionError struct {
	Type    string `json:"errorType"`
	Message string `json:"errorMessage"`
}

// Error implements error.
func (e *FunctionError) Error() string { return e.Type + ": " + e.Message }

// InitError is a failed init phase: the function POSTed /runtime/init/error
// or exited before asking for its first event.
type InitError struct {
	Function string
	// Type and Message are the reported errorType and errorMessage, else
	// Runtime.ExitError and a description of the exit.
	Type, Message string
	// ExitStatus is how the process ended, e.g. "exit status 1".
	ExitStatus string
}

// Error implements error.
func (e *InitError) Error() string {
	return fmt.Sprintf("lambdart: function %q failed init: %s: %s (%s)", e.Function, e.Type, e.Message, e.ExitStatus)
}

// Runtime is one Lambda execution environment of a function: the function
// process and the Runtime API it talks to. Its methods are safe for
// concurrent use; invocations run one at a time.
type Runtime struct {
	fn      Function
	sem     chan struct{} // held from handing an event over to its outcome
	closing chan struct{}
	wg      sync.WaitGroup // the processes' watchers and servers

	mu         sync.Mutex
	closed     bool
	proc       *process
	coldStarts int
	lastInit   time.Duration
}

// Start starts the function's process and waits for the end of its init
// phase; a failed init is an *InitError. ctx bounds the wait for init only.
func Start(ctx context.Context, fn Function) (*Runtime, error) {
	if fn.Path == "" {
		return nil, errors.New("lambdart: Function.Path is empty, set it to the built bootstrap binary")
	}
	p, err := filepath.Abs(fn.Path)
	if err != nil {
		return nil, fmt.Errorf("lambdart: Function.Path: %w", err)
	}
	fn.Path = p
	if fn.Name == "" {
		fn.Name = filepath.Base(filepath.Dir(p))
	}
	if fn.Timeout <= 0 {
		fn.Timeout = DefaultTimeout
	}
	r := &Runtime{fn: fn, sem: make(chan struct{}, 1), closing: make(chan struct{})}
	if _, err := r.ready(ctx); err != nil {
		_ = r.Close()
		return nil, err
	}
	return r, nil
}

// env is what Lambda sets for a provided.al2023 function, then fn.Env.
func (r *Runtime) env() []string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return append([]string{
		"PATH=/usr/local/bin:/usr/bin/:/bin:/opt/bin",
		"AWS_REGION=us-east-1",
		"AWS_EXECUTION_ENV=AWS_Lambda_provided.al2023",
		"AWS_LAMBDA_FUNCTION_NAME=" + r.fn.Name,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128",
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/" + r.fn.Name,
		fmt.Sprintf("AWS_LAMBDA_LOG_STREAM_NAME=%s/[$LATEST]%x", time.Now().UTC().Format("2006/01/02"), b),
		"LAMBDA_TASK_ROOT=" + filepath.Dir(r.fn.Path),
		"_HANDLER=bootstrap",
	}, r.fn.Env...)
}

// Invoke sends payload to the function as one synchronous invocation and
// waits for its outcome. A function failure (error, panic, timeout, exit) is
// in Result.Error with a nil error; the error is for failing to invoke at
// all: ErrClosed, an *InitError of a fresh process, or ctx's error. If ctx
// ends once the function has the event, the invocation still runs to its
// answer or deadline before the next one starts.
func (r *Runtime) Invoke(ctx context.Context, payload []byte) (*Result, error) {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-r.closing:
		return nil, ErrClosed
	}
	p, inv, err := r.dispatch(ctx, payload)
	if err != nil {
		<-r.sem
		return nil, err
	}
	go r.supervise(p, inv)
	select {
	case <-inv.done:
		return inv.res, inv.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// dispatch hands the event to a ready process, starting one if needed.
func (r *Runtime) dispatch(ctx context.Context, payload []byte) (*process, *invocation, error) {
	for attempt := 1; ; attempt++ {
		p, err := r.ready(ctx)
		if err != nil {
			return nil, nil, err
		}
		now := time.Now()
		inv := &invocation{id: newRequestID(), traceID: newTraceHeader(now), payload: payload, start: now, deadline: now.Add(r.fn.Timeout), done: make(chan struct{})}
		select {
		case p.next <- inv:
			return p, inv, nil
		case <-p.exited: // it died idle, before taking the event: a fresh one gets it
			if attempt == 3 {
				return nil, nil, fmt.Errorf("lambdart: function %q exited %d times without taking an event (%s)", r.fn.Name, attempt, p.exitStatus())
			}
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-r.closing:
			return nil, nil, ErrClosed
		}
	}
}

// supervise enforces the deadline of inv and watches its process until inv
// has its outcome, then lets the next invocation in.
func (r *Runtime) supervise(p *process, inv *invocation) {
	defer func() { <-r.sem }()
	timer := time.NewTimer(time.Until(inv.deadline))
	defer timer.Stop()
	select {
	case <-inv.done:
	case <-timer.C:
		// Lambda stops a timed-out environment: the next invocation cold-starts.
		p.kill()
		<-p.exited
		inv.finish(failure(ErrorTypeTimeout, fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds", inv.id, r.fn.Timeout.Seconds())), nil)
	case <-p.exited:
		if isClosed(r.closing) {
			inv.finish(nil, ErrClosed)
			return
		}
		inv.finish(failure(ErrorTypeExit, "RequestId: "+inv.id+" Error: "+exitReason(p.exitStatus())), nil)
	}
}

// failure is the Result of a failure Lambda reports itself.
func failure(typ, msg string) *Result {
	fe := &FunctionError{Type: typ, Message: msg}
	doc, _ := json.Marshal(fe)
	return &Result{Payload: doc, Error: fe}
}

// exitReason is Lambda's description of a runtime exit.
func exitReason(status string) string {
	if status == "exit status 0" {
		return "Runtime exited without providing a reason"
	}
	return "Runtime exited with error: " + status
}

// ready returns the current process once its init is over, starting a
// fresh one (a cold start) if there is none or it has exited.
func (r *Runtime) ready(ctx context.Context) (*process, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	p := r.proc
	if p == nil || p.hasExited() {
		var err error
		if p, err = r.spawn(); err != nil {
			r.mu.Unlock()
			return nil, err
		}
		r.proc = p
		r.coldStarts++
	}
	r.mu.Unlock()
	select {
	case <-p.ready:
		return p, nil
	case <-p.exited:
		select {
		case <-p.ready: // it did init; dispatch sees the exit
			return p, nil
		default:
		}
		if isClosed(r.closing) {
			return nil, ErrClosed
		}
		return nil, p.initError()
	case <-ctx.Done():
		return nil, fmt.Errorf("lambdart: wait for init of function %q: %w", r.fn.Name, ctx.Err())
	case <-r.closing:
		return nil, ErrClosed
	}
}

// Close stops the function process (SIGTERM to its process group, SIGKILL
// after ShutdownGrace) and its Runtime API; an invocation in flight returns
// ErrClosed. Close is idempotent.
func (r *Runtime) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.closing)
	p := r.proc
	r.mu.Unlock()
	var err error
	if p != nil {
		err = p.stop(ShutdownGrace)
	}
	r.wg.Wait()
	return err
}

// Name returns the function name.
func (r *Runtime) Name() string { return r.fn.Name }

// ColdStarts returns how many processes have been started: the one of Start
// and every replacement after a crash, a timeout or a failed init.
func (r *Runtime) ColdStarts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.coldStarts
}

// LastInitDuration returns the init time (exec to the first /next) of the
// latest process that finished init.
func (r *Runtime) LastInitDuration() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastInit
}

// PID returns the process id of the running function process, or 0.
func (r *Runtime) PID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil || r.proc.hasExited() {
		return 0
	}
	return r.proc.cmd.Process.Pid
}

// PeakRSS returns the peak resident set size (VmHWM) of the running function
// process, in bytes (Linux only).
func (r *Runtime) PeakRSS() (int64, error) {
	pid := r.PID()
	if pid == 0 {
		return 0, errors.New("lambdart: no function process is running, invoke the function first")
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("lambdart: peak rss needs /proc (linux): %w", err)
	}
	defer f.Close()
	for s := bufio.NewScanner(f); s.Scan(); {
		if kb, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(kb, "kB")), 10, 64)
			return n * 1024, err
		}
	}
	return 0, fmt.Errorf("lambdart: no VmHWM in /proc/%d/status", pid)
}

// FunctionARN is the ARN Lambda hands a function named name as
// Lambda-Runtime-Invoked-Function-Arn (the local account and region).
func FunctionARN(name string) string {
	return "arn:aws:lambda:us-east-1:000000000000:function:" + name
}

// newTraceHeader returns an X-Ray trace header as Lambda hands every
// invocation (Lambda-Runtime-Trace-Id): a new trace root whose time is now, a
// parent segment id, not sampled.
func newTraceHeader(now time.Time) string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("Root=1-%08x-%x;Parent=%x;Sampled=0", now.Unix(), b[:12], b[12:])
}

// newRequestID returns a random id in the UUID form of Lambda's request ids.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
