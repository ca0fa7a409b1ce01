package bench_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/bench"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/mediaapi"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
)

// Environment of the benchmarks: cmd/bench serves the local NXCloud from its
// own process (so that the allocations reported here are the caller's only)
// and names it in BENCH_NXCLOUD_URL, with the sticky media id in
// BENCH_MEDIA_ID; the server uses nxcloudtest's default credentials. Without
// them the benchmarks start the server in this process, and the allocations
// per operation then include the server's.
const (
	envURL     = "BENCH_NXCLOUD_URL"
	envMediaID = "BENCH_MEDIA_ID"
	benchPhone = "8615812341795"
)

var benchCred = nxcloud.Credentials{AccessKey: nxcloudtest.DefaultAccessKey, AccessSecret: nxcloudtest.DefaultAccessSecret}

// target returns the NXCloud base URL and the media id to ask for.
func target(b *testing.B) (string, string) {
	b.Helper()
	if u := os.Getenv(envURL); u != "" {
		id := os.Getenv(envMediaID)
		if id == "" {
			b.Fatalf("%s is set but %s is not: set both or neither", envURL, envMediaID)
		}
		return u, id
	}
	const id = "bench-media-0001"
	srv := nxcloudtest.NewServer()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: bench.StickyMedia(srv, nxcloudtest.Media{ID: id, MimeType: "application/pdf", FileName: "menu.pdf"}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	b.Cleanup(func() { _ = hs.Close() })
	return "http://" + ln.Addr().String(), id
}

// event is events/<file> (the fixture sam local invoke uses) asking for id.
func event(b *testing.B, file, id string) events.APIGatewayV2HTTPRequest {
	b.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "events", file))
	if err != nil {
		b.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		b.Fatal(err)
	}
	ev.RawPath = "/media/" + id
	ev.RequestContext.HTTP.Path = ev.RawPath
	ev.PathParameters = map[string]string{"mediaId": id}
	ev.RawQueryString = "business_phone=" + benchPhone
	ev.QueryStringParameters = map[string]string{"business_phone": benchPhone}
	return ev
}

// benchHandler runs the handler path of a function in process: the v2 event
// through mediaapi.NewLambdaHandler (httpadapter.NewV2) and the handler to a
// real nxcloud.Client with static credentials, over loopback HTTP.
func benchHandler(b *testing.B, method, file string) {
	url, id := target(b)
	client, err := nxcloud.NewClient(nxcloud.WithBaseURL(url), nxcloud.WithCredentials(nxcloud.StaticCredentials(benchCred)))
	if err != nil {
		b.Fatal(err)
	}
	h := mediaapi.NewLambdaHandler(mediaapi.NewHandler(client, mediaapi.Options{
		// The functions format one JSON line per request: do the same work, then drop it.
		Logger:  slog.New(slog.NewJSONHandler(io.Discard, nil)), //nolint:sloglint // the formatting is part of the measured path
		Methods: []string{method},
	}))
	ev := event(b, file, id)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := h(ctx, ev)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("handler: status %d, error %v, body %s", resp.StatusCode, err, resp.Body)
		}
	}
}

// benchPlain makes the same signed NXCloud call by hand with a plain
// http.Client: the floor of benchHandler.
func benchPlain(b *testing.B, action string) {
	url, id := target(b)
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		req, err := bench.NewJSONRequest(ctx, url, benchCred, nxcloud.MD5, action, benchPhone, id, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := bench.Do(hc, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandlerGet is the get function's handler path in process.
func BenchmarkHandlerGet(b *testing.B) { benchHandler(b, http.MethodGet, "get-media.json") }

// BenchmarkHandlerDelete is the delete function's handler path in process.
func BenchmarkHandlerDelete(b *testing.B) { benchHandler(b, http.MethodDelete, "delete-media.json") }

// BenchmarkPlainGet is a hand-signed getMedia call with a plain http.Client.
func BenchmarkPlainGet(b *testing.B) { benchPlain(b, nxcloud.ActionGetMedia) }

// BenchmarkPlainDelete is a hand-signed deleteMedia call with a plain http.Client.
func BenchmarkPlainDelete(b *testing.B) { benchPlain(b, nxcloud.ActionDeleteMedia) }
