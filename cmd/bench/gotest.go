package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// goTest runs `go test -run ^$ args...` with env added and returns the
// command and the benchmarks in order of appearance, "package | name", with
// their values by unit (ns/op, B/op, allocs/op and those reported with
// b.ReportMetric), one per -count.
func (r *runner) goTest(ctx context.Context, env []string, args ...string) (string, []string, map[string]map[string][]float64, error) {
	args = append([]string{"test", "-run", "^$"}, args...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir, cmd.Env = r.root, append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	command := "go " + strings.Join(args, " ")
	if err != nil {
		return "", nil, nil, fmt.Errorf("%s: %w\n%s", command, err, out)
	}
	var order []string
	stats := map[string]map[string][]float64{}
	pkg := ""
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "pkg:" {
			pkg = strings.TrimPrefix(f[1], "github.com/nxcloud-media-lambda/nxcloud-media-lambda/")
		}
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := pkg + " | " + strings.TrimPrefix(cpuSuffix.ReplaceAllString(f[0], ""), "Benchmark")
		if stats[name] == nil {
			order, stats[name] = append(order, name), map[string][]float64{}
		}
		for i := 2; i+1 < len(f); i += 2 { // value unit pairs
			v, _ := strconv.ParseFloat(f[i], 64)
			stats[name][f[i+1]] = append(stats[name][f[i+1]], v)
		}
	}
	return command, order, stats, nil
}

var cpuSuffix = regexp.MustCompile(`-\d+$`)

// goBenchmarks runs the Go benchmarks of package bench (the handler path in
// process against the plain call, with the local NXCloud of this process so
// that the allocations are the caller's) and of pkg/, but the sweep's.
func (r *runner) goBenchmarks(ctx context.Context) error {
	command, order, stats, err := r.goTest(ctx, []string{"BENCH_NXCLOUD_URL=" + r.nxURL, "BENCH_MEDIA_ID=" + mediaID},
		"-bench", ".", "-skip", "Sweep", "-benchmem", "-count", strconv.Itoa(r.benchCount), "-benchtime", r.benchTime, "./bench/", "./pkg/...")
	if err != nil {
		return err
	}
	t := r.table(fmt.Sprintf("`%s`. In `bench`, the handler path is the payload 2.0 event through `mediaapi.NewLambdaHandler` and the handler to a real `nxcloud.Client` (static credentials); the plain call is the hand-signed request with `http.Client`.", command),
		"package", "benchmark", "ns/op", "B/op", "allocs/op")
	for _, name := range order {
		st := stats[name]
		t.row(name, dist(st["ns/op"], "%.0f"), fmt.Sprintf("%.0f", median(st["B/op"])), fmt.Sprintf("%.0f", median(st["allocs/op"])))
	}
	for _, m := range []string{"Get", "Delete"} {
		h, p := stats["bench | Handler"+m], stats["bench | Plain"+m]
		if h == nil || p == nil {
			return fmt.Errorf("no BenchmarkHandler%s or BenchmarkPlain%s in the output of go test", m, m)
		}
		ratio := median(h["ns/op"]) / median(p["ns/op"])
		r.target(strings.ToLower(m)+" handler path in process vs plain call", fmt.Sprintf("%.2fx (%.0f vs %.0f µs; %.0f vs %.0f allocs)", ratio, median(h["ns/op"])/1e3, median(p["ns/op"])/1e3, median(h["allocs/op"]), median(p["allocs/op"])), "<= 1.5x", ratio <= 1.5)
	}
	return nil
}

// sweep runs BenchmarkSweep of pkg/reconcile: the sweep of a bucket of
// sweepObjects objects under the prefix, each with its record, with nothing
// pending and with one in 100 pending (their records removed before each
// sweep), the real upload pipeline sending those to a local NXCloud; then
// BenchmarkSweepMemory: the peak heap of sweeps of synthetic buckets of
// 10,000 to 1,000,000 decided objects.
func (r *runner) sweep(ctx context.Context) error {
	command, order, stats, err := r.goTest(ctx, []string{"BENCH_SWEEP_OBJECTS=" + strconv.Itoa(r.sweepObjects)},
		"-bench", "Sweep$", "-benchtime", "1x", "-count", strconv.Itoa(r.sweeps), "./pkg/reconcile/")
	if err != nil {
		return err
	}
	t := r.table(fmt.Sprintf("`BENCH_SWEEP_OBJECTS=%d %s`; the S3 requests are those the sweep's client sends, per sweep.", r.sweepObjects, command),
		"bucket", "time per sweep", "list requests", "all S3 requests")
	for _, name := range order {
		st := stats[name]
		var objects, pending int
		_, _ = fmt.Sscanf(name, "pkg/reconcile | Sweep/objects=%d/pending=%d", &objects, &pending)
		secs := make([]float64, len(st["ns/op"]))
		for i, ns := range st["ns/op"] {
			secs[i] = ns / 1e9
		}
		t.row(fmt.Sprintf("%d objects, %d pending", objects, pending), dist(secs, "%.2f s"), median(st["list-requests/sweep"]), median(st["s3-requests/sweep"]))
		if pending == 0 {
			all, lists, limit := median(st["s3-requests/sweep"]), median(st["list-requests/sweep"]), 2*(objects/1000+1)+1
			r.target(fmt.Sprintf("S3 requests of a sweep of %d objects, nothing pending", objects), fmt.Sprintf("%.0f (%.0f list requests)", all, lists),
				fmt.Sprintf("list requests (and the position's read), <= %d", limit), all <= lists+1 && all <= float64(limit))
		}
	}
	if len(order) != 2 {
		return fmt.Errorf("want 2 sweep benchmarks in the output of go test, got %q", order)
	}

	args := []string{"-bench", "SweepMemory", "-benchtime", "1x", "./pkg/reconcile/"}
	if r.benchTime == "1x" { // -quick: the smallest bucket only
		args = append([]string{"-short"}, args...)
	}
	command, order, stats, err = r.goTest(ctx, nil, args...)
	if err != nil {
		return err
	}
	t = r.table(fmt.Sprintf("`%s`: a sweep of a synthetic bucket (a lister that computes its pages, every object decided) through the real sweep and ledger; the peak Go heap in use during the sweep, sampled every 5 ms.", command),
		"objects", "time per sweep", "peak heap", "list requests", "lists per 1,000 objects")
	var peaks []float64
	for _, name := range order {
		st := stats[name]
		var objects int
		_, _ = fmt.Sscanf(name, "pkg/reconcile | SweepMemory/objects=%d", &objects)
		peak := median(st["peak-heap-MiB"])
		peaks = append(peaks, peak)
		t.row(objects, fmt.Sprintf("%.2f s", median(st["ns/op"])/1e9), fmt.Sprintf("%.1f MiB", peak), median(st["list-requests/sweep"]), fmt.Sprintf("%.1f", median(st["lists-per-1000-objects"])))
	}
	if len(peaks) == 0 {
		return fmt.Errorf("no SweepMemory benchmark in the output of go test")
	}
	lo, hi := slices.Min(peaks), slices.Max(peaks)
	r.target("sweep peak heap, 10,000 to 1,000,000 objects", fmt.Sprintf("%.1f–%.1f MiB", lo, hi), "< 32 MiB, not growing with the count", hi < 32 && hi-lo < 8)
	return nil
}
