package main

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/bench"
)

// markdown renders BENCHMARKS.md.
func (r *report) markdown() string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	m := r.machine
	mode := "a full run, `make bench`"
	if r.quick {
		mode = "a quick run, `make bench-ci`: small sizes, few repetitions; figures are indicative only"
	}
	p("# Benchmarks\n\n")
	p("Written by `go run ./cmd/bench -out BENCHMARKS.md` (%s); do not edit by hand, rerun it.\n", mode)
	p("Every figure is a median with its spread over repeated runs: p10–p90 when there are 10 samples or more, else min–max.\n")
	p("Targets are reported as met or not met; nothing fails on a number.\n\n")
	p("| | |\n|---|---|\n")
	p("| run | %s, %s |\n", r.started.UTC().Format(time.RFC3339), r.finished.Sub(r.started).Round(time.Second))
	dirty := ""
	if m.dirty {
		dirty = " (with uncommitted changes in the working tree)"
	}
	p("| commit | `%s`%s |\n", m.commit, dirty)
	p("| Go | %s |\n", m.goVersion)
	p("| machine | %d cores (nproc), %s, %s memory, Linux %s |\n", m.nproc, m.cpuModel, m.memory, m.kernel)
	p("| load average (1/5/15 min) | %s at the start, %s at the end |\n\n", m.loadStart, m.loadEnd)
	p("The machine is shared (other builds and tests were running), so absolute figures are noisy; every comparison interleaves the function with its floor so that both see the same load.\n\n")

	p("## Targets\n\n| area | what | measured | target | |\n|---|---|---|---|---|\n")
	for _, t := range r.targets() {
		p("| %s | %s | %s | %s | %s |\n", t.area, t.what, t.value, t.goal, metText(t.met))
	}
	p("\n")

	// 1. Sizes.
	p("## 1. Binary size\n\n")
	p("Each bootstrap built exactly as shipped, `make build-<LogicalId> GOARCH=<arch>` (static, stripped, `-tags lambda.norpc -trimpath`); the floor is `bench/hello`, an aws-lambda-go hello world (`lambda.Start` of a trivial handler) built by the same Makefile recipe (`make build-HelloWorld FUNCTIONS=HelloWorld FUNCTION_DIR_HelloWorld=../bench/hello`).\n\n")
	p("| function | arch | size | hello | ratio | target |\n|---|---|---:|---:|---:|---|\n")
	for _, s := range r.sizes {
		p("| %s | %s | %s | %s | %.2fx | <= %.1fx %s |\n", short(s.id), s.arch, mibs(s.bytes), mibs(s.hello), s.ratio(), s.limit, metText(s.ratio() <= s.limit))
	}
	p("\n`go list -deps -tags lambda.norpc` (linux/arm64):\n\n| function | packages linked | S3 client |\n|---|---:|---|\n")
	for _, d := range r.deps {
		s3 := "none"
		if len(d.s3) > 0 {
			s3 = fmt.Sprintf("%d packages (%s)", len(d.s3), d.s3[0])
		}
		p("| %s | %d | %s |\n", short(d.id), d.deps, s3)
	}
	p("\n")

	// 2. Init.
	hello := r.initOf(helloID)
	p("## 2. Init time\n\n")
	p("Exec to the first `GET /2018-06-01/runtime/invocation/next`, as measured by `internal/lambdart` (the local Lambda Runtime API), each binary started %d times for this host (%s), in turn, with the local stack's environment; the floor is the hello world.\n\n", hello.N, "linux/"+runtime.GOARCH)
	p("| binary | init (ms) | p50 - hello p50 |\n|---|---|---:|\n")
	for _, row := range r.inits {
		p("| %s | %s | %+.2f ms |\n", short(row.id), spread(row.ms, "%.2f"), row.ms.Median-hello.Median)
	}
	if r.trace.runs > 0 {
		p("\nWhere the time goes: `GODEBUG=inittrace=1`, %d starts per binary, median per package (ms of clock time in the package's init functions).\n\n", r.trace.runs)
		p("| | hello | get | delete | upload |\n|---|---:|---:|---:|---:|\n")
		ids := []string{helloID, "GetMediaFunction", "DeleteMediaFunction", "UploadTemplateFileFunction"}
		row := func(name string, f func(id string) string) {
			p("| %s |", name)
			for _, id := range ids {
				p(" %s |", f(id))
			}
			p("\n")
		}
		row("packages with init work", func(id string) string { return fmt.Sprint(r.trace.count[id]) })
		row("sum of package inits (ms)", func(id string) string { return fmt.Sprintf("%.2f", r.trace.total[id].Median) })
		row("all inits done at (ms after start)", func(id string) string { return fmt.Sprintf("%.2f", r.trace.done[id].Median) })
		row("heap allocated by inits", func(id string) string { return fmt.Sprintf("%.0f KiB", r.trace.allocBytes[id]/1024) })
		for _, pkg := range r.trace.top {
			row("`"+pkg+"`", func(id string) string {
				v, ok := r.trace.pkgMedian[id][pkg]
				if !ok {
					return "–"
				}
				return fmt.Sprintf("%.3f", v)
			})
		}
	}
	if len(r.appNew) > 0 {
		p("\nThe work of `main` before `lambda.Start`: `app.New` (validated configuration, AWS configuration, Secrets Manager client, credential cache, NXCloud client) timed in a fresh process each time (`bench/appnew`, %d processes per mode, the get function's environment); `-mode=steps` times its parts one by one, each in its first call of the process.\n\n", r.appNew[0].s.N)
		p("| step | ms |\n|---|---|\n")
		for _, s := range r.appNew {
			p("| `%s` | %s |\n", s.name, spread(s.s, "%.3f"))
		}
	}
	p("\n")

	// 3. Warm.
	p("## 3. Warm invocations (get, delete)\n\n")
	p("An API Gateway HTTP API (payload 2.0) event in, the response out, through the Runtime API (`lambdart.Invoke`, timed in the benchmark process), against the local NXCloud in the benchmark process answering at once. The floor is the same signed NXCloud request (`bench.NewJSONRequest`, hand-signed) made by the benchmark process with a plain keep-alive `http.Client`, alternated with the invocations. \"In function\" is the Runtime API's own duration (event handed over to response posted).\n\n")
	p("A third column, alternated too, is the hello world invoked with the same event through the same Runtime API: what any function pays for the process hop, whatever it does.\n\n")
	p("| function | invocations | invoke (µs) | in function (µs) | plain call (µs) | hello world invoke (µs) | ratio to plain, p50 | first (cold) invocation | new NXCloud connections |\n|---|---:|---|---|---|---|---:|---:|---:|\n")
	for _, w := range r.warm {
		p("| %s | %d | %s | %s | %s | %s | %.2fx | %.1f ms | %d |\n", short(w.id), w.invoke.N, spread(w.invoke, "%.0f"), spread(w.duration, "%.0f"), spread(w.plain, "%.0f"),
			spread(w.hello, "%.0f"), w.invoke.Median/w.plain.Median, w.first/1000, w.newConns)
	}
	if len(r.handlerBench) > 0 {
		p("\nIn process (`go test -run '^$' -bench 'Handler|Plain' -benchmem ./bench`, `-count` runs, median): the handler path is the payload 2.0 event through `mediaapi.NewLambdaHandler` (aws-lambda-go-api-proxy `httpadapter.NewV2`) and the handler to a real `nxcloud.Client` with `nxcloud.StaticCredentials`; the plain call is the hand-signed request with `http.Client`. The local NXCloud runs in the `cmd/bench` process, so the allocations are the caller's only.\n\n")
		p("| benchmark | µs/op | B/op | allocs/op |\n|---|---|---:|---:|\n")
		for _, g := range r.handlerBench {
			p("| %s | %s | %.0f | %.0f |\n", strings.TrimPrefix(g.name, "Benchmark"), spread(scaled(g.ns, 1e-3), "%.1f"), g.bytes.Median, g.allocs.Median)
		}
		for _, pair := range [][2]string{{"BenchmarkHandlerGet", "BenchmarkPlainGet"}, {"BenchmarkHandlerDelete", "BenchmarkPlainDelete"}} {
			h, ok1 := r.goBenchOf(r.handlerBench, pair[0])
			pl, ok2 := r.goBenchOf(r.handlerBench, pair[1])
			if ok1 && ok2 {
				p("\n%s: %+.0f allocs and %+.0f B per call over the plain call (%.2fx the time).", strings.TrimPrefix(pair[0], "Benchmark"),
					h.allocs.Median-pl.allocs.Median, h.bytes.Median-pl.bytes.Median, h.ns.Median/pl.ns.Median)
			}
		}
		p("\n")
	}
	p("\n")

	// 4. Secrets.
	p("## 4. Secrets Manager\n\n")
	p("`GetSecretValue` calls counted by the local Secrets Manager (`internal/localsm` `Calls`).\n\n")
	p("| run | invocations | duration | GetSecretValue calls |\n|---|---:|---:|---:|\n")
	for _, w := range r.warm {
		p("| %s, warm run above (default TTL 5m) | %d | %.1f s | %d |\n", short(w.id), w.invocations, w.elapsed.Seconds(), w.secretCalls)
	}
	if r.ttl.invocations > 0 {
		p("| get, `NXCLOUD_SECRET_TTL=%s`, back-to-back | %d | %.1f s | %d (one per TTL: %d or %d) |\n", r.ttl.ttl, r.ttl.invocations, r.ttl.elapsed.Seconds(), r.ttl.calls, r.ttl.expected, r.ttl.expected+1)
	}
	if len(r.delay) > 0 {
		p("\nFirst invocation of a fresh get function (the secret is fetched on first use, not at init) with the Secrets Manager endpoint answering at once and after a 100 ms delay (`localsm.SetDelay`); the second invocation uses the cache.\n\n")
		p("| Secrets Manager delay | first invocation (ms) | second invocation (ms) | GetSecretValue calls per start |\n|---|---|---|---:|\n")
		for _, d := range r.delay {
			p("| %s | %s | %s | %.1f |\n", d.delay, spread(d.first, "%.1f"), spread(d.second, "%.1f"), d.callsPerStart)
		}
		if len(r.delay) == 2 {
			p("\nExtra latency of the first invocation: %.1f ms for a 100 ms slower Secrets Manager (one round trip, no retry).\n", r.delay[1].first.Median-r.delay[0].first.Median)
		}
	}
	p("\n")

	// 5. Upload.
	p("## 5. Streaming upload\n\n")
	p("The real upload function binary (host build), invoked through the Runtime API with the S3 event of an object in MinIO (the object is a pseudo-random 1 MiB block repeated; content type application/pdf), streaming to the local NXCloud in the benchmark process (uploads discarded after counting and hashing). The function was warmed with a 4 KiB upload first; between repetitions its tags are removed so the same event uploads again. Throughput is object size over the Runtime API's invocation duration (HeadObject, tag check, claim, GetObject streamed into the multipart POST, tagging, claim release). CPU is utime+stime of the function process from `/proc/<pid>/stat` per invocation (10 ms ticks: coarse for 1 MiB); peak RSS is its VmHWM after all repetitions of that size (one fresh process per size).\n\n")
	p("Peers (`bench/peer`, own process, same S3 client options, CPU from rusage including process start, peak RSS its own VmHWM, time from GetObject to NXCloud's answer): **raw** is `io.Copy` from the MinIO GetObject body straight into the signed NXCloud POST (the ceiling); **naive** reads the whole object into memory, builds the whole multipart body in memory, then POSTs it.\n\n")
	p("| size | reps | function MiB/s | raw MiB/s | naive MiB/s | function / raw |\n|---:|---:|---|---|---|---:|\n")
	for _, u := range r.uploads {
		p("| %d MiB | %d | %s | %s | %s | %.2fx |\n", u.sizeMiB, u.reps, spread(u.fnTP, "%.0f"), spread(u.rawTP, "%.0f"), spread(u.naiveTP, "%.0f"), u.fnTP.Median/u.rawTP.Median)
	}
	p("\nWhere the time goes: the transfer as the local NXCloud saw it (from the request's headers to the end of its body) and the rest of the measured time (the S3 calls before and after it; for the peer, its GetObject answering and its connection to NXCloud).\n\n")
	p("| size | function transfer MiB/s | raw transfer MiB/s | function time outside the transfer (ms) | raw time outside the transfer (ms) |\n|---:|---|---|---|---|\n")
	for _, u := range r.uploads {
		p("| %d MiB | %s | %s | %s | %s |\n", u.sizeMiB, spread(u.fnXfer, "%.0f"), spread(u.rawXfer, "%.0f"), spread(u.fnFixed, "%.0f"), spread(u.rawFixed, "%.0f"))
	}
	p("\n| size | function CPU s/GiB | raw CPU s/GiB | naive CPU s/GiB | function peak RSS | raw peak RSS | naive peak RSS |\n|---:|---|---|---|---:|---|---|\n")
	for _, u := range r.uploads {
		p("| %d MiB | %s | %s | %s | %.1f MiB | %s | %s |\n", u.sizeMiB, spread(u.fnCPU, "%.2f"), spread(u.rawCPU, "%.2f"), spread(u.naiveCPU, "%.2f"), u.fnRSS,
			spread(u.rawRSS, "%.1f MiB"), spread(u.naiveRSS, "%.1f MiB"))
	}
	p("\n")

	// 6. Signing.
	p("## 6. Signing\n\n`go test -run '^$' -bench '^BenchmarkSign$' -benchmem ./pkg/nxcloud` (200-byte body), `-count` runs.\n\n")
	p("| algorithm | ns/op | B/op | allocs/op |\n|---|---|---:|---:|\n")
	for _, s := range r.signBench {
		p("| %s | %s | %.0f | %.0f |\n", strings.TrimPrefix(s.name, "BenchmarkSign/"), spread(s.ns, "%.0f"), s.bytes.Median, s.allocs.Median)
	}
	p("\n")

	p("## Findings\n\n")
	for _, n := range r.findings() {
		p("- %s\n", n)
	}
	return b.String()
}

// scaled multiplies every figure of a summary by k.
func scaled(s bench.Summary, k float64) bench.Summary {
	s.Min, s.P10, s.Median, s.P90, s.Max, s.Mean = s.Min*k, s.P10*k, s.Median*k, s.P90*k, s.Max*k, s.Mean*k
	return s
}

// topInits lists the n packages whose init costs id the most.
func (r *report) topInits(id string, n int) []string {
	med := r.trace.pkgMedian[id]
	pk := make([]string, 0, len(med))
	for p := range med {
		pk = append(pk, p)
	}
	sort.Slice(pk, func(i, j int) bool { return med[pk[i]] > med[pk[j]] })
	if len(pk) > n {
		pk = pk[:n]
	}
	out := make([]string, len(pk))
	for i, p := range pk {
		out[i] = fmt.Sprintf("`%s` %.2f ms", p, med[p])
	}
	return out
}
