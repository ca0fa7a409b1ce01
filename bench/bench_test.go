package bench_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/bench"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
)

func TestNewJSONRequestIsAcceptedByTheLocalNXCloud(t *testing.T) {
	t.Parallel()
	srv := nxcloudtest.NewTestServer(t)
	hc := &http.Client{}
	tests := []struct {
		name   string
		alg    nxcloud.Algorithm
		action string
		cred   nxcloud.Credentials
		want   int // NXCloud code
	}{
		{name: "get md5", alg: nxcloud.MD5, action: nxcloud.ActionGetMedia, cred: benchCred, want: 0},
		{name: "get sha256", alg: nxcloud.SHA256, action: nxcloud.ActionGetMedia, cred: benchCred, want: 0},
		{name: "delete md5", alg: nxcloud.MD5, action: nxcloud.ActionDeleteMedia, cred: benchCred, want: 0},
		{name: "wrong secret", alg: nxcloud.MD5, action: nxcloud.ActionGetMedia,
			cred: nxcloud.Credentials{AccessKey: benchCred.AccessKey, AccessSecret: "wrong"}, want: nxcloudtest.CodeBadSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := srv.AddMedia(nxcloudtest.Media{MimeType: "application/pdf", FileName: "a.pdf"})
			req, err := bench.NewJSONRequest(context.Background(), srv.URL(), tc.cred, tc.alg, tc.action, benchPhone, id, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			ans, err := bench.Do(hc, req)
			if ans.Code != tc.want {
				t.Fatalf("code %d (%v), want %d", ans.Code, err, tc.want)
			}
			if (err == nil) != (tc.want == 0) {
				t.Fatalf("error %v for code %d", err, ans.Code)
			}
			if _, kept := srv.Media(id); tc.want == 0 && kept == (tc.action == nxcloud.ActionDeleteMedia) {
				t.Fatalf("media kept = %v after %s", kept, tc.action)
			}
		})
	}
}

func TestNewJSONRequestRefusesUploadAction(t *testing.T) {
	t.Parallel()
	_, err := bench.NewJSONRequest(context.Background(), "http://127.0.0.1:1", benchCred, nxcloud.MD5, nxcloud.ActionUploadTemplateFile, benchPhone, "x", time.Now())
	if err == nil || !strings.Contains(err.Error(), "getMedia") {
		t.Fatalf("err = %v, want one naming the JSON actions", err)
	}
}

func TestNewUploadRequestStreamsAnExactBody(t *testing.T) {
	t.Parallel()
	srv := nxcloudtest.NewTestServer(t, nxcloudtest.WithDiscardUploads(true))
	content := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	frame, err := bench.NewUploadFrame(benchPhone, "application/pdf", "menu.pdf")
	if err != nil {
		t.Fatal(err)
	}
	// The reader holds more than size: exactly size bytes must be sent.
	body := bytes.NewReader(append(bytes.Clone(content), "trailing"...))
	req, err := bench.NewUploadRequest(context.Background(), srv.URL(), benchCred, nxcloud.SHA256, frame, body, int64(len(content)), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ans, err := bench.Do(&http.Client{}, req)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(ans.Data, []byte(`"id"`)) {
		t.Fatalf("answer data %s has no id", ans.Data)
	}
	calls := srv.Calls(nxcloud.ActionUploadTemplateFile)
	if len(calls) != 1 {
		t.Fatalf("%d upload calls, want 1", len(calls))
	}
	sum := sha256.Sum256(content)
	c := calls[0]
	if c.FileSize != int64(len(content)) || c.FileSHA256 != hex.EncodeToString(sum[:]) || c.FileName != "menu.pdf" || c.ContentLength != frame.ContentLength(int64(len(content))) {
		t.Fatalf("server saw size %d sha %s name %q length %d", c.FileSize, c.FileSHA256, c.FileName, c.ContentLength)
	}
}

func TestNewUploadFrameNeedsItsFields(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, phone, typ, file string }{
		{"no phone", "", "application/pdf", "a.pdf"},
		{"no type", benchPhone, "", "a.pdf"},
		{"no file name", benchPhone, "application/pdf", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := bench.NewUploadFrame(tc.phone, tc.typ, tc.file); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []float64
		want bench.Summary
	}{
		{name: "empty", in: nil, want: bench.Summary{}},
		{name: "one", in: []float64{7}, want: bench.Summary{N: 1, Min: 7, P10: 7, Median: 7, P90: 7, Max: 7, Mean: 7}},
		{name: "unsorted ten", in: []float64{10, 1, 9, 2, 8, 3, 7, 4, 6, 5},
			want: bench.Summary{N: 10, Min: 1, P10: 1.9, Median: 5.5, P90: 9.1, Max: 10, Mean: 5.5}},
		{name: "even pair", in: []float64{4, 2}, want: bench.Summary{N: 2, Min: 2, P10: 2.2, Median: 3, P90: 3.8, Max: 4, Mean: 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := append([]float64(nil), tc.in...)
			got := bench.Summarize(in)
			near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
			if got.N != tc.want.N || !near(got.Min, tc.want.Min) || !near(got.P10, tc.want.P10) || !near(got.Median, tc.want.Median) ||
				!near(got.P90, tc.want.P90) || !near(got.Max, tc.want.Max) || !near(got.Mean, tc.want.Mean) {
				t.Fatalf("Summarize(%v) = %+v, want %+v", tc.in, got, tc.want)
			}
			for i := range in {
				if in[i] != tc.in[i] {
					t.Fatal("Summarize modified its input")
				}
			}
		})
	}
}

func TestStickyMediaSurvivesDelete(t *testing.T) {
	t.Parallel()
	srv := nxcloudtest.NewServer()
	m := nxcloudtest.Media{ID: "sticky-1", MimeType: "application/pdf", FileName: "a.pdf"}
	hs := &http.Server{Handler: bench.StickyMedia(srv, m), ReadHeaderTimeout: time.Second}
	ln := listen(t)
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	url := "http://" + ln.Addr().String()
	for i := 0; i < 3; i++ {
		req, err := bench.NewJSONRequest(context.Background(), url, benchCred, nxcloud.MD5, nxcloud.ActionDeleteMedia, benchPhone, m.ID, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bench.Do(&http.Client{}, req); err != nil {
			t.Fatalf("delete %d: %v", i+1, err)
		}
	}
	if _, ok := srv.Media(m.ID); !ok {
		t.Fatal("media gone after delete")
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
