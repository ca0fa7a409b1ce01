package main

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/bench"
)

type sizeRow struct {
	id, arch     string
	bytes, hello int64
	limit        float64
}

func (s sizeRow) ratio() float64 { return float64(s.bytes) / float64(s.hello) }

type depsRow struct {
	id, pkg string
	deps    int
	s3      []string
}

type initRow struct {
	id string
	ms bench.Summary
}

type initTraceResult struct {
	runs       int
	pkgMedian  map[string]map[string]float64 // id -> package -> median ms
	total      map[string]bench.Summary      // id -> sum of package inits, ms
	done       map[string]bench.Summary      // id -> ms from start to the last init's end
	count      map[string]int                // id -> packages with an init
	allocBytes map[string]float64            // id -> median bytes allocated by inits
	top        []string
}

type namedSummary struct {
	name string
	s    bench.Summary
}

type warmRow struct {
	id               string
	invoke, duration bench.Summary // µs
	plain            bench.Summary // µs
	hello            bench.Summary // µs, the hello world through the Runtime API
	newConns         int64         // connections the local NXCloud accepted during the warm run
	first            float64       // µs
	invocations      int
	secretCalls      int
	elapsed          time.Duration
}

type ttlRow struct {
	ttl, elapsed                 time.Duration
	invocations, calls, expected int
}

type delayRow struct {
	delay         time.Duration
	first, second bench.Summary // ms
	callsPerStart float64
}

type uploadRow struct {
	sizeMiB, reps               int64
	fnTP, fnCPU                 bench.Summary
	fnRSS                       float64 // MiB
	rawTP, rawCPU, rawRSS       bench.Summary
	naiveTP, naiveCPU, naiveRSS bench.Summary
	fnXfer, rawXfer             bench.Summary // MiB/s while NXCloud received the body
	fnFixed, rawFixed           bench.Summary // ms outside that transfer
}

// report is everything a run measured.
type report struct {
	machine           machine
	quick             bool
	started, finished time.Time

	sizes, helloSizes []sizeRow
	deps              []depsRow
	inits             []initRow
	trace             initTraceResult
	appNew            []namedSummary
	warm              []warmRow
	ttl               ttlRow
	delay             []delayRow
	handlerBench      []goBench
	signBench         []goBench
	uploads           []uploadRow
}

// target is one checked target.
type target struct {
	area, what, value, goal string
	met                     bool
}

func metText(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

// spread formats a summary as "median [p10, p90]" (or [min, max] for fewer
// than 10 samples).
func spread(s bench.Summary, format string) string {
	if s.N == 0 {
		return "n/a"
	}
	lo, hi, tag := s.P10, s.P90, "p10–p90"
	if s.N < 10 {
		lo, hi, tag = s.Min, s.Max, "min–max"
	}
	f := func(x float64) string { return fmt.Sprintf(format, x) }
	return fmt.Sprintf("%s (%s %s–%s, n=%d)", f(s.Median), tag, f(lo), f(hi), s.N)
}

func mibs(b int64) string { return fmt.Sprintf("%.2f MiB", float64(b)/(1<<20)) }

func (r *report) initOf(id string) bench.Summary {
	for _, row := range r.inits {
		if row.id == id {
			return row.ms
		}
	}
	return bench.Summary{}
}

func (r *report) goBenchOf(list []goBench, name string) (goBench, bool) {
	for _, g := range list {
		if g.name == name {
			return g, true
		}
	}
	return goBench{}, false
}

// targets checks every target.
func (r *report) targets() []target {
	var ts []target
	for _, s := range r.sizes {
		ts = append(ts, target{area: "size", what: short(s.id) + " " + s.arch + " binary vs hello",
			value: fmt.Sprintf("%.2fx (%s vs %s)", s.ratio(), mibs(s.bytes), mibs(s.hello)),
			goal:  fmt.Sprintf("<= %.1fx", s.limit), met: s.ratio() <= s.limit})
	}
	for _, d := range r.deps {
		if d.id == "UploadTemplateFileFunction" {
			continue
		}
		v := "no S3 client linked"
		if len(d.s3) > 0 {
			v = "links " + strings.Join(d.s3, ", ")
		}
		ts = append(ts, target{area: "size", what: short(d.id) + " links no S3 client (go list -deps)", value: v, goal: "none", met: len(d.s3) == 0})
	}
	hello := r.initOf(helloID)
	for _, row := range r.inits {
		if row.id == helloID {
			continue
		}
		diff := row.ms.Median - hello.Median
		ts = append(ts, target{area: "init", what: short(row.id) + " init p50 - hello init p50",
			value: fmt.Sprintf("%+.2f ms (%.2f vs %.2f ms)", diff, row.ms.Median, hello.Median), goal: "<= 5 ms", met: diff <= 5})
	}
	for _, w := range r.warm {
		ratio := w.invoke.Median / w.plain.Median
		ts = append(ts, target{area: "warm", what: short(w.id) + " warm invocation p50 vs plain call p50",
			value: fmt.Sprintf("%.2fx (%.0f vs %.0f µs)", ratio, w.invoke.Median, w.plain.Median), goal: "<= 1.5x", met: ratio <= 1.5})
	}
	for _, pair := range [][3]string{{"get", "BenchmarkHandlerGet", "BenchmarkPlainGet"}, {"delete", "BenchmarkHandlerDelete", "BenchmarkPlainDelete"}} {
		h, ok1 := r.goBenchOf(r.handlerBench, pair[1])
		p, ok2 := r.goBenchOf(r.handlerBench, pair[2])
		if ok1 && ok2 {
			ratio := h.ns.Median / p.ns.Median
			ts = append(ts, target{area: "warm", what: pair[0] + " handler path in process vs plain call (Go benchmark)",
				value: fmt.Sprintf("%.2fx (%.0f vs %.0f µs; %.0f vs %.0f allocs)", ratio, h.ns.Median/1000, p.ns.Median/1000, h.allocs.Median, p.allocs.Median),
				goal:  "<= 1.5x", met: ratio <= 1.5})
		}
	}
	for _, w := range r.warm {
		expected := int(math.Ceil(w.elapsed.Seconds() / (5 * time.Minute).Seconds()))
		ts = append(ts, target{area: "secrets", what: fmt.Sprintf("%s GetSecretValue calls over %d warm invocations (TTL 5m, run %.1fs)", short(w.id), w.invocations, w.elapsed.Seconds()),
			value: fmt.Sprintf("%d", w.secretCalls),
			goal:  fmt.Sprintf("1 per TTL (%d)", expected), met: w.secretCalls == expected})
	}
	if r.ttl.invocations > 0 {
		ts = append(ts, target{area: "secrets", what: fmt.Sprintf("GetSecretValue calls with TTL %s over %.1fs (%d invocations)", r.ttl.ttl, r.ttl.elapsed.Seconds(), r.ttl.invocations),
			value: fmt.Sprint(r.ttl.calls), goal: fmt.Sprintf("1 per TTL (%d or %d)", r.ttl.expected, r.ttl.expected+1),
			met: r.ttl.calls >= r.ttl.expected && r.ttl.calls <= r.ttl.expected+1})
	}
	minRSS, maxRSS := math.Inf(1), math.Inf(-1)
	for _, u := range r.uploads {
		ratio := u.fnTP.Median / u.rawTP.Median
		ts = append(ts, target{area: "upload", what: fmt.Sprintf("%d MiB throughput vs raw io.Copy", u.sizeMiB),
			value: fmt.Sprintf("%.2fx (%.0f vs %.0f MiB/s)", ratio, u.fnTP.Median, u.rawTP.Median), goal: ">= 0.85x", met: ratio >= 0.85})
		ts = append(ts, target{area: "upload", what: fmt.Sprintf("%d MiB peak RSS of the function", u.sizeMiB),
			value: fmt.Sprintf("%.1f MiB", u.fnRSS), goal: "< 32 MiB", met: u.fnRSS < 32})
		minRSS, maxRSS = math.Min(minRSS, u.fnRSS), math.Max(maxRSS, u.fnRSS)
	}
	if len(r.uploads) > 1 {
		ts = append(ts, target{area: "upload", what: fmt.Sprintf("peak RSS flat from %d to %d MiB", r.uploads[0].sizeMiB, r.uploads[len(r.uploads)-1].sizeMiB),
			value: fmt.Sprintf("spread %.1f MiB (%.1f–%.1f)", maxRSS-minRSS, minRSS, maxRSS), goal: "spread <= 8 MiB", met: maxRSS-minRSS <= 8})
	}
	return ts
}

// summaryText is the table printed to stdout.
func (r *report) summaryText() string {
	var b strings.Builder
	ts := r.targets()
	w := 0
	for _, t := range ts {
		w = max(w, len(t.area)+len(t.what)+2)
	}
	fmt.Fprintf(&b, "\n%-*s  %-40s  %-22s  %s\n", w, "target", "measured", "goal", "")
	for _, t := range ts {
		met := "met"
		if !t.met {
			met = "NOT MET"
		}
		fmt.Fprintf(&b, "%-*s  %-40s  %-22s  %s\n", w, t.area+": "+t.what, t.value, t.goal, met)
	}
	for _, s := range r.signBench {
		fmt.Fprintf(&b, "%-*s  %-40s\n", w, "sign: "+strings.TrimPrefix(s.name, "BenchmarkSign/"),
			fmt.Sprintf("%.0f ns/op, %.0f allocs/op", s.ns.Median, s.allocs.Median))
	}
	for _, g := range r.handlerBench {
		fmt.Fprintf(&b, "%-*s  %-40s\n", w, "in-process: "+strings.TrimPrefix(g.name, "Benchmark"),
			fmt.Sprintf("%.0f µs/op, %.0f allocs/op, %.0f B/op", g.ns.Median/1000, g.allocs.Median, g.bytes.Median))
	}
	return b.String()
}
