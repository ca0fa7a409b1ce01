package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/bench"
)

// goBench is one Go benchmark over -count runs.
type goBench struct {
	name   string
	ns     bench.Summary
	bytes  bench.Summary
	allocs bench.Summary
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+([0-9.]+) ns/op(.*)$`)

// parseGoBench reads `go test -bench -benchmem` output, in order of first
// appearance.
func parseGoBench(out string) []goBench {
	var order []string
	ns, bs, al := map[string][]float64{}, map[string][]float64{}, map[string][]float64{}
	s := bufio.NewScanner(strings.NewReader(out))
	for s.Scan() {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(s.Text()))
		if m == nil {
			continue
		}
		name := m[1]
		if _, ok := ns[name]; !ok {
			order = append(order, name)
		}
		v, _ := strconv.ParseFloat(m[2], 64)
		ns[name] = append(ns[name], v)
		f := strings.Fields(m[3])
		for i := 1; i < len(f); i++ {
			x, err := strconv.ParseFloat(f[i-1], 64)
			if err != nil {
				continue
			}
			switch f[i] {
			case "B/op":
				bs[name] = append(bs[name], x)
			case "allocs/op":
				al[name] = append(al[name], x)
			}
		}
	}
	res := make([]goBench, 0, len(order))
	for _, n := range order {
		res = append(res, goBench{name: n, ns: bench.Summarize(ns[n]), bytes: bench.Summarize(bs[n]), allocs: bench.Summarize(al[n])})
	}
	return res
}

// goTest runs go test benchmarks of pkg and returns its output.
func (r *runner) goTest(ctx context.Context, pkg string, env []string, args ...string) (string, error) {
	all := append([]string{"test", "-run", "^$", "-benchmem", "-count", strconv.Itoa(r.plan.goBenchCount)}, args...)
	all = append(all, pkg)
	cmd := exec.CommandContext(ctx, "go", all...)
	cmd.Dir = r.root
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(all, " "), err, out.String())
	}
	return out.String(), nil
}

// goBenchmarks runs the in-process handler benchmarks of package bench
// against the local NXCloud served by this process (so their allocations are
// the caller's only) and BenchmarkSign of pkg/nxcloud.
func (r *runner) goBenchmarks(ctx context.Context) error {
	out, err := r.goTest(ctx, "./bench/", []string{"BENCH_NXCLOUD_URL=" + r.nxURL, "BENCH_MEDIA_ID=" + mediaID},
		"-bench", "^Benchmark(Handler|Plain)", "-benchtime", r.plan.goBenchTime)
	if err != nil {
		return err
	}
	r.rep.handlerBench = parseGoBench(out)
	out, err = r.goTest(ctx, "./pkg/nxcloud/", nil, "-bench", "^BenchmarkSign$")
	if err != nil {
		return err
	}
	r.rep.signBench = parseGoBench(out)
	if len(r.rep.handlerBench) < 4 || len(r.rep.signBench) < 2 {
		return fmt.Errorf("expected 4 handler and 2 sign benchmarks, parsed %d and %d", len(r.rep.handlerBench), len(r.rep.signBench))
	}
	return nil
}
