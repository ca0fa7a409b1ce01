package bench_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
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

const phone = "8615812341795"

var cred = nxcloud.Credentials{AccessKey: nxcloudtest.DefaultAccessKey, AccessSecret: nxcloudtest.DefaultAccessSecret}

// target is the local NXCloud and the media id to ask for: cmd/bench serves
// them from its own process (so that the allocations reported are the
// caller's only) in BENCH_NXCLOUD_URL and BENCH_MEDIA_ID; without them, a
// server in this process.
func target(b *testing.B) (string, string) {
	if u := os.Getenv("BENCH_NXCLOUD_URL"); u != "" {
		return u, os.Getenv("BENCH_MEDIA_ID")
	}
	m := nxcloudtest.Media{ID: "bench-media-0001", MimeType: "application/pdf", FileName: "menu.pdf"}
	srv := httptest.NewServer(bench.StickyMedia(nxcloudtest.NewServer(), m))
	b.Cleanup(srv.Close)
	return srv.URL, m.ID
}

// benchHandler is a function's handler path in process: the events/<file>
// event through mediaapi.NewLambdaHandler and the handler to a real
// nxcloud.Client with static credentials, over loopback HTTP.
func benchHandler(b *testing.B, method, file string) {
	url, id := target(b)
	client, err := nxcloud.NewClient(nxcloud.WithBaseURL(url), nxcloud.WithCredentials(nxcloud.StaticCredentials(cred)))
	if err != nil {
		b.Fatal(err)
	}
	h := mediaapi.NewLambdaHandler(mediaapi.NewHandler(client, mediaapi.Options{
		Logger:  slog.New(slog.NewJSONHandler(io.Discard, nil)), //nolint:sloglint // the functions format a JSON line per request too
		Methods: []string{method},
	}))
	raw, err := os.ReadFile(filepath.Join("..", "events", file))
	var ev events.APIGatewayV2HTTPRequest
	if err == nil {
		err = json.Unmarshal(raw, &ev)
	}
	if err != nil {
		b.Fatal(err)
	}
	ev.RawPath, ev.PathParameters = "/media/"+id, map[string]string{"mediaId": id}
	ev.RawQueryString = "business_phone=" + phone
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		if resp, err := h(ctx, ev); err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("handler: status %d, error %v, body %s", resp.StatusCode, err, resp.Body)
		}
	}
}

// benchPlain is the same signed NXCloud call made by hand with a plain
// http.Client: the floor of benchHandler.
func benchPlain(b *testing.B, action string) {
	url, id := target(b)
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	b.ReportAllocs()
	for b.Loop() {
		req, err := bench.NewJSONRequest(context.Background(), url, cred, action, phone, id)
		if err == nil {
			err = bench.Do(hc, req)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHandlerGet(b *testing.B)    { benchHandler(b, http.MethodGet, "get-media.json") }
func BenchmarkHandlerDelete(b *testing.B) { benchHandler(b, http.MethodDelete, "delete-media.json") }
func BenchmarkPlainGet(b *testing.B)      { benchPlain(b, nxcloud.ActionGetMedia) }
func BenchmarkPlainDelete(b *testing.B)   { benchPlain(b, nxcloud.ActionDeleteMedia) }
