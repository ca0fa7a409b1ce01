package miniotest

import (
	"bytes"
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
	"time"
)

// Default root credentials of the servers this package starts. They protect
// nothing: the server listens on 127.0.0.1 only and holds throw-away data.
const (
	DefaultAccessKey = "miniotest"
	DefaultSecretKey = "miniotest-secret-key"
)

// Region is the region the S3 clients of this package sign for.
const Region = "us-east-1"

// EnvBinary names the variable that points at the MinIO binary.
const EnvBinary = "MINIO_BIN"

// Options configure [Run]. The zero value is a server on a free loopback port
// with a temporary data directory and the default credentials.
type Options struct {
	// Binary is the MinIO executable; empty means [FindBinary].
	Binary string
	// Address is the host:port the S3 API listens on; empty means 127.0.0.1
	// on a free port.
	Address string
	// DataDir holds the objects; empty means a temporary directory removed by
	// Close. A given directory is kept.
	DataDir string
	// AccessKey and SecretKey are the root credentials; empty means
	// DefaultAccessKey and DefaultSecretKey.
	AccessKey string
	SecretKey string
	// Output receives the server's stdout and stderr; nil keeps the last
	// lines only, to explain a failed start.
	Output io.Writer
	// Env is added to the server's environment, e.g. MINIO_NOTIFY_WEBHOOK_*
	// to send bucket notifications to a webhook.
	Env []string
	// StartTimeout bounds the wait for the server to answer; zero means 30s.
	StartTimeout time.Duration
}

// Server is a running MinIO server.
type Server struct {
	// Endpoint is the S3 API base URL, e.g. http://127.0.0.1:40123.
	Endpoint string
	// AccessKey and SecretKey are the root credentials.
	AccessKey string
	SecretKey string
	// DataDir is where the objects live.
	DataDir string

	cmd       *exec.Cmd
	done      chan struct{}
	waitErr   error
	removeDir bool
	out       *tailBuffer
	closeOnce sync.Once
	closeErr  error
}

// ErrBinaryNotFound reports that no MinIO binary was found.
var ErrBinaryNotFound = errors.New("minio binary not found: run `make minio` (go install of the pinned github.com/minio/minio) or set " + EnvBinary + " to its path")

// FindBinary returns the MinIO executable: $MINIO_BIN, else
// $(go env GOPATH)/bin/minio, else minio on PATH.
func FindBinary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if isExecutable(p) {
			return p, nil
		}
		return "", fmt.Errorf("%s=%q is not an executable file: %w", EnvBinary, p, ErrBinaryNotFound)
	}
	for _, dir := range gopathBins() {
		p := filepath.Join(dir, "minio")
		if isExecutable(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	return "", ErrBinaryNotFound
}

func gopathBins() []string {
	var dirs []string
	if gb := os.Getenv("GOBIN"); gb != "" {
		dirs = append(dirs, gb)
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gopath = strings.TrimSpace(string(out))
		}
	}
	if gopath == "" {
		if home, err := os.UserHomeDir(); err == nil {
			gopath = filepath.Join(home, "go")
		}
	}
	for _, p := range filepath.SplitList(gopath) {
		if p != "" {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
	}
	return dirs
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// freeAddr returns a loopback host:port nobody listens on right now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free loopback port: %w", err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr, nil
}

// Run starts a MinIO server and waits until it answers its liveness probe.
// The caller stops it with Close; ctx bounds the start only.
func Run(ctx context.Context, opts Options) (*Server, error) {
	bin := opts.Binary
	if bin == "" {
		var err error
		if bin, err = FindBinary(); err != nil {
			return nil, err
		}
	}
	if opts.AccessKey == "" {
		opts.AccessKey = DefaultAccessKey
	}
	if opts.SecretKey == "" {
		opts.SecretKey = DefaultSecretKey
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 30 * time.Second
	}
	// A free port found by listening and closing can be taken again before
	// MinIO binds it: try a few times when the address was not given.
	attempts := 1
	if opts.Address == "" {
		attempts = 3
	}
	var lastErr error
	for i := 0; i < attempts; i++ {
		s, err := run(ctx, bin, opts)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func run(ctx context.Context, bin string, opts Options) (*Server, error) {
	addr := opts.Address
	if addr == "" {
		var err error
		if addr, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	consoleAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	s := &Server{
		Endpoint:  "http://" + addr,
		AccessKey: opts.AccessKey,
		SecretKey: opts.SecretKey,
		DataDir:   opts.DataDir,
		done:      make(chan struct{}),
		out:       &tailBuffer{max: 8 << 10},
	}
	if s.DataDir == "" {
		dir, err := os.MkdirTemp(dataParent(), "miniotest-")
		if err != nil {
			return nil, fmt.Errorf("create minio data directory: %w", err)
		}
		s.DataDir, s.removeDir = dir, true
	}

	cmd := exec.Command(bin, "server", "--quiet", "--address", addr, "--console-address", consoleAddr, s.DataDir)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+opts.AccessKey,
		"MINIO_ROOT_PASSWORD="+opts.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=on",
	)
	cmd.Env = append(cmd.Env, opts.Env...)
	var out io.Writer = s.out
	if opts.Output != nil {
		out = io.MultiWriter(s.out, opts.Output)
	}
	cmd.Stdout, cmd.Stderr = out, out
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		_ = s.cleanupDir()
		return nil, fmt.Errorf("start minio %s: %w", bin, err)
	}
	s.cmd = cmd
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()

	if err := s.waitLive(ctx, opts.StartTimeout); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("minio on %s did not start: %w; output: %s", addr, err, s.out.String())
	}
	return s, nil
}

// dataParent is where a temporary data directory goes: the memory file system
// /dev/shm when there is one (Linux), so that tests and benchmarks measure the
// functions rather than the disk's write latency; else the default temporary
// directory. The directory is removed by Close.
func dataParent() string {
	const shm = "/dev/shm"
	if d, err := os.MkdirTemp(shm, "miniotest-probe-"); err == nil {
		_ = os.Remove(d)
		return shm
	}
	return ""
}

// waitLive polls /minio/health/live until it answers 200.
func (s *Server) waitLive(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint+"/minio/health/live", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("the process exited: %w", s.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("no answer from /minio/health/live: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// Close stops the server (SIGTERM to its process group, SIGKILL after 5s),
// waits for it to exit and removes a temporary data directory. It is safe to
// call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.cmd != nil {
			terminate(s.cmd)
			select {
			case <-s.done:
			case <-time.After(5 * time.Second):
				kill(s.cmd)
				<-s.done
			}
		}
		s.closeErr = s.cleanupDir()
	})
	return s.closeErr
}

func (s *Server) cleanupDir() error {
	if !s.removeDir {
		return nil
	}
	if err := os.RemoveAll(s.DataDir); err != nil {
		return fmt.Errorf("remove minio data directory: %w", err)
	}
	return nil
}

// Output returns the last lines the server wrote, to explain a failure.
func (s *Server) Output() string { return s.out.String() }

// TB is the part of testing.TB that Start and Shared use.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
	Logf(format string, args ...any)
}

// Start runs a MinIO server for one test and stops it in t.Cleanup. It fails
// the test, saying how to get the binary, when MinIO cannot be started.
func Start(t TB) *Server {
	t.Helper()
	s, err := Run(context.Background(), Options{})
	if err != nil {
		t.Fatalf("miniotest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Logf("miniotest: %v", err)
		}
	})
	return s
}

var shared struct {
	mu  sync.Mutex
	s   *Server
	err error
}

// Shared returns the one MinIO server of the test binary, starting it on
// first use. Call StopShared from TestMain after m.Run to stop it; if the test
// binary dies first, the kernel stops the server (Linux). Tests sharing it
// should use their own buckets ([Server.NewBucket]).
func Shared(t TB) *Server {
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
		shared.s = nil
	}
	shared.err = nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.max; over > 0 {
		b.buf.Next(over)
		rest := append([]byte(nil), b.buf.Bytes()...)
		b.buf.Reset()
		b.buf.Write(rest)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(b.buf.String())
}
