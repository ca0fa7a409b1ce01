package main_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart/lambdarttest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localsm"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
)

func TestMain(m *testing.M) { os.Exit(lambdarttest.Main(m)) }

func readEvent(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// baseEnv is the function's environment against a local Secrets Manager
// and a local NXCloud.
func baseEnv(smURL, nxURL string) []string {
	return []string{
		"NXCLOUD_SECRET_ID=nxcloud-media-local",
		"NXCLOUD_BASE_URL=" + nxURL,
		"NXCLOUD_TIMEOUT=3s",
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + smURL,
		"AWS_ACCESS_KEY_ID=AKIDLOCAL",
		"AWS_SECRET_ACCESS_KEY=local-secret",
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// TestGetMediaFunction runs the built bootstrap through the Lambda Runtime
// API with the same events sam local invoke uses.
func TestGetMediaFunction(t *testing.T) {
	t.Parallel()
	bin := lambdarttest.Bootstrap(t, ".")
	nx := nxcloudtest.NewTestServer(t, nxcloudtest.WithCredentials("AKfn-test", "fn-test-secret"))
	sm := localsm.NewTestServer(t)
	sm.Put("nxcloud-media-local", `{"accessKey":"AKfn-test","accessSecret":"fn-test-secret"}`)

	getEv := readEvent(t, "get-media.json")
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(getEv, &ev); err != nil {
		t.Fatal(err)
	}
	nx.AddMedia(nxcloudtest.Media{ID: ev.PathParameters["mediaId"], MimeType: "application/pdf", FileName: "menu.pdf", Content: []byte("%PDF-1.4")})

	out := &lambdarttest.Buffer{}
	rt := lambdarttest.Start(t, lambdart.Function{
		Name: "GetMediaFunction", Path: bin, Timeout: 10 * time.Second,
		Env:    append(baseEnv(sm.URL(), nx.URL()), "NXCLOUD_BUSINESS_PHONE=8613900000001"),
		Stdout: out, Stderr: out,
	})

	tests := []struct {
		name       string
		payload    []byte
		wantStatus int
		wantBody   string // substring
		wantAllow  string
	}{
		{name: "get event", payload: getEv, wantStatus: 200, wantBody: `"file_name":"menu.pdf"`},
		{name: "delete event is not served here", payload: readEvent(t, "delete-media.json"), wantStatus: 405, wantBody: `"error":{"message":`, wantAllow: "GET"},
		{name: "raw control character in a hand-written rawPath", payload: withRawPath(t, ev, "/media/ab\x01c"),
			wantStatus: 400, wantBody: "control characters"},
		{name: "default phone", payload: withoutQuery(t, ev), wantStatus: 200, wantBody: `"mime_type":"application/pdf"`},
	}
	for _, tc := range tests { // one Runtime: invocations run in turn
		res, err := rt.Invoke(t.Context(), tc.payload)
		if err != nil || res.Error != nil {
			t.Fatalf("%s: invoke: %v %+v", tc.name, err, res)
		}
		var resp events.APIGatewayV2HTTPResponse
		if err := json.Unmarshal(res.Payload, &resp); err != nil {
			t.Fatalf("%s: payload %s: %v", tc.name, res.Payload, err)
		}
		if resp.StatusCode != tc.wantStatus || !strings.Contains(resp.Body, tc.wantBody) ||
			resp.Headers["Content-Type"] != "application/json" || resp.Headers["Allow"] != tc.wantAllow {
			t.Errorf("%s: got %d %v %s, want %d Allow=%q body containing %s", tc.name, resp.StatusCode, resp.Headers, resp.Body, tc.wantStatus, tc.wantAllow, tc.wantBody)
		}
	}
	calls := nx.Calls("getMedia")
	if len(calls) != 2 || calls[1].Fields["business_phone"] != "8613900000001" {
		var phones []string
		for _, c := range calls {
			phones = append(phones, c.Fields["business_phone"])
		}
		t.Errorf("NXCloud getMedia calls with phones %q, want 2, the second with the default phone", phones)
	}

	// The output reaches us through a pipe: wait for it a little.
	var lines []map[string]any
	for deadline := time.Now().Add(3 * time.Second); len(lines) < 4 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		lines = requestLines(out.String())
	}
	if len(lines) != 4 {
		t.Fatalf("want 4 request log lines, got %d:\n%s", len(lines), out.String())
	}
	for i, l := range lines {
		if l["cold_start"] != (i == 0) || l["function"] != "GetMediaFunction" || l["request_id"] == "" {
			t.Errorf("log line %d: %v", i, l)
		}
	}
	for _, leak := range []string{"AKfn-test", "fn-test-secret"} {
		if strings.Contains(out.String(), leak) {
			t.Errorf("function output leaks %q", leak)
		}
	}
}

// TestGetMediaFunctionInitError checks that a bad variable fails init with a
// message naming it.
func TestGetMediaFunctionInitError(t *testing.T) {
	t.Parallel()
	bin := lambdarttest.Bootstrap(t, ".")
	env := baseEnv("http://127.0.0.1:1", "http://127.0.0.1:1")
	env = append(env, "NXCLOUD_TIMEOUT=soon")
	_, err := lambdart.Start(t.Context(), lambdart.Function{Name: "GetMediaFunction", Path: bin, Env: env})
	var ie *lambdart.InitError
	if !errors.As(err, &ie) || !strings.Contains(ie.Message, "NXCLOUD_TIMEOUT") {
		t.Fatalf("Start: %v, want an init error naming NXCLOUD_TIMEOUT", err)
	}
}

// requestLines returns the decoded "media request" log lines of out.
func requestLines(out string) []map[string]any {
	var lines []map[string]any
	for _, l := range strings.Split(out, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "media request" {
			lines = append(lines, m)
		}
	}
	return lines
}

// withRawPath is ev with rawPath p, as a hand-written event may hold it.
func withRawPath(t *testing.T, ev events.APIGatewayV2HTTPRequest, p string) []byte {
	t.Helper()
	ev.RawPath = p
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withoutQuery is ev without any query string.
func withoutQuery(t *testing.T, ev events.APIGatewayV2HTTPRequest) []byte {
	t.Helper()
	ev.RawQueryString, ev.QueryStringParameters = "", nil
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
