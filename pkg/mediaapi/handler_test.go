package mediaapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart/lambdarttest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/mediaapi"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

// fakeMedia is a function-field fake of mediaapi.MediaService that records
// every call.
type fakeMedia struct {
	getMedia    func(ctx context.Context, phone, id string) (*nxcloud.Media, error)
	deleteMedia func(ctx context.Context, phone, id string) error

	mu    sync.Mutex
	calls []fakeCall
}

type fakeCall struct{ method, phone, id string }

func (f *fakeMedia) GetMedia(ctx context.Context, phone, id string) (*nxcloud.Media, error) {
	f.record(http.MethodGet, phone, id)
	if f.getMedia == nil {
		raw := json.RawMessage(`{"mime_type":"image/png","file_name":"x.png","url":"https://files.example/x.png?Expires=1"}`)
		return &nxcloud.Media{MimeType: "image/png", FileName: "x.png", URL: "https://files.example/x.png?Expires=1", Raw: raw}, nil
	}
	return f.getMedia(ctx, phone, id)
}

func (f *fakeMedia) DeleteMedia(ctx context.Context, phone, id string) error {
	f.record(http.MethodDelete, phone, id)
	if f.deleteMedia == nil {
		return nil
	}
	return f.deleteMedia(ctx, phone, id)
}

func (f *fakeMedia) record(method, phone, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fakeCall{method, phone, id})
}

func (f *fakeMedia) recorded() []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeCall(nil), f.calls...)
}

const (
	phone        = "8615812341795"
	defaultPhone = "8613900000001"
)

func TestHandlerRoutingAndInput(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", mediaapi.MaxMediaIDLength) // characters, not bytes
	tests := []struct {
		name         string
		fixture      string
		methods      []string
		defaultPhone string
		mods         []eventMod
		wantStatus   int
		wantMsg      string // substring of the error message
		wantAllow    string
		wantCall     *fakeCall // the NXCloud call made, nil for none
	}{
		{name: "get fixture as is", fixture: getEvent, wantStatus: 200, wantCall: &fakeCall{method: "GET"}},
		{name: "delete fixture as is", fixture: deleteEvent, wantStatus: 200, wantCall: &fakeCall{method: "DELETE"}},
		{name: "id and phone reach NXCloud", fixture: getEvent, mods: []eventMod{withMediaID("fd81acff-eea8"), withPhone(phone)},
			wantStatus: 200, wantCall: &fakeCall{"GET", phone, "fd81acff-eea8"}},
		{name: "escaped slash stays inside the id", fixture: deleteEvent, mods: []eventMod{withRawPath("/media/a%2Fb%20c"), withPhone(phone)},
			wantStatus: 200, wantCall: &fakeCall{"DELETE", phone, "a/b c"}},
		{name: "unicode id", fixture: getEvent, mods: []eventMod{withMediaID("médïa-✓"), withPhone(phone)},
			wantStatus: 200, wantCall: &fakeCall{"GET", phone, "médïa-✓"}},
		{name: "256 characters", fixture: getEvent, mods: []eventMod{withMediaID(long), withPhone(phone)},
			wantStatus: 200, wantCall: &fakeCall{"GET", phone, long}},
		{name: "257 characters", fixture: getEvent, mods: []eventMod{withMediaID(long + "x"), withPhone(phone)},
			wantStatus: 400, wantMsg: "mediaId has 257 characters: at most 256"},
		{name: "empty id", fixture: getEvent, mods: []eventMod{withMediaID(""), withPhone(phone)},
			wantStatus: 400, wantMsg: "mediaId is required"},
		{name: "control character", fixture: deleteEvent, mods: []eventMod{withMediaID("ab\x01c"), withPhone(phone)},
			wantStatus: 400, wantMsg: "control characters"},
		{name: "newline", fixture: getEvent, mods: []eventMod{withMediaID("ab\nc"), withPhone(phone)},
			wantStatus: 400, wantMsg: "control characters"},
		{name: "DEL", fixture: getEvent, mods: []eventMod{withMediaID("ab\x7f"), withPhone(phone)},
			wantStatus: 400, wantMsg: "control characters"},
		{name: "C1 control", fixture: getEvent, mods: []eventMod{withMediaID("ab\u0085"), withPhone(phone)},
			wantStatus: 400, wantMsg: "control characters"},
		{name: "invalid UTF-8", fixture: getEvent, mods: []eventMod{withRawPath("/media/ab%FF"), withPhone(phone)},
			wantStatus: 400, wantMsg: "not valid UTF-8"},
		{name: "phone with letters", fixture: getEvent, mods: []eventMod{withPhone("86158xxxx1795")},
			wantStatus: 400, wantMsg: `business_phone "86158xxxx1795" is not a merchant phone`},
		{name: "phone with plus", fixture: getEvent, mods: []eventMod{withPhone("+8615812341795")},
			wantStatus: 400, wantMsg: "5 to 20 digits"},
		{name: "phone of 4 digits", fixture: getEvent, mods: []eventMod{withPhone("1234")},
			wantStatus: 400, wantMsg: "5 to 20 digits"},
		{name: "phone of 21 digits", fixture: getEvent, mods: []eventMod{withPhone(strings.Repeat("1", 21))},
			wantStatus: 400, wantMsg: "5 to 20 digits"},
		{name: "phone of 5 digits", fixture: getEvent, mods: []eventMod{withMediaID("m"), withPhone("12345")},
			wantStatus: 200, wantCall: &fakeCall{"GET", "12345", "m"}},
		{name: "phone of 20 digits", fixture: getEvent, mods: []eventMod{withMediaID("m"), withPhone(strings.Repeat("9", 20))},
			wantStatus: 200, wantCall: &fakeCall{"GET", strings.Repeat("9", 20), "m"}},
		{name: "phone given twice", fixture: getEvent, mods: []eventMod{withQuery("business_phone=12345&business_phone=67890")},
			wantStatus: 400, wantMsg: "given 2 times"},
		{name: "no phone falls back to the default", fixture: getEvent, defaultPhone: defaultPhone, mods: []eventMod{withMediaID("m"), withQuery("")},
			wantStatus: 200, wantCall: &fakeCall{"GET", defaultPhone, "m"}},
		{name: "empty phone falls back to the default", fixture: deleteEvent, defaultPhone: defaultPhone, mods: []eventMod{withMediaID("m"), withQuery("business_phone=")},
			wantStatus: 200, wantCall: &fakeCall{"DELETE", defaultPhone, "m"}},
		{name: "query phone wins over the default", fixture: getEvent, defaultPhone: defaultPhone, mods: []eventMod{withMediaID("m"), withPhone(phone)},
			wantStatus: 200, wantCall: &fakeCall{"GET", phone, "m"}},
		{name: "no phone and no default", fixture: getEvent, mods: []eventMod{withQuery("")},
			wantStatus: 400, wantMsg: "business_phone is required: pass ?business_phone=<5-20 digits> or set NXCLOUD_BUSINESS_PHONE"},
		{name: "queryStringParameters without rawQueryString", fixture: getEvent, mods: []eventMod{withMediaID("m"), func(ev *events.APIGatewayV2HTTPRequest) {
			ev.RawQueryString = ""
			ev.QueryStringParameters = map[string]string{"business_phone": phone}
		}}, wantStatus: 200, wantCall: &fakeCall{"GET", phone, "m"}},
		{name: "named stage prefix is removed", fixture: getEvent, mods: []eventMod{withRawPath("/prod/media/m1"), withPhone(phone), func(ev *events.APIGatewayV2HTTPRequest) {
			ev.RequestContext.Stage = "prod"
		}}, wantStatus: 200, wantCall: &fakeCall{"GET", phone, "m1"}},
		{name: "rawPath empty uses requestContext.http.path", fixture: getEvent, mods: []eventMod{withPhone(phone), func(ev *events.APIGatewayV2HTTPRequest) {
			ev.RawPath = ""
			ev.RequestContext.HTTP.Path = "/media/m2"
		}}, wantStatus: 200, wantCall: &fakeCall{"GET", phone, "m2"}},
		{name: "unknown path", fixture: getEvent, mods: []eventMod{withRawPath("/nothing/here"), withPhone(phone)},
			wantStatus: 404, wantMsg: "not found"},
		{name: "two segments", fixture: getEvent, mods: []eventMod{withRawPath("/media/a/b"), withPhone(phone)},
			wantStatus: 404, wantMsg: "not found"},
		{name: "collection path", fixture: getEvent, mods: []eventMod{withRawPath("/media"), withPhone(phone)},
			wantStatus: 404, wantMsg: "not found"},
		{name: "POST on a handler serving both", fixture: getEvent, mods: []eventMod{withMethod(http.MethodPost)},
			wantStatus: 405, wantAllow: "DELETE, GET", wantMsg: "method POST is not allowed"},
		{name: "DELETE on the get function", fixture: deleteEvent, methods: []string{http.MethodGet},
			wantStatus: 405, wantAllow: "GET", wantMsg: "use GET"},
		{name: "GET on the delete function", fixture: getEvent, methods: []string{http.MethodDelete},
			wantStatus: 405, wantAllow: "DELETE", wantMsg: "use DELETE"},
		{name: "HEAD is not served", fixture: getEvent, methods: []string{http.MethodGet}, mods: []eventMod{withMethod(http.MethodHead)},
			wantStatus: 405, wantAllow: "GET"},
		{name: "method checked before input", fixture: getEvent, methods: []string{http.MethodDelete}, mods: []eventMod{withMediaID("")},
			wantStatus: 405, wantAllow: "DELETE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := &fakeMedia{}
			log, _ := lambdarttest.Logger()
			h := mediaapi.NewHandler(fake, mediaapi.Options{DefaultBusinessPhone: tc.defaultPhone, Logger: log, Methods: tc.methods})
			ev := loadEvent(t, tc.fixture)
			resp := invoke(context.Background(), t, h, ev, tc.mods...)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tc.wantStatus, resp.Body)
			}
			if got := header(resp, "Allow"); got != tc.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tc.wantAllow)
			}
			calls := fake.recorded()
			if tc.wantStatus != http.StatusOK {
				e := decodeError(t, resp)
				if !strings.Contains(e.Error.Message, tc.wantMsg) {
					t.Errorf("message %q does not contain %q", e.Error.Message, tc.wantMsg)
				}
				if strings.Contains(resp.Body, `\u003c`) || strings.Contains(resp.Body, `\u003e`) {
					t.Errorf("body %s is HTML-escaped: a person reading it with curl sees \\u003c", resp.Body)
				}
				if e.Error.NXCloudCode != nil {
					t.Errorf("nxcloud_code = %d, want none: NXCloud did not answer", *e.Error.NXCloudCode)
				}
				if len(calls) != 0 {
					t.Errorf("NXCloud called %v on a refused request", calls)
				}
				return
			}
			if len(calls) != 1 {
				t.Fatalf("NXCloud calls = %v, want one", calls)
			}
			want := *tc.wantCall
			if want.id == "" { // the fixture's own id and phone
				want.id, want.phone = ev.PathParameters["mediaId"], ev.QueryStringParameters["business_phone"]
			}
			if calls[0] != want {
				t.Errorf("NXCloud call = %+v, want %+v", calls[0], want)
			}
			wantBody := `{"mime_type":"image/png","file_name":"x.png","url":"https://files.example/x.png?Expires=1"}`
			if want.method == http.MethodDelete {
				wantBody = `{"success":true}`
			}
			if resp.Body != wantBody {
				t.Errorf("body = %s, want %s", resp.Body, wantBody)
			}
		})
	}
}

func TestHandlerErrorTable(t *testing.T) {
	t.Parallel()
	apiErr := func(code int, msg string) error {
		return fmt.Errorf("get media: %w", &nxcloud.APIError{Action: nxcloud.ActionGetMedia, Code: code, Message: msg, HTTPStatus: 200})
	}
	internal := "dial tcp 10.1.2.3:443: connect: connection refused"
	tests := []struct {
		name       string
		err        error
		useDefault bool // no ?business_phone=: the default phone is used
		wantStatus int
		wantCode   int // 0: no nxcloud_code expected
		wantMsg    []string
	}{
		{name: "9000 parameter", err: apiErr(9000, "Parameter exception"), wantStatus: 400, wantCode: 9000,
			wantMsg: []string{"NXCloud 9000: Parameter exception", phone}},
		{name: "9002 not a WhatsApp number", err: apiErr(9002, "Merchant phone number error"), wantStatus: 422, wantCode: 9002,
			wantMsg: []string{"the merchant phone " + phone + " is not a WhatsApp number (NXCloud 9002", "?business_phone="}},
		{name: "9002 names the default phone's variable", err: apiErr(9002, "x"), useDefault: true, wantStatus: 422, wantCode: 9002,
			wantMsg: []string{"the merchant phone " + defaultPhone + " is not a WhatsApp number", "NXCLOUD_BUSINESS_PHONE"}},
		{name: "9006 not bound", err: apiErr(9006, "WhatsApp number not bound to the application"), wantStatus: 422, wantCode: 9006,
			wantMsg: []string{"not bound to your NXCloud application (NXCloud 9006"}},
		{name: "auth still failing", err: apiErr(1001, "sign error"), wantStatus: 502, wantCode: 1001,
			wantMsg: []string{"refused the function's credentials even after reloading them", "NXCloud 1001"}},
		{name: "auth upper bound", err: apiErr(1099, ""), wantStatus: 502, wantCode: 1099, wantMsg: []string{"(NXCloud 1099)"}},
		{name: "-1 failure", err: apiErr(-1, "Request failed"), wantStatus: 502, wantCode: -1, wantMsg: []string{"NXCloud -1: Request failed", "retry later"}},
		{name: "9001 system error", err: apiErr(9001, "System business error"), wantStatus: 502, wantCode: 9001, wantMsg: []string{"NXCloud 9001"}},
		{name: "other code", err: apiErr(4242, "mystery"), wantStatus: 502, wantCode: 4242, wantMsg: []string{"undocumented code (NXCloud 4242: mystery)"}},
		{name: "NXCloud message is sanitised", err: apiErr(9001, "bad\r\nthing\x00"), wantStatus: 502, wantCode: 9001, wantMsg: []string{"bad  thing"}},
		{name: "HTTP 500", err: &nxcloud.ResponseError{Action: "getMedia", HTTPStatus: 500, Excerpt: "<html>oops</html>", Reason: "unexpected HTTP status"},
			wantStatus: 502, wantMsg: []string{"HTTP status 500"}},
		{name: "body not JSON", err: &nxcloud.ResponseError{Action: "getMedia", HTTPStatus: 200, Excerpt: "not json", Reason: "body is not the documented JSON"},
			wantStatus: 502, wantMsg: []string{"not its documented JSON"}},
		{name: "timeout", err: fmt.Errorf("getMedia: %w: %w", nxcloud.ErrTimeout, errors.New(internal)), wantStatus: 504, wantMsg: []string{"did not answer getMedia in time"}},
		{name: "context deadline", err: fmt.Errorf("post: %w", context.DeadlineExceeded), wantStatus: 504, wantMsg: []string{"in time"}},
		{name: "credentials unavailable", err: &nxcloud.CredentialsError{Err: errors.New(`secret "arn:aws:secretsmanager:x": secrets manager unavailable: ` + internal)},
			wantStatus: 503, wantMsg: []string{"cannot load its NXCloud credentials"}},
		{name: "transport", err: &url.Error{Op: "Post", URL: "https://api2.nxcloud.com/api/wa/getMedia", Err: errors.New(internal)},
			wantStatus: 502, wantMsg: []string{"could not be reached"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := &fakeMedia{getMedia: func(context.Context, string, string) (*nxcloud.Media, error) { return nil, tc.err }}
			log, logs := lambdarttest.Logger()
			h := mediaapi.NewHandler(fake, mediaapi.Options{DefaultBusinessPhone: defaultPhone, Logger: log})
			query := "business_phone=" + phone
			if tc.useDefault {
				query = ""
			}
			resp := invoke(context.Background(), t, h, loadEvent(t, getEvent), withMediaID("m-1"), withQuery(query))
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tc.wantStatus, resp.Body)
			}
			e := decodeError(t, resp)
			switch {
			case tc.wantCode == 0 && e.Error.NXCloudCode != nil:
				t.Errorf("nxcloud_code = %d, want none", *e.Error.NXCloudCode)
			case tc.wantCode != 0 && (e.Error.NXCloudCode == nil || *e.Error.NXCloudCode != tc.wantCode):
				t.Errorf("body %s: want nxcloud_code %d", resp.Body, tc.wantCode)
			}
			for _, m := range tc.wantMsg {
				if !strings.Contains(e.Error.Message, m) {
					t.Errorf("message %q does not contain %q", e.Error.Message, m)
				}
			}
			for _, leak := range []string{"10.1.2.3", "dial tcp", "https://", "arn:aws", "<html>", "not json"} {
				if strings.Contains(resp.Body, leak) {
					t.Errorf("body %s leaks internal detail %q", resp.Body, leak)
				}
			}
			lines := logs.Lines(t, "media request")
			if len(lines) != 1 {
				t.Fatalf("log lines = %d, want 1: %s", len(lines), logs.String())
			}
			if got := lines[0]["status"]; got != float64(tc.wantStatus) {
				t.Errorf("logged status = %v, want %d", got, tc.wantStatus)
			}
			if tc.wantCode != 0 && lines[0]["nxcloud_code"] != float64(tc.wantCode) {
				t.Errorf("logged nxcloud_code = %v, want %d", lines[0]["nxcloud_code"], tc.wantCode)
			}
			if _, ok := lines[0]["nxcloud_code"]; tc.wantCode == 0 && ok {
				t.Errorf("logged nxcloud_code %v, want none", lines[0]["nxcloud_code"])
			}
		})
	}
}

func TestHandlerDeleteErrors(t *testing.T) {
	t.Parallel()
	fake := &fakeMedia{deleteMedia: func(context.Context, string, string) error {
		return &nxcloud.APIError{Action: nxcloud.ActionDeleteMedia, Code: 9002, Message: "Merchant phone number error"}
	}}
	log, _ := lambdarttest.Logger()
	h := mediaapi.NewHandler(fake, mediaapi.Options{Logger: log, Methods: []string{http.MethodDelete}})
	resp := invoke(context.Background(), t, h, loadEvent(t, deleteEvent), withMediaID("m"), withPhone(phone))
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("status = %d, want 422; body %s", resp.StatusCode, resp.Body)
	}
	if e := decodeError(t, resp); e.Error.NXCloudCode == nil || *e.Error.NXCloudCode != 9002 {
		t.Errorf("body %s: want nxcloud_code 9002", resp.Body)
	}
}

func TestHandlerLogLine(t *testing.T) {
	t.Parallel()
	fake := &fakeMedia{}
	log, logs := lambdarttest.Logger()
	h := mediaapi.NewHandler(fake, mediaapi.Options{Logger: log})
	ev := loadEvent(t, getEvent)

	// 1: API Gateway's request id; the first request is the cold start.
	invoke(context.Background(), t, h, ev, withMediaID("m"), withPhone(phone), func(ev *events.APIGatewayV2HTTPRequest) {
		ev.RequestContext.RequestID = "apigw-id-1"
	})
	// 2: no API Gateway id: Lambda's.
	lctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "lambda-id-2"})
	invoke(lctx, t, h, ev, withMediaID("m"), withPhone(phone), func(ev *events.APIGatewayV2HTTPRequest) {
		ev.RequestContext.RequestID = ""
	})
	// 3: neither: a generated one.
	invoke(context.Background(), t, h, ev, withMediaID("m"), withQuery(""), func(ev *events.APIGatewayV2HTTPRequest) {
		ev.RequestContext.RequestID = ""
	})

	lines := logs.Lines(t, "media request")
	if len(lines) != 3 {
		t.Fatalf("log lines = %d, want 3: %s", len(lines), logs.String())
	}
	wantIDs := []string{"apigw-id-1", "lambda-id-2", ""}
	wantStatus := []float64{200, 200, 400}
	for i, l := range lines {
		for _, k := range []string{"request_id", "method", "route", "status", "latency_ms", "cold_start"} {
			if _, ok := l[k]; !ok {
				t.Errorf("line %d: no %q: %v", i, k, l)
			}
		}
		if wantIDs[i] != "" && l["request_id"] != wantIDs[i] {
			t.Errorf("line %d: request_id = %v, want %s", i, l["request_id"], wantIDs[i])
		}
		if l["method"] != "GET" || l["route"] != mediaapi.Route || l["status"] != wantStatus[i] {
			t.Errorf("line %d: method/route/status = %v %v %v", i, l["method"], l["route"], l["status"])
		}
		if l["cold_start"] != (i == 0) {
			t.Errorf("line %d: cold_start = %v, want %v", i, l["cold_start"], i == 0)
		}
		if _, ok := l["nxcloud_code"]; ok {
			t.Errorf("line %d: nxcloud_code without an NXCloud code: %v", i, l)
		}
	}
	if id, _ := lines[2]["request_id"].(string); !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) {
		t.Errorf("generated request_id = %q, want 32 hex digits", id)
	}
	if lines[2]["level"] != "WARN" || lines[2]["cause"] != "bad_input" {
		t.Errorf("refused request logged at %v with cause %v, want WARN bad_input", lines[2]["level"], lines[2]["cause"])
	}
}

func TestHandlerKeepsMarginBeforeDeadline(t *testing.T) {
	t.Parallel()
	deadline := time.Now().Add(5 * time.Second)
	var got time.Time
	fake := &fakeMedia{getMedia: func(ctx context.Context, _, _ string) (*nxcloud.Media, error) {
		got, _ = ctx.Deadline()
		return &nxcloud.Media{Raw: json.RawMessage(`{}`)}, nil
	}}
	log, _ := lambdarttest.Logger()
	h := mediaapi.NewHandler(fake, mediaapi.Options{Logger: log})
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	invoke(ctx, t, h, loadEvent(t, getEvent), withMediaID("m"), withPhone(phone))
	if got.IsZero() || !got.Before(deadline) {
		t.Errorf("NXCloud call deadline = %v, want before the invocation's %v", got, deadline)
	}
}

func TestNewHandlerRejectsUnknownMethods(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Error("NewHandler accepted Methods [POST]")
		}
	}()
	mediaapi.NewHandler(&fakeMedia{}, mediaapi.Options{Methods: []string{http.MethodPost}})
}
