package lambdart

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// initErrorGrace is how long a process that POSTed /runtime/init/error may
// take to exit by itself before it is killed.
const initErrorGrace = time.Second

// pipeWaitDelay bounds how long the output pipes are drained after the
// process exits (a leftover child may hold them open).
const pipeWaitDelay = time.Second

// instance is one execution environment: a function process and the
// Runtime API listener it talks to.
type instance struct {
	rt      *Runtime
	cmd     *exec.Cmd
	pid     int
	addr    string
	srv     *http.Server
	started time.Time
	tail    *tailBuffer
	timer   *time.Timer // init timeout

	nextCh     chan *invocation // hands events to the /next long poll
	ready      chan struct{}    // closed at the first /next
	initFailed chan struct{}    // closed after the process exited without finishing init
	exited     chan struct{}    // closed after the process exited

	// invocations counts events handed over; only Invoke touches it, one
	// at a time (Runtime.sem orders the accesses).
	invocations int

	mu           sync.Mutex
	isReady      bool
	initDuration time.Duration
	reportedInit *FunctionError // POSTed to /runtime/init/error
	initTimedOut bool
	current      *invocation
	exitStatus   string     // set before exited is closed
	initErr      *InitError // set before initFailed is closed
}

// spawn starts a fresh process with its own Runtime API listener. The
// caller holds r.mu and has checked that r is not closed.
func (r *Runtime) spawn() (*instance, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("lambdart: listen for the runtime api: %w", err)
	}
	inst := &instance{
		rt:         r,
		addr:       ln.Addr().String(),
		tail:       &tailBuffer{},
		nextCh:     make(chan *invocation),
		ready:      make(chan struct{}),
		initFailed: make(chan struct{}),
		exited:     make(chan struct{}),
	}
	inst.srv = &http.Server{
		Handler:           inst.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		_ = inst.srv.Serve(ln) // returns when the watcher closes the server
	}()

	cmd := exec.Command(r.fn.Path)
	cmd.Dir = filepath.Dir(r.fn.Path)
	cmd.Stdout = outWriter{mu: &r.outMu, dst: r.fn.Stdout, tail: inst.tail}
	cmd.Stderr = outWriter{mu: &r.outMu, dst: r.fn.Stderr, tail: inst.tail}
	cmd.WaitDelay = pipeWaitDelay
	setProcessGroup(cmd)
	inst.cmd = cmd
	inst.started = time.Now()
	cmd.Env = r.processEnv(inst.addr, inst.started)
	inst.mu.Lock() // the init timer and the handlers must see pid and timer
	defer inst.mu.Unlock()
	if err := cmd.Start(); err != nil {
		_ = inst.srv.Close()
		return nil, fmt.Errorf("lambdart: start function %q: %w", r.fn.Name, err)
	}
	r.coldStarts++
	inst.pid = cmd.Process.Pid
	inst.timer = time.AfterFunc(r.fn.InitTimeout, inst.initTimeout)
	r.wg.Add(1)
	go r.watch(inst)
	return inst, nil
}

// watch waits for the process to exit and records how it ended.
func (r *Runtime) watch(inst *instance) {
	defer r.wg.Done()
	err := inst.cmd.Wait()
	_ = signalGroup(inst.pid, syscall.SIGKILL) // children left behind
	_ = inst.srv.Close()
	status := "unknown exit"
	switch {
	case inst.cmd.ProcessState != nil:
		status = inst.cmd.ProcessState.String()
	case err != nil:
		status = err.Error()
	}

	inst.mu.Lock()
	inst.timer.Stop()
	inst.exitStatus = status
	failedInit := !inst.isReady
	if failedInit {
		inst.initErr = inst.buildInitError(status)
	}
	inst.mu.Unlock()
	close(inst.exited)
	if failedInit {
		r.recordInitError(inst.initErr)
		close(inst.initFailed)
	}
}

// buildInitError describes a failed init phase. The caller holds inst.mu.
func (inst *instance) buildInitError(status string) *InitError {
	e := &InitError{
		Function:   inst.rt.fn.Name,
		ExitStatus: status,
		Output:     inst.tail.lastLines(tailLines),
	}
	switch {
	case inst.reportedInit != nil:
		e.Type, e.Message = inst.reportedInit.Type, inst.reportedInit.Message
	case inst.initTimedOut:
		e.Type = ErrorTypeTimeout
		e.Message = fmt.Sprintf("init phase did not finish within %.2f seconds", inst.rt.fn.InitTimeout.Seconds())
	default:
		e.Type, e.Message = ErrorTypeExit, exitReason(status)
	}
	return e
}

// initTimeout kills a process still in its init phase.
func (inst *instance) initTimeout() {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	if inst.isReady || inst.reportedInit != nil || inst.exitStatus != "" {
		return
	}
	inst.initTimedOut = true
	_ = signalGroup(inst.pid, syscall.SIGKILL)
}

// hasExited reports whether the process has exited.
func (inst *instance) hasExited() bool {
	select {
	case <-inst.exited:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL to the process group unless the process is gone.
func (inst *instance) kill() {
	if !inst.hasExited() {
		_ = signalGroup(inst.pid, syscall.SIGKILL)
	}
}

// stop shuts the process down: SIGTERM, then SIGKILL after grace; it
// returns once the process has exited.
func (inst *instance) stop(grace time.Duration) error {
	if inst.hasExited() {
		return nil
	}
	if err := signalGroup(inst.pid, syscall.SIGTERM); err != nil {
		inst.kill()
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-inst.exited:
		return nil
	case <-t.C:
	}
	inst.kill()
	select {
	case <-inst.exited:
		return nil
	case <-time.After(pipeWaitDelay + 5*time.Second):
		return fmt.Errorf("lambdart: function %q process %d did not exit after SIGKILL", inst.rt.fn.Name, inst.pid)
	}
}

// getInitDuration returns the measured init time.
func (inst *instance) getInitDuration() time.Duration {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	return inst.initDuration
}

// getExitStatus returns how the process ended, "" while it runs.
func (inst *instance) getExitStatus() string {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	return inst.exitStatus
}

// complete finishes inv with the given outcome unless it is already
// finished, and reports whether this call finished it.
func (inst *instance) complete(inv *invocation, res *Result, err error) bool {
	inst.mu.Lock()
	if inst.current == inv {
		inst.current = nil
	}
	inst.mu.Unlock()
	return inv.finish(res, err)
}

// invocation is one event on its way through the Runtime API. Its fields
// are set before it is handed to /next and not changed after, except
// through finish.
type invocation struct {
	id           string
	payload      []byte
	traceID      string
	start        time.Time
	deadline     time.Time
	coldStart    bool
	initDuration time.Duration

	once sync.Once
	done chan struct{}
	res  *Result
	err  error
}

// finish records the outcome once and reports whether this call did.
func (inv *invocation) finish(res *Result, err error) bool {
	won := false
	inv.once.Do(func() {
		won = true
		if res != nil {
			res.RequestID = inv.id
			res.ColdStart = inv.coldStart
			if inv.coldStart {
				res.InitDuration = inv.initDuration
			}
			res.Duration = time.Since(inv.start)
			if res.Error != nil && res.Payload == nil {
				res.Payload = res.Error.document()
			}
		}
		inv.res, inv.err = res, err
		close(inv.done)
	})
	return won
}
