package lambdart

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is one execution environment: a function process and the Runtime
// API listener it talks to.
type process struct {
	rt      *Runtime
	cmd     *exec.Cmd
	srv     *http.Server
	started time.Time

	next      chan *invocation // hands an event to the /next long poll
	ready     chan struct{}    // closed at the first /next
	readyOnce sync.Once
	exited    chan struct{} // closed once the process has exited

	mu      sync.Mutex
	current *invocation    // handed over, not answered yet
	initErr *FunctionError // POSTed to /runtime/init/error
	status  string         // how the process ended, set before exited is closed
}

// invocation is one event on its way through the Runtime API.
type invocation struct {
	id, traceID     string
	payload         []byte
	start, deadline time.Time

	once sync.Once
	done chan struct{}
	res  *Result
	err  error
}

// finish records the outcome of inv, once.
func (inv *invocation) finish(res *Result, err error) {
	inv.once.Do(func() {
		if res != nil {
			res.RequestID, res.TraceID, res.Duration = inv.id, inv.traceID, time.Since(inv.start)
		}
		inv.res, inv.err = res, err
		close(inv.done)
	})
}

// spawn starts a fresh process with its own Runtime API listener. The
// caller holds r.mu and has checked that r is not closed.
func (r *Runtime) spawn() (*process, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("lambdart: listen for the runtime api: %w", err)
	}
	p := &process{rt: r, next: make(chan *invocation), ready: make(chan struct{}), exited: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", p.handleNext)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/{kind}", p.handleAnswer)
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", p.handleInitError)
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}

	cmd := exec.Command(r.fn.Path)
	cmd.Dir = filepath.Dir(r.fn.Path)
	cmd.Env = append(r.env(), "AWS_LAMBDA_RUNTIME_API="+ln.Addr().String())
	cmd.Stdout, cmd.Stderr = r.fn.Stdout, r.fn.Stderr
	cmd.WaitDelay = time.Second // a child left behind may hold the output pipes
	cmd.SysProcAttr = procAttr()
	p.cmd, p.started = cmd, time.Now()
	if err := cmd.Start(); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("lambdart: start function %q: %w", r.fn.Name, err)
	}
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		_ = p.srv.Serve(ln) // until the watcher closes the server
	}()
	go func() {
		defer r.wg.Done()
		err := cmd.Wait()
		p.signal(syscall.SIGKILL) // whatever it left behind
		_ = p.srv.Close()
		status := fmt.Sprint(err)
		if cmd.ProcessState != nil {
			status = cmd.ProcessState.String()
		}
		p.mu.Lock()
		p.status = status
		p.mu.Unlock()
		close(p.exited)
	}()
	return p, nil
}

// handleNext is the long poll for the next event; the first call ends init.
func (p *process) handleNext(w http.ResponseWriter, req *http.Request) {
	p.readyOnce.Do(func() {
		p.rt.mu.Lock()
		p.rt.lastInit = time.Since(p.started)
		p.rt.mu.Unlock()
		close(p.ready)
	})
	select {
	case inv := <-p.next:
		p.mu.Lock()
		p.current = inv
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Lambda-Runtime-Aws-Request-Id", inv.id)
		w.Header().Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
		w.Header().Set("Lambda-Runtime-Trace-Id", inv.traceID)
		w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", FunctionARN(p.rt.fn.Name))
		_, _ = w.Write(inv.payload)
	case <-req.Context().Done():
	case <-p.exited:
	}
}

// handleAnswer records the response or the error of the current invocation.
func (p *process) handleAnswer(w http.ResponseWriter, req *http.Request) {
	kind := req.PathValue("kind")
	p.mu.Lock()
	inv := p.current
	ok := inv != nil && inv.id == req.PathValue("id") && (kind == "response" || kind == "error")
	if ok {
		p.current = nil
	}
	p.mu.Unlock()
	if !ok {
		writeAPIError(w, http.StatusBadRequest, "InvalidRequestID", "Invalid request ID")
		return
	}
	body, _ := io.ReadAll(req.Body)
	res := &Result{Payload: body}
	if kind == "error" {
		res.Error = parseError(body, req.Header.Get("Lambda-Runtime-Function-Error-Type"))
		if !json.Valid(body) {
			res.Payload, _ = json.Marshal(res.Error)
		}
	}
	inv.finish(res, nil)
	writeAPIError(w, http.StatusAccepted, "", "")
}

// handleInitError records an init failure; the process then has a second to
// exit by itself before it is killed.
func (p *process) handleInitError(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	p.mu.Lock()
	p.initErr = parseError(body, req.Header.Get("Lambda-Runtime-Function-Error-Type"))
	p.mu.Unlock()
	writeAPIError(w, http.StatusAccepted, "", "")
	time.AfterFunc(time.Second, p.kill)
}

// parseError reads an error document {errorType, errorMessage}; the error
// type header, else "Unhandled", fills in a missing type.
func parseError(body []byte, headerType string) *FunctionError {
	fe := &FunctionError{}
	if json.Unmarshal(body, fe) != nil {
		fe.Message = strings.TrimSpace(string(body))
	}
	for _, t := range []string{headerType, "Unhandled"} {
		if fe.Type == "" {
			fe.Type = t
		}
	}
	return fe
}

// writeAPIError answers with the Runtime API's error document, or 202
// {"status":"OK"} when typ is empty.
func writeAPIError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if typ == "" {
		_, _ = io.WriteString(w, `{"status":"OK"}`)
		return
	}
	_ = json.NewEncoder(w).Encode(FunctionError{Type: typ, Message: msg})
}

// initError describes the failed init of a process that has exited.
func (p *process) initError() *InitError {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := &InitError{Function: p.rt.fn.Name, Type: ErrorTypeExit, Message: exitReason(p.status), ExitStatus: p.status}
	if p.initErr != nil {
		e.Type, e.Message = p.initErr.Type, p.initErr.Message
	}
	return e
}

func (p *process) hasExited() bool { return isClosed(p.exited) }

// isClosed reports whether ch is closed.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (p *process) exitStatus() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status
}

// signal sends sig to the process group of the process.
func (p *process) signal(sig syscall.Signal) { _ = syscall.Kill(-p.cmd.Process.Pid, sig) }

// kill sends SIGKILL to the process group unless the process is gone.
func (p *process) kill() {
	if !p.hasExited() {
		p.signal(syscall.SIGKILL)
	}
}

// stop shuts the process down, SIGTERM then SIGKILL after grace, and
// returns once it has exited.
func (p *process) stop(grace time.Duration) error {
	if p.hasExited() {
		return nil
	}
	p.signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(grace):
	}
	p.kill()
	select {
	case <-p.exited:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("lambdart: function %q process %d did not exit after SIGKILL", p.rt.fn.Name, p.cmd.Process.Pid)
	}
}
