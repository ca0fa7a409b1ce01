package miniotest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart/lambdarttest"
)

// Root credentials of the servers this package starts. They protect nothing:
// the server listens on 127.0.0.1 only and holds throw-away data.
const (
	DefaultAccessKey = "miniotest"
	DefaultSecretKey = "miniotest-secret-key"
)

// Region is the region the S3 clients of this package sign for.
const Region = "us-east-1"

// ErrBinaryNotFound reports that no MinIO binary was found.
var ErrBinaryNotFound = errors.New("minio binary not found: run `make minio` (go install of the pinned github.com/minio/minio) or set MINIO_BIN to its path")

// FindBinary returns the MinIO executable: $MINIO_BIN, else minio in $GOBIN
// or $(go env GOPATH)/bin, else on PATH.
func FindBinary() (string, error) {
	if p := os.Getenv("MINIO_BIN"); p != "" {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
		return "", fmt.Errorf("MINIO_BIN=%q is not an executable file: %w", p, ErrBinaryNotFound)
	}
	var dirs []string
	if d := os.Getenv("GOBIN"); d != "" {
		dirs = append(dirs, d)
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, p := range filepath.SplitList(strings.TrimSpace(string(out))) {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
	}
	for _, d := range append(dirs, "") { // "", last: minio on PATH
		if p, err := exec.LookPath(filepath.Join(d, "minio")); err == nil {
			return p, nil
		}
	}
	return "", ErrBinaryNotFound
}

// Options configure [Run]; the zero value is a server on a free loopback
// port.
type Options struct {
	// Binary is the MinIO executable; empty means [FindBinary].
	Binary string
	// Output receives the server's output; the error of a failed start
	// quotes it either way.
	Output io.Writer
	// Env is added to the server's environment, e.g. MINIO_NOTIFY_WEBHOOK_*
	// to send bucket notifications to a webhook.
	Env []string
	// Address is the S3 API's host:port; empty means a free loopback port.
	// The endpoint then names 127.0.0.1 when the host is 0.0.0.0 or empty.
	Address string
}

// Server is a running MinIO server.
type Server struct {
	// Endpoint is the S3 API base URL, e.g. http://127.0.0.1:40123.
	Endpoint string
	// AccessKey and SecretKey are the root credentials.
	AccessKey, SecretKey string

	cmd       *exec.Cmd
	dir       string
	done      chan struct{}
	closeOnce sync.Once
}

// Run starts a MinIO server and waits until it answers its liveness probe;
// the caller stops it with Close. A free port can be taken again before
// MinIO binds it: Run tries three times.
func Run(ctx context.Context, opts Options) (*Server, error) {
	if opts.Binary == "" {
		var err error
		if opts.Binary, err = FindBinary(); err != nil {
			return nil, err
		}
	}
	var err error
	for range 3 {
		var s *Server
		if s, err = run(ctx, opts); err == nil || ctx.Err() != nil || opts.Address != "" {
			return s, err
		}
	}
	return nil, err
}

func run(ctx context.Context, opts Options) (*Server, error) {
	var addrs [2]string // the S3 API and the console
	for i := range addrs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		addrs[i] = l.Addr().String()
		_ = l.Close()
	}
	parent := "/dev/shm" // a memory file system: the tests measure the functions, not the disk
	if _, err := os.Stat(parent); err != nil {
		parent = ""
	}
	dir, err := os.MkdirTemp(parent, "miniotest-")
	if err != nil {
		return nil, err
	}
	endpoint := addrs[0]
	if opts.Address != "" {
		addrs[0] = opts.Address
		host, port, err := net.SplitHostPort(opts.Address)
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("minio address %q: %w", opts.Address, err)
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		endpoint = net.JoinHostPort(host, port)
	}
	s := &Server{Endpoint: "http://" + endpoint, AccessKey: DefaultAccessKey, SecretKey: DefaultSecretKey, dir: dir, done: make(chan struct{})}
	out := &lambdarttest.Buffer{}
	cmd := exec.Command(opts.Binary, "server", "--quiet", "--address", addrs[0], "--console-address", addrs[1], dir)
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+s.AccessKey, "MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=on")
	cmd.Env = append(cmd.Env, opts.Env...)
	cmd.Stdout = io.MultiWriter(out, orDiscard(opts.Output))
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("start minio %s: %w", opts.Binary, err)
	}
	s.cmd = cmd
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint+"/minio/health/live", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-s.done:
			err = errors.New("the process exited")
		case <-ctx.Done():
			err = ctx.Err()
		case <-time.After(50 * time.Millisecond):
			continue
		}
		_ = s.Close()
		return nil, fmt.Errorf("minio on %s did not start: %w; output: %s", addrs[0], err, strings.TrimSpace(out.String()))
	}
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// Close stops the server (SIGTERM to its process group, SIGKILL after 5s),
// waits for it and removes its data. It may be called more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.done
		}
		_ = os.RemoveAll(s.dir)
	})
	return nil
}

var shared struct {
	mu  sync.Mutex
	s   *Server
	err error
}

// Shared returns the one MinIO server of the test binary, starting it on
// first use; it fails the test, saying how to get MinIO, when it cannot.
// If the test binary dies before StopShared, the kernel stops the server
// (Linux).
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.s == nil && shared.err == nil {
		shared.s, shared.err = Run(context.Background(), Options{})
	}
	if shared.err != nil {
		t.Fatalf("miniotest: %v", shared.err)
	}
	return shared.s
}

// StopShared stops the server Shared started, if any.
func StopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.s != nil {
		_ = shared.s.Close()
	}
	shared.s, shared.err = nil, nil
}

// Main runs the tests, then stops the shared server: use it in TestMain as
// os.Exit(miniotest.Main(m)).
func Main(m *testing.M) int {
	defer StopShared()
	return m.Run()
}
