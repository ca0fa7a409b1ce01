// Command bench measures the built functions against their floors and writes
// BENCHMARKS.md: `go run ./cmd/bench -out BENCHMARKS.md` (make bench, minutes)
// or `-quick -out ”` (make bench-ci: seconds, writes nothing). Each section
// measures, tabulates and checks its targets (met or not met: nothing fails
// on a number); a new section is one more entry in sections. The hand-written
// "## Notes" at the end of the report is kept. It needs MinIO (make minio).
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/bench"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localstack"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
)

var sections = []struct {
	name string
	run  func(*runner, context.Context) error
}{
	{"Binary size", (*runner).sizes},
	{"Init time", (*runner).inits},
	{"Warm invocations and Secrets Manager", (*runner).warm},
	{"Go benchmarks", (*runner).goBenchmarks},
	{"Streaming upload", (*runner).uploads},
	{"S3 requests per upload", (*runner).s3Requests},
	{"Rejections", (*runner).rejections},
	{"A burst", (*runner).burst},
	{"The sweep", (*runner).sweep},
}

const (
	helloID = "HelloWorld"     // bench/hello: the floor of size, init and the Runtime API hop
	peerID  = "UploadPeer"     // bench/peer: the floors of the upload
	phone   = "8615812341795"  // merchant phone of every call
	mediaID = "bench-media-01" // what get and delete ask for; it survives delete
)

var (
	functionIDs = []string{localstack.GetMediaFunction, localstack.DeleteMediaFunction, localstack.UploadTemplateFileFunction, localstack.UploadMediaFunction}
	short       = map[string]string{helloID: "hello", localstack.GetMediaFunction: "get", localstack.DeleteMediaFunction: "delete",
		localstack.UploadTemplateFileFunction: "upload", localstack.UploadMediaFunction: "upload-media"}
)

// plan is how much a run measures.
type plan struct {
	initStarts, warmInvokes, benchCount, uploadReps, sweepObjects, sweeps, burstFiles int
	rejectMiB                                                                         int64
	benchTime                                                                         string
	ttlRun                                                                            time.Duration
	uploadMiB                                                                         []int64
}

type runner struct {
	plan
	root, work, nxURL string
	st                *localstack.Stack
	nx                *nxcloudtest.Server
	cred              nxcloud.Credentials
	bin               map[string]string // logical id -> host binary
	section           string
	tables            []*table
	targets           [][4]string // section, what, measured, "target | verdict"
}

// table is a table of a section, after a note saying how it was measured.
type table struct {
	section, note string
	header        []string
	rows          [][]string
}

func (r *runner) table(note string, header ...string) *table {
	t := &table{section: r.section, note: note, header: header}
	r.tables = append(r.tables, t)
	return t
}

func (t *table) row(cells ...any) {
	s := make([]string, len(cells))
	for i, c := range cells {
		s[i] = fmt.Sprint(c)
	}
	t.rows = append(t.rows, s)
}

// target records a target of the current section.
func (r *runner) target(what, measured, goal string, met bool) {
	verdict := map[bool]string{true: "met", false: "**not met**"}[met]
	r.targets = append(r.targets, [4]string{r.section, what, measured, goal + " | " + verdict})
}

func main() {
	out := flag.String("out", "BENCHMARKS.md", "report file (empty: print the targets only)")
	quick := flag.Bool("quick", false, "few repetitions and small sizes: seconds, not minutes (make bench-ci)")
	flag.Parse()
	p := plan{initStarts: 60, warmInvokes: 1000, benchCount: 6, uploadReps: 5, sweepObjects: 10000, sweeps: 3, burstFiles: 1000, rejectMiB: 100,
		benchTime: "1s", ttlRun: 6 * time.Second, uploadMiB: []int64{1, 16, 256, 1024}}
	if *quick {
		p = plan{initStarts: 5, warmInvokes: 100, benchCount: 1, uploadReps: 2, sweepObjects: 1000, sweeps: 1, burstFiles: 50, rejectMiB: 8,
			benchTime: "1x", ttlRun: 2500 * time.Millisecond, uploadMiB: []int64{1, 16}}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, p, *out); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, p plan, out string) error {
	start, load := time.Now(), loadAverage()
	root, err := localstack.FindRepoRoot()
	if err != nil {
		return err
	}
	r := &runner{plan: p, root: root, bin: map[string]string{}}
	if r.work, err = os.MkdirTemp("", "nxcloud-bench-"); err != nil {
		return err
	}
	defer os.RemoveAll(r.work)
	if err := r.startStack(ctx); err != nil {
		return fmt.Errorf("local stack: %w", err)
	}
	defer r.st.Close()
	for i, s := range sections {
		r.section = fmt.Sprintf("%d. %s", i+1, s.name)
		t0 := time.Now()
		progress("== %s", r.section)
		if err := s.run(r, ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		progress("== %s done in %s", s.name, time.Since(t0).Round(time.Second))
	}
	for _, t := range r.targets {
		progress("%s: %s: %s, %s", t[0], t[1], t[2], t[3])
	}
	if out == "" {
		return nil
	}
	old, _ := os.ReadFile(out)
	_, notes, _ := strings.Cut(string(old), "\n## Notes\n")
	return os.WriteFile(out, []byte(r.markdown(start, load, notes)), 0o644)
}

func progress(format string, a ...any) { fmt.Fprintf(os.Stderr, "bench: "+format+"\n", a...) }

// startStack starts the local NXCloud in this process (uploads discarded,
// the sticky media served) and the local stack pointed at it, and builds the
// floors for this host.
func (r *runner) startStack(ctx context.Context) error {
	r.cred = nxcloud.Credentials{AccessKey: nxcloudtest.DefaultAccessKey, AccessSecret: nxcloudtest.DefaultAccessSecret}
	r.nx = nxcloudtest.NewServer(nxcloudtest.WithDiscardUploads(true), nxcloudtest.WithCredentials(r.cred.AccessKey, r.cred.AccessSecret))
	hs := httptest.NewServer(bench.StickyMedia(r.nx, nxcloudtest.Media{ID: mediaID, MimeType: "application/pdf", FileName: "menu.pdf"}))
	context.AfterFunc(ctx, hs.Close)
	r.nxURL = hs.URL
	progress("starting the local stack (builds the functions for %s)", runtime.GOARCH)
	var err error
	if r.st, err = localstack.Start(ctx, localstack.Options{RepoRoot: r.root, BinDir: filepath.Join(r.work, "host"), NXCloudBaseURL: r.nxURL,
		AccessKey: r.cred.AccessKey, AccessSecret: r.cred.AccessSecret, BusinessPhone: phone}); err != nil {
		return err
	}
	for _, id := range functionIDs {
		r.bin[id] = r.st.Binary(id)
	}
	for _, id := range []string{helloID, peerID} {
		if r.bin[id], err = r.build(ctx, id, runtime.GOARCH); err != nil {
			return err
		}
	}
	return nil
}

// build runs the Makefile's build-<id> recipe for goarch; a floor is added to
// FUNCTIONS on make's command line, so that it builds exactly like the
// functions.
func (r *runner) build(ctx context.Context, id, goarch string) (string, error) {
	dir := filepath.Join(r.work, goarch, id)
	args := []string{"--no-print-directory", "build-" + id, "ARTIFACTS_DIR=" + dir, "GOARCH=" + goarch}
	if ref, ok := map[string]string{helloID: "../bench/hello", peerID: "../bench/peer"}[id]; ok {
		args = append(args, "FUNCTIONS="+id, "FUNCTION_DIR_"+id+"="+ref)
	}
	cmd := exec.CommandContext(ctx, "make", args...)
	cmd.Dir = r.root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("make %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return filepath.Join(dir, "bootstrap"), nil
}

// median of xs (which it sorts).
func median(xs []float64) float64 { return pct(xs, 50) }

func pct(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	slices.Sort(xs)
	rank := p / 100 * float64(len(xs)-1)
	lo, hi := xs[int(math.Floor(rank))], xs[int(math.Ceil(rank))]
	return lo + (hi-lo)*(rank-math.Floor(rank))
}

// dist is "median (p10–p90 a–b, n=N)", or min–max under 10 samples.
func dist(xs []float64, format string) string {
	lo, hi, tag := pct(xs, 10), pct(xs, 90), "p10–p90"
	if len(xs) < 10 {
		lo, hi, tag = pct(xs, 0), pct(xs, 100), "min–max"
	}
	f := func(x float64) string { return fmt.Sprintf(format, x) }
	return fmt.Sprintf("%s (%s %s–%s, n=%d)", f(median(xs)), tag, f(lo), f(hi), len(xs))
}

func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b) + " ? ? ?")
	return strings.Join(f[:3], " ")
}

func (r *runner) markdown(start time.Time, load, notes string) string {
	git := func(args ...string) string {
		out, _ := exec.Command("git", append([]string{"-C", r.root}, args...)...).Output()
		return strings.TrimSpace(string(out))
	}
	commit := git("rev-parse", "HEAD")
	if git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!BENCHMARKS.md") != "" { // the report itself aside
		commit += " (with uncommitted changes)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Benchmarks\n\nWritten by `make bench` (`go run ./cmd/bench -out BENCHMARKS.md`) from its measurements: rerun it rather than edit the figures; it keeps the hand-written Notes at the end. "+
		"A figure with a spread is a median with p10–p90 (10 samples or more) or min–max. Each ratio compares measurements of the same run, taken in turn so that both sides see the same load. Targets are met or not met; nothing fails on a number.\n\n"+
		"| | |\n|---|---|\n| run | %s, %s |\n| commit | `%s` |\n| Go | %s %s/%s |\n| machine | %d cores; load average (1/5/15 min) %s at the start, %s at the end |\n\n## Targets\n\n| section | what | measured | target | |\n|---|---|---|---|---|\n",
		start.UTC().Format(time.RFC3339), time.Since(start).Round(time.Second), commit, runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), load, loadAverage())
	for _, t := range r.targets {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", strings.SplitN(t[0], " ", 2)[1], t[1], t[2], t[3])
	}
	section := ""
	for _, t := range r.tables {
		if t.section != section {
			section = t.section
			fmt.Fprintf(&b, "\n## %s\n", section)
		}
		fmt.Fprintf(&b, "\n%s\n\n| %s |\n|%s\n", t.note, strings.Join(t.header, " | "), strings.Repeat("---|", len(t.header)))
		for _, row := range t.rows {
			fmt.Fprintf(&b, "| %s |\n", strings.Join(row, " | "))
		}
	}
	if notes != "" {
		b.WriteString("\n## Notes\n" + notes)
	}
	return b.String()
}
