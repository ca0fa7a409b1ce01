package lambdarttest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart"
)

var builds struct {
	mu   sync.Mutex
	dir  string // removed by Main
	bins map[string]*build
}

// build is one package built (or failed) once per process.
type build struct {
	once sync.Once
	path string
	err  error
}

// Bootstrap builds the main package pkg (an import path, or a directory
// relative to the working directory) once per test binary run, like the
// Makefile's build (CGO_ENABLED=0 go build -tags lambda.norpc -trimpath
// -ldflags='-s -w') for this host, and returns the path of its bootstrap
// file. It fails the test, quoting the compiler, when the build fails.
func Bootstrap(tb testing.TB, pkg string) string {
	tb.Helper()
	builds.mu.Lock()
	if builds.dir == "" {
		d, err := os.MkdirTemp("", "lambdarttest-")
		if err != nil {
			builds.mu.Unlock()
			tb.Fatalf("lambdarttest: %v", err)
		}
		builds.dir, builds.bins = d, map[string]*build{}
	}
	b := builds.bins[pkg]
	if b == nil {
		// In a folder named after the package: lambdart's default function name.
		b = &build{path: filepath.Join(builds.dir, fmt.Sprint(len(builds.bins)), path.Base(filepath.ToSlash(pkg)), "bootstrap")}
		builds.bins[pkg] = b
	}
	builds.mu.Unlock()
	b.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", b.path, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("lambdarttest: go build %s: %w\n%s", pkg, err, bytes.TrimSpace(out))
		}
	})
	if b.err != nil {
		tb.Fatal(b.err)
	}
	return b.path
}

// Main runs the tests, then removes the binaries Bootstrap built: use it in
// TestMain as os.Exit(lambdarttest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.dir != "" {
		_ = os.RemoveAll(builds.dir)
		builds.dir = ""
	}
	return code
}

// Start starts fn with lambdart.Start and closes it when the test ends; it
// fails the test if the function does not init.
func Start(tb testing.TB, fn lambdart.Function) *lambdart.Runtime {
	tb.Helper()
	rt, err := lambdart.Start(tb.Context(), fn)
	if err != nil {
		tb.Fatalf("lambdarttest: start %s: %v", fn.Path, err)
	}
	tb.Cleanup(func() {
		if err := rt.Close(); err != nil {
			tb.Errorf("lambdarttest: close %s: %v", rt.Name(), err)
		}
	})
	return rt
}

// Buffer collects output written concurrently (a function's stdout and
// stderr, a logger's lines); it is safe to read while it is written.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Lines decodes the JSON log lines written so far whose message (the
// functions' key, app.NewHandler) or msg (slog's, as Logger writes) is msg
// (all of them when msg is empty); a line that is not JSON fails the test.
func (s *Buffer) Lines(tb testing.TB, msg string) []map[string]any {
	tb.Helper()
	var out []map[string]any
	for _, l := range strings.Split(s.String(), "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			tb.Fatalf("log line is not JSON: %q", l)
		}
		if msg == "" || m["message"] == msg || m["msg"] == msg { // the functions' lines, Logger's
			out = append(out, m)
		}
	}
	return out
}

// Logger returns a debug-level JSON logger writing into a new Buffer.
func Logger() (*slog.Logger, *Buffer) {
	b := &Buffer{}
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// Secrets is the set of values that must never appear in any output:
// secret values, access keys, request signatures. It is safe for concurrent
// use.
type Secrets struct {
	mu   sync.Mutex
	vals map[string]bool
}

// Add adds vals; values shorter than 8 characters are ignored, as they
// would match by accident.
func (s *Secrets) Add(vals ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.vals == nil {
		s.vals = map[string]bool{}
	}
	for _, v := range vals {
		if len(v) >= 8 {
			s.vals[v] = true
		}
	}
}

// Has reports whether v is in the set.
func (s *Secrets) Has(v string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.vals[v]
}

// Leaks describes each value of the set found in out by its length and the
// start of the line it is in, never by the value itself.
func (s *Secrets) Leaks(out string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var leaks []string
	for v := range s.vals {
		if i := strings.Index(out, v); i >= 0 {
			line := out[strings.LastIndexByte(out[:i], '\n')+1 : i]
			leaks = append(leaks, fmt.Sprintf("a value of %d characters, in the line starting %q", len(v), line[:min(len(line), 80)]))
		}
	}
	return leaks
}
