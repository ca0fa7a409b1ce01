package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/bench"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart"
)

// initIDs are the binaries whose init is measured, the floor first.
var initIDs = []string{helloID, "GetMediaFunction", "DeleteMediaFunction", "UploadTemplateFileFunction"}

// startOnce starts bin under the Runtime API, waits for its init and stops it.
func (r *runner) startOnce(ctx context.Context, id string, env []string, stderr *syncBuffer) (time.Duration, error) {
	fn := lambdart.Function{Name: id, Path: r.hostBin[id], Env: env, Timeout: 15 * time.Second}
	if stderr != nil {
		fn.Stderr = stderr
	}
	rt, err := lambdart.Start(ctx, fn)
	if err != nil {
		return 0, err
	}
	d := rt.LastInitDuration()
	if err := rt.Close(); err != nil {
		return 0, err
	}
	return d, nil
}

// initTimes starts every binary plan.initStarts times, interleaved so that a
// load change on the shared machine hits all of them alike.
func (r *runner) initTimes(ctx context.Context) error {
	env := r.functionEnv()
	ms := map[string][]float64{}
	for i := 0; i < r.plan.initStarts; i++ {
		for _, id := range initIDs {
			d, err := r.startOnce(ctx, id, env, nil)
			if err != nil {
				return fmt.Errorf("start %s: %w", id, err)
			}
			ms[id] = append(ms[id], float64(d)/float64(time.Millisecond))
		}
	}
	for _, id := range initIDs {
		r.rep.inits = append(r.rep.inits, initRow{id: id, ms: bench.Summarize(ms[id])})
	}
	return nil
}

var initLine = regexp.MustCompile(`^init (\S+) @([0-9.]+) ms, ([0-9.]+) ms clock, ([0-9]+) bytes, ([0-9]+) allocs`)

// traceRun is one process's GODEBUG=inittrace=1 output.
type traceRun struct {
	clock map[string]float64 // package -> ms of init
	bytes map[string]float64
	done  float64 // ms from process start to the end of the last package init
}

func parseInitTrace(out string) traceRun {
	t := traceRun{clock: map[string]float64{}, bytes: map[string]float64{}}
	s := bufio.NewScanner(strings.NewReader(out))
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		m := initLine.FindStringSubmatch(s.Text())
		if m == nil {
			continue
		}
		at, _ := strconv.ParseFloat(m[2], 64)
		clock, _ := strconv.ParseFloat(m[3], 64)
		b, _ := strconv.ParseFloat(m[4], 64)
		t.clock[m[1]] += clock
		t.bytes[m[1]] += b
		if at+clock > t.done {
			t.done = at + clock
		}
	}
	return t
}

// initTrace starts each binary with GODEBUG=inittrace=1 and summarises the
// package init times.
func (r *runner) initTrace(ctx context.Context) error {
	env := r.functionEnv("GODEBUG=inittrace=1")
	runs := map[string][]traceRun{}
	for i := 0; i < r.plan.traceStarts; i++ {
		for _, id := range initIDs {
			var buf syncBuffer
			if _, err := r.startOnce(ctx, id, env, &buf); err != nil {
				return fmt.Errorf("start %s: %w", id, err)
			}
			tr := parseInitTrace(buf.String())
			if len(tr.clock) == 0 {
				return fmt.Errorf("%s printed no inittrace lines with GODEBUG=inittrace=1", id)
			}
			runs[id] = append(runs[id], tr)
		}
	}
	tr := initTraceResult{runs: len(runs[helloID]), pkgMedian: map[string]map[string]float64{}, total: map[string]bench.Summary{},
		done: map[string]bench.Summary{}, count: map[string]int{}, allocBytes: map[string]float64{}}
	for _, id := range initIDs {
		per := map[string][]float64{}
		var totals, dones, allocs []float64
		for _, run := range runs[id] {
			var sum, b float64
			for p, c := range run.clock {
				per[p] = append(per[p], c)
				sum += c
				b += run.bytes[p]
			}
			totals = append(totals, sum)
			dones = append(dones, run.done)
			allocs = append(allocs, b)
		}
		med := map[string]float64{}
		for p, xs := range per {
			med[p] = bench.Summarize(xs).Median
		}
		tr.pkgMedian[id] = med
		tr.total[id] = bench.Summarize(totals)
		tr.done[id] = bench.Summarize(dones)
		tr.count[id] = len(per)
		tr.allocBytes[id] = bench.Summarize(allocs).Median
	}
	// The packages that cost the get function the most, then the upload's.
	seen := map[string]bool{}
	for _, id := range []string{"GetMediaFunction", "UploadTemplateFileFunction"} {
		pk := make([]string, 0, len(tr.pkgMedian[id]))
		for p := range tr.pkgMedian[id] {
			pk = append(pk, p)
		}
		sort.Slice(pk, func(i, j int) bool { return tr.pkgMedian[id][pk[i]] > tr.pkgMedian[id][pk[j]] })
		for n, p := range pk {
			if n >= 10 {
				break
			}
			if !seen[p] {
				seen[p] = true
				tr.top = append(tr.top, p)
			}
		}
	}
	sort.SliceStable(tr.top, func(i, j int) bool {
		return tr.pkgMedian["GetMediaFunction"][tr.top[i]] > tr.pkgMedian["GetMediaFunction"][tr.top[j]]
	})
	r.rep.trace = tr
	return nil
}

// appNew runs bench/appnew in fresh processes with the get function's
// environment: app.New as a whole, and its steps one by one.
func (r *runner) appNew(ctx context.Context) error {
	env := append(lambdaLikeEnv("GetMediaFunction"), r.functionEnv()...)
	steps := map[string][]float64{}
	for i := 0; i < r.plan.probeRuns; i++ {
		for _, mode := range []string{"app", "steps"} {
			cmd := exec.CommandContext(ctx, r.hostBin[probeID], "-mode="+mode)
			cmd.Env = env
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				return fmt.Errorf("appnew -mode=%s: %w: %s", mode, err, stderr.String())
			}
			var m map[string]int64
			if err := json.Unmarshal(out, &m); err != nil {
				return fmt.Errorf("appnew -mode=%s printed %q: %w", mode, out, err)
			}
			for k, v := range m {
				steps[k] = append(steps[k], float64(v)/1e6)
			}
		}
	}
	order := []string{"app.New", "config.FromEnv", "awsconfig.LoadDefaultConfig", "secretsmanager.NewFromConfig",
		"secret.NewProvider", "nxcloud.NewClient", "s3.NewFromConfig (upload only)"}
	for _, k := range order {
		if xs, ok := steps[k]; ok {
			r.rep.appNew = append(r.rep.appNew, namedSummary{name: k, s: bench.Summarize(xs)})
		}
	}
	return nil
}

// lambdaLikeEnv is the part of Lambda's environment a probe process needs to
// see what a function sees (lambdart adds the same to the functions).
func lambdaLikeEnv(name string) []string {
	return []string{
		"PATH=/usr/local/bin:/usr/bin/:/bin:/opt/bin", "LANG=en_US.UTF-8", "TZ=:UTC",
		"AWS_REGION=" + lambdart.DefaultRegion, "AWS_DEFAULT_REGION=" + lambdart.DefaultRegion,
		"AWS_EXECUTION_ENV=AWS_Lambda_provided.al2023", "AWS_LAMBDA_FUNCTION_NAME=" + name,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128",
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
