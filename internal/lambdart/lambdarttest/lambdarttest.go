package lambdarttest

import (
	"bytes"
	"context"
	"fmt"
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

// BuildTimeout bounds one go build.
const BuildTimeout = 5 * time.Minute

// BuildArgs are the go build arguments of the Makefile's function build;
// Build runs them with CGO_ENABLED=0 for the host's GOOS and GOARCH.
var BuildArgs = []string{"build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w"}

// Build builds the main package pkg (an import path, or a directory path
// starting with "." relative to the working directory) into the file out,
// like the Makefile: CGO_ENABLED=0 go build -tags lambda.norpc -trimpath
// -ldflags='-s -w', for the host so the binary can run here. The error
// carries the compiler output.
func Build(ctx context.Context, pkg, out string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("lambdarttest: find the go command: %w (put go on PATH)", err)
	}
	args := append(append([]string(nil), BuildArgs...), "-o", out, pkg)
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("lambdarttest: go build %s: %w\n%s", pkg, err, strings.TrimSpace(output.String()))
	}
	return nil
}

// build is one package built (or failed) once per process.
type build struct {
	once sync.Once
	path string // output file, fixed when the record is made
	err  error
}

var (
	mu     sync.Mutex
	dir    string // shared output directory, removed by Main
	builds = map[string]*build{}
	names  = map[string]bool{}
)

// Bootstrap builds pkg once per test binary run (later calls reuse the
// binary) and returns the path of the bootstrap file, in a directory named
// after the package's last element, which lambdart uses as the default
// function name. It fails the test if the build fails. The binaries live in
// a temporary directory that Main removes.
func Bootstrap(tb testing.TB, pkg string) string {
	tb.Helper()
	key := pkg
	if strings.HasPrefix(pkg, ".") {
		abs, err := filepath.Abs(pkg)
		if err != nil {
			tb.Fatalf("lambdarttest: resolve %s: %v", pkg, err)
		}
		key = abs
	}
	b, err := entry(key)
	if err != nil {
		tb.Fatal(err)
	}
	b.once.Do(func() {
		if b.err = os.MkdirAll(filepath.Dir(b.path), 0o755); b.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), BuildTimeout)
		defer cancel()
		b.err = Build(ctx, pkg, b.path)
	})
	if b.err != nil {
		tb.Fatal(b.err)
	}
	return b.path
}

// entry returns the build record of key, making it on first use.
func entry(key string) (*build, error) {
	mu.Lock()
	defer mu.Unlock()
	if dir == "" {
		d, err := os.MkdirTemp("", "lambdarttest-")
		if err != nil {
			return nil, fmt.Errorf("lambdarttest: make the build directory: %w", err)
		}
		dir = d
	}
	if b, ok := builds[key]; ok {
		return b, nil
	}
	name := path.Base(filepath.ToSlash(key))
	unique := name
	for i := 2; names[unique]; i++ {
		unique = fmt.Sprintf("%s-%d", name, i)
	}
	names[unique] = true
	b := &build{path: filepath.Join(dir, unique, "bootstrap")}
	builds[key] = b
	return b, nil
}

// Main runs the tests and then removes the binaries Bootstrap built. Use it
// in TestMain: os.Exit(lambdarttest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		if err := os.RemoveAll(dir); err != nil {
			fmt.Fprintf(os.Stderr, "lambdarttest: remove %s: %v\n", dir, err)
		}
		dir = ""
		builds = map[string]*build{}
		names = map[string]bool{}
	}
	return code
}

// Start starts fn with lambdart.Start and closes it when the test ends;
// it fails the test if the function does not init.
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

// Buffer collects a function's output (give it as Function.Stdout and
// Stderr). It is safe to read while the function writes.
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
