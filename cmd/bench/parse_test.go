package main

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/bench"
)

func TestParseInitTrace(t *testing.T) {
	t.Parallel()
	out := strings.Join([]string{
		"init internal/bytealg @0.008 ms, 0 ms clock, 0 bytes, 0 allocs",
		"init runtime @0.10 ms, 0.050 ms clock, 1024 bytes, 3 allocs",
		"some other line the function wrote",
		"init github.com/aws/aws-sdk-go-v2/service/sso/internal/endpoints @2.5 ms, 0.75 ms clock, 40960 bytes, 200 allocs",
		"init runtime @3.0 ms, 0.25 ms clock, 0 bytes, 0 allocs",
	}, "\n")
	tr := parseInitTrace(out)
	tests := []struct {
		pkg   string
		clock float64
	}{
		{"internal/bytealg", 0},
		{"runtime", 0.3}, // a package seen twice adds up
		{"github.com/aws/aws-sdk-go-v2/service/sso/internal/endpoints", 0.75},
	}
	for _, tc := range tests {
		t.Run(tc.pkg, func(t *testing.T) {
			if got, ok := tr.clock[tc.pkg]; !ok || got < tc.clock-1e-9 || got > tc.clock+1e-9 {
				t.Fatalf("clock = %v (present %v), want %v", got, ok, tc.clock)
			}
		})
	}
	if len(tr.clock) != 3 {
		t.Fatalf("%d packages, want 3", len(tr.clock))
	}
	if tr.done < 3.25-1e-9 || tr.done > 3.25+1e-9 {
		t.Fatalf("done = %v, want 3.25", tr.done)
	}
}

func TestParseGoBench(t *testing.T) {
	t.Parallel()
	out := `goos: linux
BenchmarkSign/md5-2         	 1000000	       947.0 ns/op	 211.19 MB/s	     304 B/op	       2 allocs/op
BenchmarkSign/sha256-2      	 1000000	      1024 ns/op	 195.31 MB/s	     336 B/op	       2 allocs/op
BenchmarkSign/md5-2         	 1000000	       953.0 ns/op	 209.86 MB/s	     304 B/op	       2 allocs/op
BenchmarkHandlerGet         	     300	    851000 ns/op	   12758 B/op	     155 allocs/op
PASS`
	got := parseGoBench(out)
	if len(got) != 3 {
		t.Fatalf("%d benchmarks, want 3: %+v", len(got), got)
	}
	tests := []struct {
		i            int
		name         string
		n            int
		ns, b, alloc float64
	}{
		{0, "BenchmarkSign/md5", 2, 950, 304, 2},
		{1, "BenchmarkSign/sha256", 1, 1024, 336, 2},
		{2, "BenchmarkHandlerGet", 1, 851000, 12758, 155},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := got[tc.i]
			if g.name != tc.name || g.ns.N != tc.n || g.ns.Median != tc.ns || g.bytes.Median != tc.b || g.allocs.Median != tc.alloc {
				t.Fatalf("got %+v", g)
			}
		})
	}
}

func TestPatternReadsAndSeeks(t *testing.T) {
	t.Parallel()
	const size = 3*mib + 123
	p := newPattern(size)
	all, err := io.ReadAll(p)
	if err != nil || len(all) != size {
		t.Fatalf("read %d bytes, %v; want %d", len(all), err, size)
	}
	if !bytes.Equal(all[:mib], all[mib:2*mib]) || bytes.Equal(all[:64], make([]byte, 64)) {
		t.Fatal("not a repeated pseudo-random block")
	}
	for _, off := range []int64{0, 1, mib - 1, mib + 7, size - 1} {
		if _, err := p.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1)
		if _, err := io.ReadFull(p, b); err != nil || b[0] != all[off] {
			t.Fatalf("byte at %d = %v (%v), want %v", off, b[0], err, all[off])
		}
	}
	if _, err := p.Seek(-1, io.SeekStart); err == nil {
		t.Fatal("negative offset accepted")
	}
}

func TestProcCPU(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	x := 0
	for i := 0; i < 50_000_000; i++ {
		x += i % 7
	}
	_ = x
	s, err := procCPU(os.Getpid(), 100)
	if err != nil {
		t.Fatal(err)
	}
	if s <= 0 {
		t.Fatalf("cpu = %v after a busy loop, want > 0", s)
	}
	if _, err := procCPU(1<<30, 100); err == nil {
		t.Fatal("no error for a missing process")
	}
}

func TestTargets(t *testing.T) {
	t.Parallel()
	r := &report{
		sizes: []sizeRow{
			{id: "GetMediaFunction", arch: "arm64", bytes: 160, hello: 100, limit: 1.6},
			{id: "UploadTemplateFileFunction", arch: "arm64", bytes: 201, hello: 100, limit: 2},
		},
		inits: []initRow{
			{id: helloID, ms: bench.Summarize([]float64{20})},
			{id: "GetMediaFunction", ms: bench.Summarize([]float64{24.9})},
			{id: "UploadTemplateFileFunction", ms: bench.Summarize([]float64{25.1})},
		},
		uploads: []uploadRow{
			{sizeMiB: 1, fnTP: bench.Summarize([]float64{85}), rawTP: bench.Summarize([]float64{100}), fnRSS: 12},
			{sizeMiB: 1024, fnTP: bench.Summarize([]float64{84}), rawTP: bench.Summarize([]float64{100}), fnRSS: 33},
		},
	}
	want := map[string]bool{
		"get arm64 binary vs hello":          true,
		"upload arm64 binary vs hello":       false,
		"get init p50 - hello init p50":      true,
		"upload init p50 - hello init p50":   false,
		"1 MiB throughput vs raw io.Copy":    true,
		"1024 MiB throughput vs raw io.Copy": false,
		"1 MiB peak RSS of the function":     true,
		"1024 MiB peak RSS of the function":  false,
		"peak RSS flat from 1 to 1024 MiB":   false,
	}
	got := map[string]bool{}
	for _, tg := range r.targets() {
		got[tg.what] = tg.met
	}
	for what, met := range want {
		t.Run(what, func(t *testing.T) {
			if g, ok := got[what]; !ok || g != met {
				t.Fatalf("met = %v (present %v), want %v; all: %v", g, ok, met, got)
			}
		})
	}
}
