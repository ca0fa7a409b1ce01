package metrics_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/metrics"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

var at = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

// record runs f on a Recorder writing JSON lines as the functions do, and
// returns the lines.
func record(t *testing.T, f func(r *metrics.Recorder)) []string {
	t.Helper()
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil)).With("function_name", "fn")
	f(metrics.New(logger, "NXCloudMedia", "media-stack").WithClock(func() time.Time { return at }))
	return strings.Split(strings.TrimSpace(buf.String()), "\n")
}

// Every metric the bundle records is one EMF line that parses as EMF, with
// its unit, value and every dimension set declared and present, each set
// with the service.
func TestRecorderLines(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	type want struct {
		name  string
		unit  metrics.Unit
		value float64
		dims  []map[string]string // one per dimension set
	}
	for _, tc := range []struct {
		name   string
		record func(*metrics.Recorder)
		want   []want
	}{
		{"uploaded", func(r *metrics.Recorder) { r.Upload(ctx, "uploaded", 12345) }, []want{
			{metrics.Uploads, metrics.Count, 1, []map[string]string{{"Outcome": "uploaded"}}},
			{metrics.UploadBytes, metrics.Bytes, 12345, []map[string]string{{"Outcome": "uploaded"}}},
		}},
		{"rejected: no bytes", func(r *metrics.Recorder) { r.Upload(ctx, "rejected", 0) }, []want{
			{metrics.Uploads, metrics.Count, 1, []map[string]string{{"Outcome": "rejected"}}},
		}},
		{"nxcloud code", func(r *metrics.Recorder) {
			r.NXCloudCall(ctx, nxcloud.Call{Action: "getMedia", HTTPStatus: 200, Answered: true, Code: 9002, Duration: 1500 * time.Microsecond})
		}, []want{
			{metrics.NXCloudLatency, metrics.Milliseconds, 1.5, []map[string]string{{"Action": "getMedia", "Code": "9002"}, {"Action": "getMedia"}}},
		}},
		{"nxcloud success", func(r *metrics.Recorder) {
			r.NXCloudCall(ctx, nxcloud.Call{Action: "uploadTemplateFile", HTTPStatus: 200, Answered: true, Duration: time.Second})
		}, []want{
			{metrics.NXCloudLatency, metrics.Milliseconds, 1000, []map[string]string{{"Action": "uploadTemplateFile", "Code": "0"}, {"Action": "uploadTemplateFile"}}},
		}},
		{"nxcloud not JSON", func(r *metrics.Recorder) {
			r.NXCloudCall(ctx, nxcloud.Call{Action: "deleteMedia", HTTPStatus: 502, Duration: time.Millisecond})
		}, []want{
			{metrics.NXCloudLatency, metrics.Milliseconds, 1, []map[string]string{{"Action": "deleteMedia", "Code": "http_502"}, {"Action": "deleteMedia"}}},
		}},
		{"nxcloud no answer", func(r *metrics.Recorder) {
			r.NXCloudCall(ctx, nxcloud.Call{Action: "getMedia", Duration: 2 * time.Second})
		}, []want{
			{metrics.NXCloudLatency, metrics.Milliseconds, 2000, []map[string]string{{"Action": "getMedia", "Code": "no_answer"}, {"Action": "getMedia"}}},
		}},
		{"credential refresh", func(r *metrics.Recorder) { r.CredentialRefresh(ctx, nil); r.CredentialRefresh(ctx, errors.New("down")) }, []want{
			{metrics.CredentialRefreshes, metrics.Count, 1, []map[string]string{{"Result": "ok"}}},
			{metrics.CredentialRefreshes, metrics.Count, 1, []map[string]string{{"Result": "error"}}},
		}},
		{"cold start", func(r *metrics.Recorder) { r.ColdStart(ctx, "nxcloud-media-GetMediaFunction-AbC") }, []want{
			{metrics.ColdStarts, metrics.Count, 1, []map[string]string{{"FunctionName": "nxcloud-media-GetMediaFunction-AbC"}}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got []metrics.Value
			for _, line := range record(t, tc.record) {
				vs, err := metrics.Parse([]byte(line))
				if err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				got = append(got, vs...)
			}
			var flat []want
			for _, w := range tc.want {
				for _, d := range w.dims {
					d["service"] = "media-stack" // in every dimension set
					flat = append(flat, want{w.name, w.unit, w.value, []map[string]string{d}})
				}
			}
			if len(got) != len(flat) {
				t.Fatalf("got %d values %+v, want %d", len(got), got, len(flat))
			}
			for i, w := range flat {
				g := got[i]
				if g.Namespace != "NXCloudMedia" || g.Name != w.name || g.Unit != w.unit || g.Value != w.value ||
					!maps.Equal(g.Dimensions, w.dims[0]) || !g.Time.Equal(at) {
					t.Errorf("value %d = %+v, want %s %s %v %v at %s in NXCloudMedia", i, g, w.name, w.unit, w.value, w.dims[0], at)
				}
			}
		})
	}
}

// A nil Recorder records nothing and does not panic.
func TestNilRecorder(t *testing.T) {
	t.Parallel()
	var r *metrics.Recorder
	r.Upload(context.Background(), "uploaded", 1)
	r.ColdStart(context.Background(), "fn")
}

// Parse refuses what CloudWatch would not turn into metrics.
func TestParseRefuses(t *testing.T) {
	t.Parallel()
	const dir = `{"Namespace":"N","Dimensions":[["D"]],"Metrics":[{"Name":"M","Unit":"Count"}]}`
	for _, tc := range []struct{ name, line, want string }{
		{"plain log line", `{"msg":"hello"}`, "no _aws"},
		{"not JSON", `upload done`, "not a JSON object"},
		{"no timestamp", `{"_aws":{"CloudWatchMetrics":[` + dir + `]},"D":"d","M":1}`, "Timestamp"},
		{"timestamp in seconds as string", `{"_aws":{"Timestamp":"1","CloudWatchMetrics":[` + dir + `]},"D":"d","M":1}`, "metadata"},
		{"no directives", `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[]},"D":"d","M":1}`, "CloudWatchMetrics"},
		{"no namespace", `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Dimensions":[["D"]],"Metrics":[{"Name":"M"}]}]},"D":"d","M":1}`, "Namespace"},
		{"dimension missing", `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[` + dir + `]},"M":1}`, `dimension "D"`},
		{"dimension not a string", `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[` + dir + `]},"D":7,"M":1}`, `dimension "D"`},
		{"metric missing", `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[` + dir + `]},"D":"d"}`, "metric M"},
		{"metric a string", `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[` + dir + `]},"D":"d","M":"1"}`, "metric M"},
		{"bad resolution", `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[[]],"Metrics":[{"Name":"M","StorageResolution":5}]}]},"M":1}`, "StorageResolution"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := metrics.Parse([]byte(tc.line))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse(%s) = %v, want an error about %s", tc.line, err, tc.want)
			}
		})
	}
}
