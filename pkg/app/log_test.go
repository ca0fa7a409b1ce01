package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/metrics"
)

const (
	traceHeader = "Root=1-6761a6e2-3b4c5d6e7f8091a2b3c4d5e6;Parent=53995c3f42cd8ad8;Sampled=0"
	traceRoot   = "1-6761a6e2-3b4c5d6e7f8091a2b3c4d5e6"
)

// invocationContext is the context aws-lambda-go hands a handler: the
// Lambda context and the trace header.
func invocationContext(requestID string) context.Context {
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: requestID})
	return context.WithValue(ctx, keyTraceValue, traceHeader) //nolint:revive,staticcheck // aws-lambda-go's own string key
}

// logLines decodes the JSON lines in buf, failing on a key written twice.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %q", l)
		}
		for k := range m {
			if n := strings.Count(l, `"`+k+`":`); n != 1 {
				t.Errorf("key %q written %d times in %s", k, n, l)
			}
		}
		out = append(out, m)
	}
	return out
}

func env(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }

// Every line has the Powertools keys; a line logged with the invocation's
// context has its request id and trace root, whatever logger (With, a
// group) logged it; the caller's own attributes of those names are dropped.
func TestHandlerKeys(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(NewHandler(&buf, env(map[string]string{
		"AWS_LAMBDA_FUNCTION_NAME": "media-GetMediaFunction-AbC", EnvService: "media-stack", "AWS_LAMBDA_LOG_LEVEL": "DEBUG",
	})))
	ctx := invocationContext("8476a536-e9f4-11e8-9739-2dfe598c3fcd")
	log.InfoContext(ctx, "media request", "status", 200, KeyColdStart, "mine", KeyService, "not mine")
	log.With("route", "GET /media/{mediaId}").DebugContext(ctx, "with attrs")
	log.WithGroup("req").With("a", 1).WarnContext(ctx, "grouped", "b", 2)
	log.Info("init line")

	lines := logLines(t, &buf)
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4", len(lines))
	}
	for i, l := range lines {
		for k, want := range map[string]any{KeyService: "media-stack", KeyFunction: "media-GetMediaFunction-AbC", KeyColdStart: true} {
			if l[k] != want {
				t.Errorf("line %d: %s = %v, want %v (%v)", i, k, l[k], want, l)
			}
		}
		if l[KeyTimestamp] == nil || l[KeyLevel] == nil || l[KeyMessage] == nil || l["time"] != nil || l["msg"] != nil {
			t.Errorf("line %d: %v, want timestamp, level and message instead of time and msg", i, l)
		}
		_, hasID := l[KeyRequestID]
		if inInvocation := i < 3; inInvocation {
			if l[KeyRequestID] != "8476a536-e9f4-11e8-9739-2dfe598c3fcd" || l[KeyXRayTrace] != traceRoot {
				t.Errorf("line %d: %s %v, %s %v; want the invocation's id and trace root", i, KeyRequestID, l[KeyRequestID], KeyXRayTrace, l[KeyXRayTrace])
			}
		} else if hasID || l[KeyXRayTrace] != nil {
			t.Errorf("init line %v has an invocation's keys", l)
		}
	}
	if lines[0]["status"] != float64(200) || lines[1]["route"] != "GET /media/{mediaId}" || lines[1][KeyLevel] != "DEBUG" {
		t.Errorf("the callers' attributes are lost: %v %v", lines[0], lines[1])
	}
	if g, _ := lines[2]["req"].(map[string]any); g["a"] != float64(1) || g["b"] != float64(2) || g[KeyRequestID] != nil {
		t.Errorf("grouped line %v: want a and b in req, the invocation's keys at the top", lines[2])
	}
}

// The invoker makes the lines know their invocation: cold_start is true for
// the init phase and the first invocation only, a line logged without the
// invocation's context still has its request id and trace, also after the
// handler returned (where aws-lambda-go logs a failed invocation's error),
// and the cold start metric is recorded once, in the first invocation.
func TestInvokerColdStartAndCurrentInvocation(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(NewHandler(&buf, env(map[string]string{EnvService: "media-stack", "AWS_LAMBDA_FUNCTION_NAME": "fn"})))
	next := handlerFunc(func(context.Context, []byte) ([]byte, error) {
		log.Info("logged without the context")
		return []byte("{}"), nil
	})
	inv := &invoker{next: next, rec: metrics.New(log, "NXCloudMedia", "media-stack"), function: "fn"}
	invocations.Store(0)
	log.Info("init")
	for _, id := range []string{"first", "second"} {
		if _, err := inv.Invoke(invocationContext(id), nil); err != nil {
			t.Fatal(err)
		}
	}
	log.Info("after the handler returned")

	lines := logLines(t, &buf)
	type want struct {
		msg       string
		cold      bool
		requestID any
	}
	wants := []want{{"init", true, nil}, {"metrics", true, "first"}, {"logged without the context", true, "first"},
		{"logged without the context", false, "second"}, {"after the handler returned", false, "second"}}
	if len(lines) != len(wants) {
		t.Fatalf("%d lines, want %d: %v", len(lines), len(wants), lines)
	}
	for i, w := range wants {
		l := lines[i]
		if l[KeyMessage] != w.msg || l[KeyColdStart] != w.cold || l[KeyRequestID] != w.requestID {
			t.Errorf("line %d = %v, want message %q, cold_start %v, request id %v", i, l, w.msg, w.cold, w.requestID)
		}
		if w.requestID != nil && l[KeyXRayTrace] != traceRoot {
			t.Errorf("line %d: trace %v, want %s", i, l[KeyXRayTrace], traceRoot)
		}
	}
	if vals, err := metrics.Parse(mustJSON(t, lines[1])); err != nil || len(vals) != 1 || vals[0].Name != metrics.ColdStarts ||
		vals[0].Dimensions["FunctionName"] != "fn" || vals[0].Dimensions[metrics.DimService] != "media-stack" {
		t.Errorf("the cold start line %v parses as %+v, %v; want ColdStarts by FunctionName and service", lines[1], vals, err)
	}
}

type handlerFunc func(context.Context, []byte) ([]byte, error)

func (f handlerFunc) Invoke(ctx context.Context, b []byte) ([]byte, error) { return f(ctx, b) }

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTraceRoot(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		traceHeader: traceRoot,
		"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:1": "1-5759e988-bd862e3fe1be46a994272793",
		"Parent=53995c3f42cd8ad8; Root=1-2-3": "1-2-3",
		"":                                    "",
		"Sampled=0":                           "",
	} {
		if got := TraceRoot(in); got != want {
			t.Errorf("TraceRoot(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMemoryLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		want int64
		ok   bool
	}{
		{map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128"}, 128 << 20 * 9 / 10, true},
		{map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "10240"}, 10240 << 20 * 9 / 10, true},
		{map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "GOMEMLIMIT": "64MiB"}, 0, false},
		{map[string]string{}, 0, false},
		{map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "lots"}, 0, false},
		{map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "0"}, 0, false},
	} {
		got, ok := MemoryLimit(env(tc.env))
		if ok != tc.ok || (ok && (got < tc.want-1 || got > tc.want+1)) {
			t.Errorf("MemoryLimit(%v) = %d, %v; want %d, %v", tc.env, got, ok, tc.want, tc.ok)
		}
	}
}

type sweepFailures struct{ msg string }

func (e *sweepFailures) Error() string { return e.msg }

// An error whose message holds bytes an HTTP header cannot carry reaches
// the Runtime API with them escaped and its type kept; another is as is.
func TestInvokerErrorsFitAHeader(t *testing.T) {
	for _, tc := range []struct {
		err      error
		wantMsg  string
		wantType string
	}{
		{&sweepFailures{"the first: s3://b/templates/tab\tand del\x7f.pdf\x01"}, `the first: s3://b/templates/tab` + "\t" + `and del\x7f.pdf\x01`, "sweepFailures"},
		{&sweepFailures{"plain"}, "plain", ""},
		{messages.InvokeResponse_Error{Type: "SweepFailures", Message: "the first: del\x7f"}, `the first: del\x7f`, "SweepFailures"},
	} {
		inv := &invoker{next: handlerFunc(func(context.Context, []byte) ([]byte, error) { return nil, tc.err })}
		_, err := inv.Invoke(invocationContext("r"), nil)
		var ive messages.InvokeResponse_Error
		isIVE := errors.As(err, &ive)
		switch {
		case tc.wantType == "" && !errors.Is(err, tc.err):
			t.Errorf("%q became %#v, want it as is", tc.err, err)
		case tc.wantType != "" && (!isIVE || ive.Message != tc.wantMsg || ive.Type != tc.wantType):
			t.Errorf("%q became %#v, want message %q, type %s", tc.err, err, tc.wantMsg, tc.wantType)
		}
	}
}
