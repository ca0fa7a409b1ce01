package mediaapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/mediaapi"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

// fuzzService is a MediaService whose answer is chosen by the fuzzer; it
// records every call.
type fuzzService struct {
	outcome byte
	mu      sync.Mutex
	calls   []fuzzCall
}

// fuzzCall is one call fuzzService received.
type fuzzCall struct{ method, phone, id string }

// fuzzOutcomes are the answers fuzzService gives, with the status SPEC.md
// maps each to.
var fuzzOutcomes = []struct {
	err    error
	status int
}{
	{nil, http.StatusOK},
	{&nxcloud.APIError{Code: 9000, Message: "Parameter exception"}, 400},
	{&nxcloud.APIError{Code: 9002, Message: "Merchant phone number error"}, 422},
	{&nxcloud.APIError{Code: 9006, Message: "not bound"}, 422},
	{&nxcloud.APIError{Code: 1001, Message: "Authentication failed"}, 502},
	{&nxcloud.APIError{Code: -1, Message: "Request failed"}, 502},
	{&nxcloud.APIError{Code: 9001, Message: "System business error"}, 502},
	{&nxcloud.APIError{Code: 31337, Message: "undocumented\x00\r\n"}, 502},
	{&nxcloud.ResponseError{Action: "getMedia", HTTPStatus: 503, Excerpt: "<html>", Reason: "unexpected HTTP status"}, 502},
	{&nxcloud.ResponseError{Action: "getMedia", HTTPStatus: 200, Excerpt: "{", Reason: "body is not the documented JSON"}, 502},
	{fmt.Errorf("nxcloud getMedia: %w", nxcloud.ErrTimeout), 504},
	{context.DeadlineExceeded, 504},
	{&nxcloud.CredentialsError{Err: errors.New("secret unavailable")}, 503},
	{errors.New("dial tcp: connection refused"), 502},
}

func (f *fuzzService) answer(method, phone, id string) error {
	f.mu.Lock()
	f.calls = append(f.calls, fuzzCall{method: method, phone: phone, id: id})
	f.mu.Unlock()
	return fuzzOutcomes[int(f.outcome)%len(fuzzOutcomes)].err
}

func (f *fuzzService) GetMedia(_ context.Context, phone, id string) (*nxcloud.Media, error) {
	if err := f.answer(http.MethodGet, phone, id); err != nil {
		return nil, err
	}
	raw := json.RawMessage(`{"mime_type":"application/pdf","file_name":"menu.pdf","url":"https://example.com/f"}`)
	return &nxcloud.Media{MimeType: "application/pdf", FileName: "menu.pdf", URL: "https://example.com/f", Raw: raw}, nil
}

func (f *fuzzService) DeleteMedia(_ context.Context, phone, id string) error {
	return f.answer(http.MethodDelete, phone, id)
}

var fuzzPhoneRE = regexp.MustCompile(`^[0-9]{5,20}$`)

// specStatuses are every status the HTTP API answers (SPEC.md, plus 404 and
// 405 for a route or method the function does not serve).
var specStatuses = map[int]bool{200: true, 302: true, 400: true, 404: true, 405: true, 422: true, 502: true, 503: true, 504: true}

// FuzzLambdaHandler feeds arbitrary API Gateway v2 events through
// NewLambdaHandler: the invocation never fails or panics, the status is one
// the SPEC names, every body is JSON (the error shape on non-200), NXCloud
// is called only with a valid mediaId and business_phone, and a call's
// failure maps to the SPEC's status.
func FuzzLambdaHandler(f *testing.F) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", "get-media.json"))
	if err != nil {
		f.Fatal(err)
	}
	var base events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &base); err != nil {
		f.Fatal(err)
	}
	f.Add("GET", "/media/1234567890123456", "", "business_phone=8615812341795", "$default", byte(0), false)
	f.Add("DELETE", "/media/4%3Aabc%2Fdef", "", "business_phone=8615812341795", "$default", byte(1), false)
	f.Add("GET", "/prod/media/x", "", "", "prod", byte(2), true)
	f.Add("GET", "", "/media/a\x1bb", "business_phone=86158123417951234567890", "$default", byte(3), true)
	f.Add("POST", "/media/x", "", "business_phone=861&business_phone=862", "", byte(4), false)
	f.Add("GET", "/media/%zz%", "", "business_phone=%ZZ", "$default", byte(5), false)
	f.Add("DELETE", "/media/"+strings.Repeat("é", 257), "", "business_phone=8615812341795", "$default", byte(6), false)
	f.Add("GET", "/media/\xff\xfe", "", "business_phone=+8615812341795", "$default", byte(7), true)
	f.Add("get", "/media/ok?x=1#frag", "", "business_phone=8615812341795\n", "$default", byte(8), false)
	f.Add("GET", "/media/%00", "", "business_phone=8615812341795", "$default", byte(9), false)
	f.Add("DELETE", "/media/x y", "", "business_phone=86158 12341795", "$default", byte(10), true)
	f.Add("GET", "//media//", "", "", "", byte(11), false)
	f.Add("GET", "/media/%E2%80%8B", "", "business_phone=8615812341795", "$default", byte(12), false)
	f.Add("DELETE", "/media/..%2F..%2Fetc", "", "business_phone=8615812341795", "$default", byte(13), false)
	f.Add("GET", "/media/1234567890123456/content", "", "business_phone=8615812341795", "$default", byte(0), false)
	f.Add("DELETE", "/media/x/content", "", "", "$default", byte(2), true)

	f.Fuzz(func(t *testing.T, method, rawPath, httpPath, rawQuery, stage string, outcome byte, withDefault bool) {
		svc := &fuzzService{outcome: outcome}
		opts := mediaapi.Options{Logger: slog.New(slog.DiscardHandler)}
		if withDefault {
			opts.DefaultBusinessPhone = "8613900000001"
		}
		h := mediaapi.NewLambdaHandler(mediaapi.NewHandler(svc, opts))

		ev := base
		ev.RawPath = rawPath
		ev.RawQueryString = rawQuery
		ev.QueryStringParameters = nil
		ev.PathParameters = nil
		ev.RequestContext.HTTP.Method = method
		ev.RequestContext.HTTP.Path = httpPath
		ev.RequestContext.Stage = stage
		ev.RouteKey = method + " /media/{mediaId}"

		resp, err := h(context.Background(), ev)
		if err != nil {
			t.Fatalf("the invocation failed (API Gateway would answer a bare 500): %v", err)
		}
		if !specStatuses[resp.StatusCode] {
			t.Fatalf("status %d is not one the SPEC names", resp.StatusCode)
		}
		if ct := resp.Headers["Content-Type"]; ct != "application/json" {
			t.Errorf("Content-Type %q, want application/json", ct)
		}
		body := []byte(resp.Body)
		if resp.IsBase64Encoded {
			if body, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
				t.Fatalf("base64 body: %v", err)
			}
		}
		if !json.Valid(body) {
			t.Fatalf("body is not JSON: %q", body)
		}
		content := strings.HasSuffix(resp.Headers["Location"], "/f")
		if resp.StatusCode != http.StatusOK && !content {
			checkErrorShape(t, body)
		}

		svc.mu.Lock()
		calls := svc.calls
		svc.mu.Unlock()
		if len(calls) > 1 {
			t.Fatalf("NXCloud called %d times for one request", len(calls))
		}
		if len(calls) == 0 {
			if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("status %d without calling NXCloud, want 400, 404 or 405", resp.StatusCode)
			}
			return
		}
		c := calls[0]
		switch {
		case c.method != http.MethodGet && c.method != http.MethodDelete:
			t.Errorf("called for method %q", c.method)
		case c.id == "" || !utf8.ValidString(c.id) || utf8.RuneCountInString(c.id) > mediaapi.MaxMediaIDLength ||
			strings.ContainsFunc(c.id, unicode.IsControl):
			t.Errorf("NXCloud called with the invalid mediaId %q", c.id)
		case !fuzzPhoneRE.MatchString(c.phone):
			t.Errorf("NXCloud called with the invalid business_phone %q", c.phone)
		}
		want := fuzzOutcomes[int(outcome)%len(fuzzOutcomes)].status
		if want == http.StatusOK && content {
			want = http.StatusFound // GET /media/{mediaId}/content
		}
		if resp.StatusCode != want {
			t.Errorf("NXCloud outcome %d answered %d, want %d (%s)", int(outcome)%len(fuzzOutcomes), resp.StatusCode, want, body)
		}
	})
}

// checkErrorShape checks {"error":{"message":"...","nxcloud_code":<int>}}
// with nothing else.
func checkErrorShape(t *testing.T, body []byte) {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || len(top) != 1 || top["error"] == nil {
		t.Fatalf("error body %s is not {\"error\": {...}}", body)
	}
	var e map[string]json.RawMessage
	if err := json.Unmarshal(top["error"], &e); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	var msg string
	if err := json.Unmarshal(e["message"], &msg); err != nil || msg == "" {
		t.Errorf("error body %s has no message", body)
	}
	for k, v := range e {
		switch k {
		case "message":
		case "nxcloud_code":
			var code int
			if err := json.Unmarshal(v, &code); err != nil {
				t.Errorf("nxcloud_code %s is not an integer", v)
			}
		default:
			t.Errorf("error body %s has an unexpected member %q", body, k)
		}
	}
}
