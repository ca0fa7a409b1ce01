package lambdart

import (
	"context"
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

// Lambda's limits and defaults that the Runtime applies.
const (
	// MaxRequestBytes is the largest event Invoke accepts (6 MB, Lambda's
	// synchronous invocation request limit).
	MaxRequestBytes = 6 * 1024 * 1024
	// MaxResponseBytes is the largest response or error body a function may
	// POST (Lambda enforces 6291556 bytes); a larger one is answered with 413
	// and fails the invocation with Function.ResponseSizeTooLarge.
	MaxResponseBytes = 6291556
	// DefaultTimeout is the function timeout used when Function.Timeout is zero.
	DefaultTimeout = 3 * time.Second
	// DefaultMemoryMB is the memory size advertised when Function.MemoryMB is zero.
	DefaultMemoryMB = 128
	// DefaultInitTimeout is Lambda's init phase limit, used when
	// Function.InitTimeout is zero.
	DefaultInitTimeout = 10 * time.Second
	// ShutdownGrace is how long Close waits after SIGTERM before SIGKILL.
	ShutdownGrace = 2 * time.Second
	// DefaultRegion is the region advertised (AWS_REGION and the function
	// ARN) unless Function.Env sets AWS_REGION.
	DefaultRegion = "us-east-1"
	// AccountID is the account id in the function ARN.
	AccountID = "000000000000"
)

// maxDispatchAttempts bounds how many fresh processes Invoke tries when
// processes keep exiting after init without taking the event.
const maxDispatchAttempts = 3

// Function describes the function to run, like its Lambda configuration.
type Function struct {
	// Name is the function name (AWS_LAMBDA_FUNCTION_NAME and the ARN).
	// Empty means the name of the directory holding Path.
	Name string
	// Path is the built bootstrap binary. It runs with the directory that
	// holds it as working directory and LAMBDA_TASK_ROOT, like /var/task.
	Path string
	// Env is the function's environment variables, "KEY=value". They are
	// added after, and win over, the variables Lambda sets, except
	// AWS_LAMBDA_RUNTIME_API. The host environment is not inherited.
	Env []string
	// Timeout is the function timeout; zero means DefaultTimeout.
	Timeout time.Duration
	// MemoryMB is the advertised memory size; zero means DefaultMemoryMB.
	// It is not enforced.
	MemoryMB int
	// InitTimeout bounds the init phase (exec to first /next); zero means
	// DefaultInitTimeout. A process exceeding it is killed and its init fails.
	InitTimeout time.Duration
	// Stdout and Stderr receive the process's output; nil discards it.
	// They may be the same writer: writes are serialised.
	Stdout, Stderr io.Writer
}

// Runtime is a local Lambda execution environment for one function: a
// Runtime API server and the function process it drives. It is
// single-concurrency like a Lambda execution environment: Invoke calls run
// one at a time, in turn; start several Runtimes for concurrent invocations.
// Its methods are safe for concurrent use.
type Runtime struct {
	fn      Function
	arn     string
	env     []string // Lambda and function variables, without the per-process ones
	sem     chan struct{}
	closing chan struct{}
	outMu   sync.Mutex
	wg      sync.WaitGroup // process watchers, servers and invocation supervisors

	mu            sync.Mutex
	closed        bool
	cur           *instance
	coldStarts    int
	initDurations []time.Duration
	initErr       *InitError
}

// Start starts the function's Runtime API server and process and waits for
// the process to finish its init phase (its first GET .../invocation/next).
// If init fails, Start stops everything and returns an *InitError. ctx bounds
// the wait for init only; the process lives until Close.
func Start(ctx context.Context, fn Function) (*Runtime, error) {
	fn, err := normalize(fn)
	if err != nil {
		return nil, err
	}
	r := &Runtime{
		fn:      fn,
		sem:     make(chan struct{}, 1),
		closing: make(chan struct{}),
	}
	r.env = r.lambdaEnv()
	region := lookupEnv(r.env, "AWS_REGION")
	r.arn = "arn:aws:lambda:" + region + ":" + AccountID + ":function:" + fn.Name
	if _, err := r.instance(ctx); err != nil {
		_ = r.Close()
		return nil, err
	}
	return r, nil
}

// normalize validates fn and fills in defaults.
func normalize(fn Function) (Function, error) {
	if fn.Path == "" {
		return fn, errors.New("lambdart: Function.Path is empty, set it to the built bootstrap binary")
	}
	p, err := filepath.Abs(fn.Path)
	if err != nil {
		return fn, fmt.Errorf("lambdart: resolve Function.Path %q: %w", fn.Path, err)
	}
	st, err := os.Stat(p)
	if err != nil {
		return fn, fmt.Errorf("lambdart: Function.Path: %w (build the function first)", err)
	}
	if st.IsDir() || st.Mode().Perm()&0o111 == 0 {
		return fn, fmt.Errorf("lambdart: Function.Path %q is not an executable file", p)
	}
	fn.Path = p
	if fn.Name == "" {
		fn.Name = filepath.Base(filepath.Dir(p))
	}
	switch {
	case fn.Timeout < 0:
		return fn, fmt.Errorf("lambdart: Function.Timeout %v is negative", fn.Timeout)
	case fn.Timeout == 0:
		fn.Timeout = DefaultTimeout
	}
	switch {
	case fn.InitTimeout < 0:
		return fn, fmt.Errorf("lambdart: Function.InitTimeout %v is negative", fn.InitTimeout)
	case fn.InitTimeout == 0:
		fn.InitTimeout = DefaultInitTimeout
	}
	switch {
	case fn.MemoryMB < 0:
		return fn, fmt.Errorf("lambdart: Function.MemoryMB %d is negative", fn.MemoryMB)
	case fn.MemoryMB == 0:
		fn.MemoryMB = DefaultMemoryMB
	}
	for _, kv := range fn.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fn, fmt.Errorf("lambdart: Function.Env entry %q is not KEY=value", kv)
		}
	}
	return fn, nil
}

// lambdaEnv returns the variables Lambda sets for a provided.al2023
// function, then the function's own, deduplicated with the last one winning.
func (r *Runtime) lambdaEnv() []string {
	dir := filepath.Dir(r.fn.Path)
	env := []string{
		"PATH=/usr/local/bin:/usr/bin/:/bin:/opt/bin",
		"LANG=en_US.UTF-8",
		"TZ=:UTC",
		"AWS_REGION=" + DefaultRegion,
		"AWS_DEFAULT_REGION=" + DefaultRegion,
		"AWS_EXECUTION_ENV=AWS_Lambda_provided.al2023",
		"AWS_LAMBDA_FUNCTION_NAME=" + r.fn.Name,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + strconv.Itoa(r.fn.MemoryMB),
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/" + r.fn.Name,
		"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
		"_HANDLER=bootstrap",
		"LAMBDA_TASK_ROOT=" + dir,
		"LAMBDA_RUNTIME_DIR=" + dir,
	}
	return mergeEnv(append(env, r.fn.Env...))
}

// processEnv is the environment of one process.
func (r *Runtime) processEnv(apiAddr string, now time.Time) []string {
	env := append([]string{"AWS_LAMBDA_LOG_STREAM_NAME=" + newLogStreamName(now)}, r.env...)
	return mergeEnv(append(env, "AWS_LAMBDA_RUNTIME_API="+apiAddr))
}

// mergeEnv deduplicates KEY=value entries; the last value of a key wins and
// keeps the position of the key's first entry.
func mergeEnv(env []string) []string {
	idx := make(map[string]int, len(env))
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := idx[k]; ok {
			out[i] = kv
			continue
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	return out
}

// lookupEnv returns the value of key in env.
func lookupEnv(env []string, key string) string {
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == key {
			return v
		}
	}
	return ""
}

// Invoke sends payload to the function as one synchronous invocation and
// waits for its outcome. Function failures (handler error, panic, timeout,
// process exit) are reported in Result.Error with a nil error; the error is
// for failures to invoke at all: ErrPayloadTooLarge, ErrClosed, an
// *InitError when a fresh process fails init, or ctx's error. If ctx ends
// after the event was handed to the function, Invoke returns ctx's error but
// the invocation runs on to its answer or deadline before the next one starts.
func (r *Runtime) Invoke(ctx context.Context, payload []byte) (*Result, error) {
	if len(payload) > MaxRequestBytes {
		return nil, ErrPayloadTooLarge
	}
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-r.closing:
		return nil, ErrClosed
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		<-r.sem
		return nil, ErrClosed
	}
	r.wg.Add(1)
	r.mu.Unlock()

	inv := &invocation{
		id:      newRequestID(),
		payload: payload,
		done:    make(chan struct{}),
	}
	inst, err := r.dispatch(ctx, inv)
	if err != nil {
		<-r.sem
		r.wg.Done()
		return nil, err
	}
	go r.supervise(inst, inv)
	select {
	case <-inv.done:
		return inv.res, inv.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// dispatch hands inv to a ready process, starting one if needed, and
// returns that process.
func (r *Runtime) dispatch(ctx context.Context, inv *invocation) (*instance, error) {
	for attempt := 1; ; attempt++ {
		inst, err := r.instance(ctx)
		if err != nil {
			return nil, err
		}
		now := time.Now()
		inv.start = now
		inv.deadline = now.Add(r.fn.Timeout)
		inv.traceID = newTraceID(now)
		inv.coldStart = inst.invocations == 0
		inv.initDuration = inst.getInitDuration()
		select {
		case inst.nextCh <- inv:
			inst.invocations++
			return inst, nil
		case <-inst.exited:
			// The process died idle (after a panic, say) before taking the
			// event, which was never delivered: retry on a fresh process.
			if attempt >= maxDispatchAttempts {
				return nil, fmt.Errorf("lambdart: function %q exited %d times after init without taking an event (last: %s), check its output",
					r.fn.Name, attempt, inst.getExitStatus())
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-r.closing:
			return nil, ErrClosed
		}
	}
}

// supervise enforces inv's deadline and watches its process until the
// invocation is complete, then lets the next Invoke in.
func (r *Runtime) supervise(inst *instance, inv *invocation) {
	defer r.wg.Done()
	defer func() { <-r.sem }()
	timer := time.NewTimer(time.Until(inv.deadline))
	defer timer.Stop()
	select {
	case <-inv.done:
	case <-timer.C:
		select {
		case <-inv.done: // answered just in time
			return
		default:
		}
		// Lambda stops a timed-out environment; the next invoke cold-starts.
		inst.kill()
		<-inst.exited
		inst.complete(inv, &Result{Error: &FunctionError{
			Type:    ErrorTypeTimeout,
			Message: fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds", inv.id, r.fn.Timeout.Seconds()),
		}}, nil)
	case <-inst.exited:
		if r.isClosed() {
			inst.complete(inv, nil, ErrClosed)
			return
		}
		inst.complete(inv, &Result{Error: &FunctionError{
			Type:    ErrorTypeExit,
			Message: fmt.Sprintf("RequestId: %s Error: %s", inv.id, exitReason(inst.getExitStatus())),
		}}, nil)
	}
}

// exitReason is Lambda's description of a runtime exit.
func exitReason(status string) string {
	if status == "exit status 0" {
		return "Runtime exited without providing a reason"
	}
	return "Runtime exited with error: " + status
}

// instance returns the current process once it is ready, starting a fresh
// one (a cold start) if there is none or it has exited.
func (r *Runtime) instance(ctx context.Context) (*instance, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	inst := r.cur
	if inst == nil || inst.hasExited() {
		var err error
		if inst, err = r.spawn(); err != nil {
			r.mu.Unlock()
			return nil, err
		}
		r.cur = inst
	}
	r.mu.Unlock()
	select {
	case <-inst.ready:
		return inst, nil
	case <-inst.initFailed:
		if r.isClosed() {
			return nil, ErrClosed
		}
		return nil, inst.initErr
	case <-ctx.Done():
		return nil, fmt.Errorf("lambdart: wait for init of function %q: %w", r.fn.Name, ctx.Err())
	case <-r.closing:
		return nil, ErrClosed
	}
}

// isClosed reports whether Close has been called.
func (r *Runtime) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// recordInit records a successful init phase.
func (r *Runtime) recordInit(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.initDurations = append(r.initDurations, d)
	r.initErr = nil
}

// recordInitError records a failed init phase.
func (r *Runtime) recordInitError(e *InitError) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.initErr = e
}

// Close stops the function process (SIGTERM to its process group, SIGKILL
// after ShutdownGrace), waits for it and stops the Runtime API server.
// An Invoke in flight returns ErrClosed. Close is idempotent.
func (r *Runtime) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.closing)
	inst := r.cur
	r.mu.Unlock()
	var err error
	if inst != nil {
		err = inst.stop(ShutdownGrace)
	}
	r.wg.Wait()
	return err
}

// Name returns the function name.
func (r *Runtime) Name() string { return r.fn.Name }

// ARN returns the function ARN sent in Lambda-Runtime-Invoked-Function-Arn.
func (r *Runtime) ARN() string { return r.arn }

// Env returns a copy of the environment given to every process, without
// the per-process AWS_LAMBDA_RUNTIME_API and AWS_LAMBDA_LOG_STREAM_NAME.
func (r *Runtime) Env() []string { return append([]string(nil), r.env...) }

// ColdStarts returns how many processes have been started, counting the
// one Start launched and every restart after a crash, timeout or init
// failure.
func (r *Runtime) ColdStarts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.coldStarts
}

// InitDurations returns the init time (exec to first /next) of every
// process that finished init, in start order.
func (r *Runtime) InitDurations() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.initDurations...)
}

// LastInitDuration returns the init time of the latest process that
// finished init, or zero if none has.
func (r *Runtime) LastInitDuration() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.initDurations) == 0 {
		return 0
	}
	return r.initDurations[len(r.initDurations)-1]
}

// InitError returns the error of the latest init phase, or nil if the
// latest process finished init (or none has failed yet).
func (r *Runtime) InitError() *InitError {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.initErr
}

// PID returns the process id of the running function process (the leader
// of its process group), or 0 if no process is running.
func (r *Runtime) PID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur == nil || r.cur.hasExited() {
		return 0
	}
	return r.cur.pid
}

// Addr returns the host:port of the running process's Runtime API (its
// AWS_LAMBDA_RUNTIME_API), or "" if no process is running.
func (r *Runtime) Addr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur == nil || r.cur.hasExited() {
		return ""
	}
	return r.cur.addr
}

// PeakRSS returns the peak resident set size (VmHWM) of the running
// function process, in bytes. Linux only.
func (r *Runtime) PeakRSS() (int64, error) {
	pid := r.PID()
	if pid == 0 {
		return 0, errors.New("lambdart: no function process is running, invoke the function first")
	}
	return peakRSS(pid)
}
