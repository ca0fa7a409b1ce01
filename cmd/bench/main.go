package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/bench"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localstack"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
)

// Reference binaries built by the Makefile's recipe next to the functions.
const (
	helloID = "HelloWorld"     // bench/hello
	probeID = "AppNewProbe"    // bench/appnew
	peerID  = "UploadPeer"     // bench/peer
	phone   = "8615812341795"  // merchant phone of every call
	mediaID = "bench-media-01" // the sticky media get and delete ask for
)

// plan is how much of each measurement a run does.
type plan struct {
	initStarts     int // starts per binary for init time
	traceStarts    int // starts per binary with GODEBUG=inittrace=1
	probeRuns      int // fresh processes per app.New mode
	warmInvokes    int // warm invocations (and plain calls) per function
	ttlRun         time.Duration
	ttl            time.Duration
	delayReps      int     // cold starts per Secrets Manager delay
	goBenchCount   int     // -count of the Go benchmarks
	goBenchTime    string  // -benchtime of the handler benchmarks
	uploadSizesMiB []int64 // object sizes
	uploadReps     func(sizeMiB int64) int
}

func fullPlan() plan {
	return plan{
		initStarts: 60, traceStarts: 10, probeRuns: 30, warmInvokes: 1000,
		ttlRun: 6 * time.Second, ttl: time.Second, delayReps: 10,
		goBenchCount: 6, goBenchTime: "3000x",
		uploadSizesMiB: []int64{1, 16, 256, 1024},
		uploadReps: func(mib int64) int {
			if mib >= 1024 {
				return 3
			}
			return 5
		},
	}
}

func quickPlan() plan {
	return plan{
		initStarts: 6, traceStarts: 2, probeRuns: 3, warmInvokes: 100,
		ttlRun: 2500 * time.Millisecond, ttl: time.Second, delayReps: 2,
		goBenchCount: 1, goBenchTime: "300x",
		uploadSizesMiB: []int64{1, 8},
		uploadReps:     func(int64) int { return 2 },
	}
}

// runner holds what the measurements share.
type runner struct {
	plan  plan
	quick bool
	root  string
	work  string
	log   io.Writer
	rep   *report

	st      *localstack.Stack
	nx      *nxcloudtest.Server
	nxURL   string
	nxHTTP  *http.Server
	nxConns atomic.Int64      // connections accepted by the local NXCloud
	hostBin map[string]string // logical id -> host bootstrap
	cred    nxcloud.Credentials
}

func main() {
	out := flag.String("out", "BENCHMARKS.md", "file the report is written to (empty: none)")
	quick := flag.Bool("quick", false, "small sizes and few repetitions: seconds, not minutes (make bench-ci)")
	keep := flag.Bool("keep", false, "keep the work directory (binaries) for inspection")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *out, *quick, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out string, quick, keep bool) error {
	root, err := localstack.FindRepoRoot()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "nxcloud-bench-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Fprintln(os.Stderr, "bench: work directory", work)
	} else {
		defer os.RemoveAll(work)
	}
	r := &runner{plan: fullPlan(), quick: quick, root: root, work: work, log: os.Stderr, rep: &report{}}
	if quick {
		r.plan = quickPlan()
	}
	r.rep.machine = machineInfo(ctx, root)
	r.rep.quick = quick
	r.rep.started = time.Now()
	r.progress("machine: %s, %d cores, %s, load %s", r.rep.machine.cpuModel, r.rep.machine.nproc, r.rep.machine.memory, r.rep.machine.loadStart)

	if err := r.sizes(ctx); err != nil {
		return fmt.Errorf("binary sizes: %w", err)
	}
	if err := r.startStack(ctx); err != nil {
		return fmt.Errorf("local stack: %w", err)
	}
	defer r.stopStack()
	steps := []struct {
		name string
		f    func(context.Context) error
	}{
		{"init time", r.initTimes},
		{"init trace", r.initTrace},
		{"app.New", r.appNew},
		{"warm invocations", r.warm},
		{"secrets", r.secrets},
		{"go benchmarks", r.goBenchmarks},
		{"streaming upload", r.uploads},
	}
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		start := time.Now()
		r.progress("== %s", s.name)
		if err := s.f(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		r.progress("== %s done in %s", s.name, time.Since(start).Round(time.Millisecond))
	}
	r.rep.finished = time.Now()
	r.rep.machine.loadEnd = loadAverage()

	fmt.Println(r.rep.summaryText())
	if out != "" {
		if !filepath.IsAbs(out) {
			out = filepath.Join(mustGetwd(), out)
		}
		if err := os.WriteFile(out, []byte(r.rep.markdown()), 0o644); err != nil {
			return err
		}
		r.progress("wrote %s", out)
	}
	return nil
}

func mustGetwd() string {
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	return wd
}

func (r *runner) progress(format string, a ...any) {
	fmt.Fprintf(r.log, "bench: "+format+"\n", a...)
}

// startStack starts the local NXCloud (in this process, uploads discarded,
// the sticky media served) and the local stack (Secrets Manager, MinIO, the
// functions built for this host by the Makefile) pointed at it.
func (r *runner) startStack(ctx context.Context) error {
	r.cred = nxcloud.Credentials{AccessKey: nxcloudtest.DefaultAccessKey, AccessSecret: nxcloudtest.DefaultAccessSecret}
	r.nx = nxcloudtest.NewServer(nxcloudtest.WithDiscardUploads(true), nxcloudtest.WithCredentials(r.cred.AccessKey, r.cred.AccessSecret))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	r.nxURL = "http://" + ln.Addr().String()
	r.nxHTTP = &http.Server{
		Handler:           bench.StickyMedia(r.nx, nxcloudtest.Media{ID: mediaID, MimeType: "application/pdf", FileName: "menu.pdf"}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(slog.DiscardHandler, slog.LevelError),
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				r.nxConns.Add(1)
			}
		},
	}
	go func() { _ = r.nxHTTP.Serve(ln) }()

	if err := localstack.EnsureMinIO(ctx, r.log); err != nil {
		return err
	}
	binDir := filepath.Join(r.work, runtime.GOARCH)
	r.progress("starting the local stack (builds the functions for %s with make)", runtime.GOARCH)
	r.st, err = localstack.Start(ctx, localstack.Options{
		RepoRoot:       r.root,
		BinDir:         binDir,
		NXCloudBaseURL: r.nxURL,
		AccessKey:      r.cred.AccessKey,
		AccessSecret:   r.cred.AccessSecret,
		BusinessPhone:  phone,
	})
	if err != nil {
		return err
	}
	r.hostBin = map[string]string{}
	for id := range localstack.Functions {
		r.hostBin[id] = r.st.Binary(id)
	}
	for _, id := range []string{helloID, probeID, peerID} {
		p, err := r.buildRef(ctx, id, runtime.GOARCH)
		if err != nil {
			return err
		}
		r.hostBin[id] = p
	}
	return nil
}

func (r *runner) stopStack() {
	if r.st != nil {
		r.st.Close()
	}
	if r.nxHTTP != nil {
		_ = r.nxHTTP.Close()
	}
}

// functionEnv is the environment the functions run with in the local stack,
// plus extra.
func (r *runner) functionEnv(extra ...string) []string {
	return append(r.st.Env(), extra...)
}

// functionIDs are the three functions in a fixed order.
var functionIDs = []string{localstack.GetMediaFunction, localstack.DeleteMediaFunction, localstack.UploadTemplateFileFunction}

// short names for tables.
func short(id string) string {
	switch id {
	case localstack.GetMediaFunction:
		return "get"
	case localstack.DeleteMediaFunction:
		return "delete"
	case localstack.UploadTemplateFileFunction:
		return "upload"
	case helloID:
		return "hello"
	}
	return strings.ToLower(id)
}
