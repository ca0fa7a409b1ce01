package nxcloud_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
)

func TestNewClientOptions(t *testing.T) {
	t.Parallel()
	creds := nxcloud.WithCredentials(nxcloud.StaticCredentials{AccessKey: "k", AccessSecret: "s"})
	tests := []struct {
		name    string
		opts    []nxcloud.Option
		wantErr string // substring; "" means success
	}{
		{"defaults", []nxcloud.Option{creds}, ""},
		{"all options", []nxcloud.Option{creds, nxcloud.WithBaseURL("http://127.0.0.1:9/prefix/"), nxcloud.WithHTTPClient(&http.Client{}),
			nxcloud.WithClock(time.Now), nxcloud.WithAlgorithm(nxcloud.SHA256), nxcloud.WithTimeout(time.Second),
			nxcloud.WithRetry(1, 0, 0), nxcloud.WithLogger(nil)}, ""},
		{"no credentials", nil, "WithCredentials is required"},
		{"nil provider", []nxcloud.Option{nxcloud.WithCredentials(nil)}, "WithCredentials"},
		{"nil option", []nxcloud.Option{creds, nil}, "option 1 is nil"},
		{"ftp base URL", []nxcloud.Option{creds, nxcloud.WithBaseURL("ftp://example.com")}, "WithBaseURL"},
		{"relative base URL", []nxcloud.Option{creds, nxcloud.WithBaseURL("/api")}, "WithBaseURL"},
		{"base URL with query", []nxcloud.Option{creds, nxcloud.WithBaseURL("https://example.com/?a=b")}, "WithBaseURL"},
		{"nil HTTP client", []nxcloud.Option{creds, nxcloud.WithHTTPClient(nil)}, "WithHTTPClient"},
		{"nil clock", []nxcloud.Option{creds, nxcloud.WithClock(nil)}, "WithClock"},
		{"unknown algorithm", []nxcloud.Option{creds, nxcloud.WithAlgorithm("sha1")}, "WithAlgorithm"},
		{"zero timeout", []nxcloud.Option{creds, nxcloud.WithTimeout(0)}, "WithTimeout"},
		{"zero attempts", []nxcloud.Option{creds, nxcloud.WithRetry(0, time.Millisecond, time.Second)}, "WithRetry"},
		{"negative delay", []nxcloud.Option{creds, nxcloud.WithRetry(2, -time.Millisecond, time.Second)}, "WithRetry"},
		{"max below base", []nxcloud.Option{creds, nxcloud.WithRetry(2, time.Second, time.Millisecond)}, "WithRetry"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := nxcloud.NewClient(tc.opts...)
			if tc.wantErr == "" {
				if err != nil || c == nil {
					t.Fatalf("NewClient = %v, %v; want a client", c, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("NewClient error = %v; want one naming %q", err, tc.wantErr)
			}
		})
	}
}

func TestGetMediaSuccess(t *testing.T) {
	t.Parallel()
	srv := nxcloudtest.NewTestServer(t)
	id := srv.AddMedia(nxcloudtest.Media{MimeType: "image/png", FileName: "menu.png", Content: []byte("png")})
	c := newTestClient(t, srv)

	m, err := c.GetMedia(context.Background(), testPhone, id)
	if err != nil {
		t.Fatalf("GetMedia: %v", err)
	}
	if m.MimeType != "image/png" || m.FileName != "menu.png" || m.URL != srv.URL()+"/files/"+id {
		t.Errorf("GetMedia = %+v", m)
	}
	wantRaw := `{"mime_type":"image/png","file_name":"menu.png","url":"` + srv.URL() + `/files/` + id + `"}`
	if string(m.Raw) != wantRaw {
		t.Errorf("Raw = %s, want %s", m.Raw, wantRaw)
	}

	calls := srv.Calls(nxcloud.ActionGetMedia)
	if len(calls) != 1 {
		t.Fatalf("server saw %d calls, want 1", len(calls))
	}
	call := calls[0]
	if !call.Verified || call.Code != 0 {
		t.Errorf("call verified=%v code=%d", call.Verified, call.Code)
	}
	wantBody := `{"business_phone":"` + testPhone + `","messaging_product":"whatsapp","Media-ID":"` + id + `"}`
	if string(call.Body) != wantBody {
		t.Errorf("body = %s, want %s", call.Body, wantBody)
	}
	h := call.Header
	checks := map[string]string{
		"accessKey":    srv.Credentials().AccessKey,
		"bizType":      "2",
		"action":       "getMedia",
		"Content-Type": "application/json",
		"algorithm":    "",
	}
	for name, want := range checks {
		if got := h.Get(name); got != want {
			t.Errorf("header %s = %q, want %q", name, got, want)
		}
	}
	if !regexp.MustCompile(`^[0-9]{13}$`).MatchString(h.Get("ts")) {
		t.Errorf("ts = %q, want 13 digits", h.Get("ts"))
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(h.Get("sign")) {
		t.Errorf("sign = %q, want 32 lowercase hex digits", h.Get("sign"))
	}
	if call.Path != "/api/wa/getMedia" || call.Method != http.MethodPost {
		t.Errorf("request %s %s", call.Method, call.Path)
	}
}

func TestGetMediaRawIsExact(t *testing.T) {
	t.Parallel()
	srv := nxcloudtest.NewTestServer(t)
	const data = "{ \"mime_type\" : \"image/webp\",\n \"file_name\":\"c5e7\", \"url\":\"https://x/y?a=1&b=%3D\", \"extra\": [1, 2] }"
	srv.Inject(nxcloud.ActionGetMedia, nxcloudtest.Fault{Body: `{"code":0,"data":` + data + `,"message":"Request successful"}`})
	m, err := newTestClient(t, srv).GetMedia(context.Background(), testPhone, "id-1")
	if err != nil {
		t.Fatalf("GetMedia: %v", err)
	}
	if string(m.Raw) != data {
		t.Errorf("Raw = %q, want %q", m.Raw, data)
	}
	if m.URL != "https://x/y?a=1&b=%3D" || m.MimeType != "image/webp" {
		t.Errorf("GetMedia = %+v", m)
	}
}

func TestDeleteMedia(t *testing.T) {
	t.Parallel()
	srv := nxcloudtest.NewTestServer(t)
	id := srv.AddMedia(nxcloudtest.Media{MimeType: "application/pdf", FileName: "a.pdf"})
	c := newTestClient(t, srv)
	ctx := context.Background()

	if err := c.DeleteMedia(ctx, testPhone, id); err != nil {
		t.Fatalf("DeleteMedia: %v", err)
	}
	if _, ok := srv.Media(id); ok {
		t.Errorf("media %s still stored after delete", id)
	}
	err := c.DeleteMedia(ctx, testPhone, id)
	if e, ok := nxcloud.AsAPIError(err); !ok || e.Code != 9000 || e.Action != nxcloud.ActionDeleteMedia {
		t.Errorf("second DeleteMedia = %v; want APIError 9000 (media not found)", err)
	}
	if _, err := c.GetMedia(ctx, testPhone, id); !isCode(err, 9000) {
		t.Errorf("GetMedia after delete = %v; want APIError 9000", err)
	}
}

func isCode(err error, code int) bool {
	e, ok := nxcloud.AsAPIError(err)
	return ok && e.Code == code
}

func TestDocumentedCodes(t *testing.T) {
	t.Parallel()
	type call func(c *nxcloud.Client, phone, id string) error
	methods := map[string]call{
		nxcloud.ActionGetMedia: func(c *nxcloud.Client, phone, id string) error {
			_, err := c.GetMedia(context.Background(), phone, id)
			return err
		},
		nxcloud.ActionDeleteMedia: func(c *nxcloud.Client, phone, id string) error {
			return c.DeleteMedia(context.Background(), phone, id)
		},
		nxcloud.ActionUploadTemplateFile: func(c *nxcloud.Client, phone, _ string) error {
			_, err := c.UploadTemplateFile(context.Background(), nxcloud.UploadInput{
				BusinessPhone: phone, Type: "image/png", FileName: "a.png", Size: 3, Body: strings.NewReader("png"),
			})
			return err
		},
		nxcloud.ActionUploadMedia: func(c *nxcloud.Client, phone, _ string) error {
			_, err := c.UploadMedia(context.Background(), nxcloud.UploadInput{
				BusinessPhone: phone, Type: "image/png", FileName: "a.png", Size: 3, Body: strings.NewReader("png"),
			})
			return err
		},
	}
	tests := []struct {
		name      string
		inject    int    // code to inject, 0 for none
		phone     string // phone to use (configured on the server below)
		wantCode  int
		wantCalls int
		check     func(*nxcloud.APIError) bool
	}{
		{"-1 failed", -1, testPhone, -1, 1, (*nxcloud.APIError).IsFailure},
		{"9001 system", 9001, testPhone, 9001, 1, (*nxcloud.APIError).IsFailure},
		{"9000 parameter", 9000, testPhone, 9000, 1, (*nxcloud.APIError).IsPermanent},
		{"9002 not whatsapp (server config)", 0, "8600000009002", 9002, 1, (*nxcloud.APIError).IsMerchant},
		{"9006 not bound (server config)", 0, "8600000009006", 9006, 1, (*nxcloud.APIError).IsMerchant},
		{"9002 bad phone format", 0, "12ab", 9002, 1, (*nxcloud.APIError).IsMerchant},
		{"1001 auth twice", 1001, testPhone, 1001, 2, (*nxcloud.APIError).IsAuth},
		{"1099 auth twice", 1099, testPhone, 1099, 2, (*nxcloud.APIError).IsAuth},
		{"1100 is not auth", 1100, testPhone, 1100, 1, func(e *nxcloud.APIError) bool { return !e.IsAuth() }},
	}
	for action, do := range methods {
		for _, tc := range tests {
			t.Run(action+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				srv := nxcloudtest.NewTestServer(t, nxcloudtest.WithNotWhatsAppPhones("8600000009002"), nxcloudtest.WithUnboundPhones("8600000009006"))
				id := srv.AddMedia(nxcloudtest.Media{MimeType: "image/png", FileName: "a.png"})
				if tc.inject != 0 {
					srv.Inject(action, nxcloudtest.Fault{Code: tc.inject, Times: 2})
				}
				p := &fakeProvider{current: srv.Credentials()}
				c := newTestClient(t, srv, nxcloud.WithCredentials(p))
				err := do(c, tc.phone, id)
				e, ok := nxcloud.AsAPIError(err)
				if !ok {
					t.Fatalf("err = %v; want *APIError", err)
				}
				if e.Code != tc.wantCode || e.Action != action || e.HTTPStatus != 200 || e.Message == "" || !tc.check(e) {
					t.Errorf("APIError = %+v; want code %d for %s", e, tc.wantCode, action)
				}
				wantCalls, wantRefresh := tc.wantCalls, tc.wantCalls-1
				if (action == nxcloud.ActionUploadTemplateFile || action == nxcloud.ActionUploadMedia) && e.IsAuth() {
					// Without GetBody the upload is not sent again, but the
					// credentials are refreshed for the caller's own retry.
					wantCalls, wantRefresh = 1, 1
				}
				if got := len(srv.Calls(action)); got != wantCalls {
					t.Errorf("server saw %d calls, want %d", got, wantCalls)
				}
				if _, refreshes := p.counts(); refreshes != wantRefresh {
					t.Errorf("Refresh called %d times, want %d", refreshes, wantRefresh)
				}
				if !strings.Contains(err.Error(), action) {
					t.Errorf("error %q does not name the action", err)
				}
			})
		}
	}
}

func TestBadAnswers(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 5000)
	tests := []struct {
		name       string
		fault      nxcloudtest.Fault
		wantReason string
		temporary  bool
		wantCalls  int // 3 when retried to exhaustion
	}{
		{"500", nxcloudtest.Fault{HTTPStatus: 500, Body: "upstream broke", Times: 5}, "unexpected HTTP status", true, 3},
		{"502 with documented JSON", nxcloudtest.Fault{HTTPStatus: 502, Code: 9001, Times: 5}, "unexpected HTTP status", true, 3},
		{"503 plain", nxcloudtest.Fault{HTTPStatus: 503, Times: 5}, "unexpected HTTP status", true, 3},
		{"429", nxcloudtest.Fault{HTTPStatus: 429, Times: 5}, "unexpected HTTP status", true, 3},
		{"404", nxcloudtest.Fault{HTTPStatus: 404, Body: "not here", Times: 5}, "unexpected HTTP status", false, 1},
		{"302", nxcloudtest.Fault{HTTPStatus: 302, Times: 5}, "unexpected HTTP status", false, 1},
		{"html", nxcloudtest.Fault{Body: "<html>gateway</html>"}, "body is not the documented JSON", false, 1},
		{"truncated JSON", nxcloudtest.Fault{Body: `{"code":0,"data":{"mime_type":"ima`}, "body is not the documented JSON", false, 1},
		{"missing code", nxcloudtest.Fault{Body: `{"message":"ok","data":{}}`}, "body is not the documented JSON", false, 1},
		{"code not a number", nxcloudtest.Fault{Body: `{"code":"0","message":"ok","data":{}}`}, "body is not the documented JSON", false, 1},
		{"code fraction", nxcloudtest.Fault{Body: `{"code":0.5,"message":"ok","data":{}}`}, "body is not the documented JSON", false, 1},
		{"array", nxcloudtest.Fault{Body: `[{"code":0}]`}, "body is not the documented JSON", false, 1},
		{"null", nxcloudtest.Fault{Body: `null`}, "body is not the documented JSON", false, 1},
		{"trailing garbage", nxcloudtest.Fault{Body: `{"code":0,"data":{}} x`}, "body is not the documented JSON", false, 1},
		{"empty body", nxcloudtest.Fault{HTTPStatus: 200, Body: ""}, "body is not the documented JSON", false, 1},
		{"large body", nxcloudtest.Fault{Body: `{"code":0,"data":{"x":"` + strings.Repeat("y", nxcloud.MaxAnswerBytes) + `"}}`}, "body is larger than 1 MiB", false, 1},
		{"long non-JSON", nxcloudtest.Fault{Body: big}, "body is not the documented JSON", false, 1},
		{"data missing", nxcloudtest.Fault{Body: `{"code":0,"message":"Request successful"}`}, "data is not the documented object", false, 1},
		{"data null", nxcloudtest.Fault{Body: `{"code":0,"message":"Request successful","data":null}`}, "data is not the documented object", false, 1},
		{"data array", nxcloudtest.Fault{Body: `{"code":0,"message":"Request successful","data":[1]}`}, "data is not the documented object", false, 1},
		{"data wrong field type", nxcloudtest.Fault{Body: `{"code":0,"message":"Request successful","data":{"url":5}}`}, "data is not the documented object", false, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := nxcloudtest.NewTestServer(t)
			srv.Inject(nxcloud.ActionGetMedia, tc.fault)
			_, err := newTestClient(t, srv).GetMedia(context.Background(), testPhone, "some-id")
			var re *nxcloud.ResponseError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v; want *ResponseError", err)
			}
			if re.Reason != tc.wantReason || re.Temporary() != tc.temporary || re.Action != nxcloud.ActionGetMedia {
				t.Errorf("ResponseError = %+v; want reason %q, temporary %v", re, tc.wantReason, tc.temporary)
			}
			if len(re.Excerpt) > 200 {
				t.Errorf("excerpt is %d bytes, want at most 200", len(re.Excerpt))
			}
			if tc.fault.Body != "" && !strings.HasPrefix(tc.fault.Body, re.Excerpt) {
				t.Errorf("excerpt %q is not a prefix of the body", re.Excerpt)
			}
			if _, isAPI := nxcloud.AsAPIError(err); isAPI {
				t.Errorf("a bad answer must not be an APIError: %v", err)
			}
			if got := len(srv.Calls(nxcloud.ActionGetMedia)); got != tc.wantCalls {
				t.Errorf("server saw %d calls, want %d", got, tc.wantCalls)
			}
		})
	}
}

func TestDeleteMediaAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		wantErr bool
	}{
		{"documented success", `{"code":0,"data":{"success":true},"message":"Request successful"}`, false},
		{"data null", `{"code":0,"data":null,"message":"Request successful"}`, false},
		{"success false", `{"code":0,"data":{"success":false},"message":"Request successful"}`, true},
		{"not JSON", `ok`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := nxcloudtest.NewTestServer(t)
			srv.Inject(nxcloud.ActionDeleteMedia, nxcloudtest.Fault{Body: tc.body})
			err := newTestClient(t, srv).DeleteMedia(context.Background(), testPhone, "id")
			var re *nxcloud.ResponseError
			if tc.wantErr != errors.As(err, &re) {
				t.Errorf("DeleteMedia = %v; want ResponseError: %v", err, tc.wantErr)
			}
		})
	}
}

func TestRetriesThenSucceeds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		fault nxcloudtest.Fault
	}{
		{"503 twice", nxcloudtest.Fault{HTTPStatus: 503, Times: 2}},
		{"429 once", nxcloudtest.Fault{HTTPStatus: 429}},
		{"dropped connection twice", nxcloudtest.Fault{DropConnection: true, Times: 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := nxcloudtest.NewTestServer(t)
			id := srv.AddMedia(nxcloudtest.Media{MimeType: "video/mp4", FileName: "v.mp4"})
			srv.Inject(nxcloud.ActionGetMedia, tc.fault)
			// A clock that moves 1 ms per reading: every attempt must carry a fresh ts.
			var tick time.Duration
			base := time.Now()
			clock := func() time.Time { tick += time.Millisecond; return base.Add(tick) }
			c := newTestClient(t, srv, nxcloud.WithClock(clock))
			if _, err := c.GetMedia(context.Background(), testPhone, id); err != nil {
				t.Fatalf("GetMedia: %v", err)
			}
			calls := srv.Calls(nxcloud.ActionGetMedia)
			want := tc.fault.Times + 1
			if tc.fault.Times == 0 {
				want = 2
			}
			if len(calls) != want {
				t.Fatalf("server saw %d calls, want %d", len(calls), want)
			}
			seen := map[string]bool{}
			for _, call := range calls {
				if seen[call.Header.Get("ts")] {
					t.Errorf("ts %s reused across attempts", call.Header.Get("ts"))
				}
				seen[call.Header.Get("ts")] = true
			}
			if last := calls[len(calls)-1]; !last.Verified || last.Code != 0 {
				t.Errorf("last attempt verified=%v code=%d", last.Verified, last.Code)
			}
		})
	}
}

func TestDroppedConnectionGivesUp(t *testing.T) {
	t.Parallel()
	srv := nxcloudtest.NewTestServer(t)
	srv.Inject(nxcloud.ActionDeleteMedia, nxcloudtest.Fault{DropConnection: true, Times: 10})
	err := newTestClient(t, srv).DeleteMedia(context.Background(), testPhone, "id")
	if err == nil || errors.Is(err, nxcloud.ErrTimeout) {
		t.Fatalf("DeleteMedia = %v; want a network error", err)
	}
	var re *nxcloud.ResponseError
	if _, isAPI := nxcloud.AsAPIError(err); isAPI || errors.As(err, &re) {
		t.Errorf("a dropped connection is neither an APIError nor a ResponseError: %v", err)
	}
	if !strings.Contains(err.Error(), "after 3 attempts") {
		t.Errorf("error %q does not say it gave up after 3 attempts", err)
	}
	if got := len(srv.Calls(nxcloud.ActionDeleteMedia)); got != 3 {
		t.Errorf("server saw %d calls, want 3", got)
	}
}

func TestNoRetryOfAPIErrors(t *testing.T) {
	t.Parallel()
	srv := nxcloudtest.NewTestServer(t)
	srv.Inject(nxcloud.ActionGetMedia, nxcloudtest.Fault{Code: 9001, Times: 5})
	_, err := newTestClient(t, srv, nxcloud.WithRetry(5, time.Millisecond, time.Millisecond)).GetMedia(context.Background(), testPhone, "id")
	if !isCode(err, 9001) {
		t.Fatalf("err = %v; want 9001", err)
	}
	if got := len(srv.Calls(nxcloud.ActionGetMedia)); got != 1 {
		t.Errorf("server saw %d calls, want 1 (codes are not retried)", got)
	}
}

func TestTimeouts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		fault    nxcloudtest.Fault
		opts     []nxcloud.Option
		ctx      time.Duration // caller deadline, 0 for none
		within   time.Duration
		wantCtx  bool // context.DeadlineExceeded in the chain
		minCalls int
		// orLastAnswer accepts the last 5xx answer instead of ErrTimeout,
		// for a budget that may run out between attempts.
		orLastAnswer bool
	}{
		{"WithTimeout budget", nxcloudtest.Fault{Delay: 3 * time.Second}, []nxcloud.Option{nxcloud.WithTimeout(150 * time.Millisecond)}, 0, time.Second, true, 1, false},
		{"ctx deadline first", nxcloudtest.Fault{Delay: 3 * time.Second}, []nxcloud.Option{nxcloud.WithTimeout(5 * time.Second)}, 150 * time.Millisecond, time.Second, true, 1, false},
		{"network timeout", nxcloudtest.Fault{Delay: 3 * time.Second}, []nxcloud.Option{nxcloud.WithHTTPClient(&http.Client{Timeout: 100 * time.Millisecond})}, 0, time.Second, false, 1, false},
		{"budget spent on retries", nxcloudtest.Fault{HTTPStatus: 503, Delay: 60 * time.Millisecond, Times: 100},
			[]nxcloud.Option{nxcloud.WithTimeout(200 * time.Millisecond), nxcloud.WithRetry(100, 0, 0)}, 0, time.Second, true, 2, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := nxcloudtest.NewTestServer(t)
			srv.Inject(nxcloud.ActionGetMedia, tc.fault)
			ctx := context.Background()
			if tc.ctx > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctx)
				defer cancel()
			}
			start := time.Now()
			_, err := newTestClient(t, srv, tc.opts...).GetMedia(ctx, testPhone, "id")
			if elapsed := time.Since(start); elapsed > tc.within {
				t.Errorf("GetMedia took %v, want under %v", elapsed, tc.within)
			}
			var re *nxcloud.ResponseError
			if tc.orLastAnswer && errors.As(err, &re) && re.Temporary() {
				// The budget ran out between attempts: the last answer is the error.
			} else if !errors.Is(err, nxcloud.ErrTimeout) {
				t.Fatalf("err = %v; want ErrTimeout", err)
			} else if tc.wantCtx && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v; want context.DeadlineExceeded in the chain", err)
			}
			waitCalls(t, srv, nxcloud.ActionGetMedia, tc.minCalls)
		})
	}
}

func TestBackoffNeverSleepsPastDeadline(t *testing.T) {
	t.Parallel()
	srv := nxcloudtest.NewTestServer(t)
	srv.Inject(nxcloud.ActionGetMedia, nxcloudtest.Fault{HTTPStatus: 503, Times: 100})
	// Backoff ceilings of 10 s against a 300 ms budget: the client must give
	// up with the last answer instead of sleeping past the deadline.
	c := newTestClient(t, srv, nxcloud.WithTimeout(300*time.Millisecond), nxcloud.WithRetry(100, 10*time.Second, 10*time.Second))
	start := time.Now()
	_, err := c.GetMedia(context.Background(), testPhone, "id")
	if elapsed := time.Since(start); elapsed > 400*time.Millisecond {
		t.Errorf("GetMedia took %v, beyond its 300ms budget", elapsed)
	}
	var re *nxcloud.ResponseError
	if !errors.As(err, &re) || !re.Temporary() {
		t.Errorf("err = %v; want the last 503", err)
	}
}

func TestCanceledIsNotTimeout(t *testing.T) {
	t.Parallel()
	srv := nxcloudtest.NewTestServer(t)
	srv.Inject(nxcloud.ActionGetMedia, nxcloudtest.Fault{Delay: 3 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := newTestClient(t, srv).GetMedia(ctx, testPhone, "id")
	if !errors.Is(err, context.Canceled) || errors.Is(err, nxcloud.ErrTimeout) {
		t.Fatalf("err = %v; want context.Canceled and not ErrTimeout", err)
	}
}

func TestAuthRotationRecovers(t *testing.T) {
	t.Parallel()
	for _, action := range []string{nxcloud.ActionGetMedia, nxcloud.ActionDeleteMedia} {
		t.Run(action, func(t *testing.T) {
			t.Parallel()
			srv := nxcloudtest.NewTestServer(t)
			id := srv.AddMedia(nxcloudtest.Media{MimeType: "image/png", FileName: "a.png"})
			old := srv.Credentials()
			rotated := nxcloud.Credentials{AccessKey: "rotated-key", AccessSecret: "rotated-secret"}
			srv.SetCredentials(rotated.AccessKey, rotated.AccessSecret)
			p := &fakeProvider{current: old, next: &rotated}
			c := newTestClient(t, srv, nxcloud.WithCredentials(p))
			var err error
			if action == nxcloud.ActionGetMedia {
				_, err = c.GetMedia(context.Background(), testPhone, id)
			} else {
				err = c.DeleteMedia(context.Background(), testPhone, id)
			}
			if err != nil {
				t.Fatalf("%s after rotation: %v", action, err)
			}
			calls := srv.Calls(action)
			if len(calls) != 2 || calls[0].Code != nxcloudtest.CodeUnknownAccessKey || calls[1].Code != 0 {
				t.Fatalf("calls = %+v; want a 1001 then a success", calls)
			}
			if got := calls[1].Header.Get("accessKey"); got != rotated.AccessKey {
				t.Errorf("retry sent accessKey %q, want the rotated one", got)
			}
			if _, refreshes := p.counts(); refreshes != 1 {
				t.Errorf("Refresh called %d times, want 1", refreshes)
			}
		})
	}
}

func TestCredentialsErrors(t *testing.T) {
	t.Parallel()
	boom := errors.New("secrets manager unavailable")
	tests := []struct {
		name      string
		provider  *fakeProvider
		inject    bool // inject an auth code so that Refresh runs
		wantCalls int
	}{
		{"retrieve fails", &fakeProvider{retrieveErr: boom}, false, 0},
		{"empty key", &fakeProvider{current: nxcloud.Credentials{AccessSecret: "s"}}, false, 0},
		{"empty secret", &fakeProvider{current: nxcloud.Credentials{AccessKey: "k"}}, false, 0},
		{"key with newline", &fakeProvider{current: nxcloud.Credentials{AccessKey: "k\n", AccessSecret: "s"}}, false, 0},
		{"refresh fails", &fakeProvider{current: nxcloud.Credentials{AccessKey: "k", AccessSecret: "s"}, refreshErr: boom}, true, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := nxcloudtest.NewTestServer(t)
			if tc.inject {
				srv.Inject(nxcloud.ActionGetMedia, nxcloudtest.Fault{Code: 1002})
			}
			_, err := newTestClient(t, srv, nxcloud.WithCredentials(tc.provider)).GetMedia(context.Background(), testPhone, "id")
			var ce *nxcloud.CredentialsError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v; want *CredentialsError", err)
			}
			if tc.provider.retrieveErr != nil && !errors.Is(err, boom) {
				t.Errorf("err = %v; want the provider's error in the chain", err)
			}
			if got := len(srv.Calls("")); got != tc.wantCalls {
				t.Errorf("server saw %d calls, want %d", got, tc.wantCalls)
			}
		})
	}
}

func TestInvalidInputNeverCalls(t *testing.T) {
	t.Parallel()
	srv := nxcloudtest.NewTestServer(t)
	c := newTestClient(t, srv)
	ctx := context.Background()
	errs := map[string]error{}
	_, errs["get empty phone"] = c.GetMedia(ctx, "", "id")
	_, errs["get empty id"] = c.GetMedia(ctx, testPhone, "")
	errs["delete empty phone"] = c.DeleteMedia(ctx, "", "id")
	errs["delete empty id"] = c.DeleteMedia(ctx, testPhone, "")
	ok := nxcloud.UploadInput{BusinessPhone: testPhone, Type: "image/png", FileName: "a.png", Size: 1, Body: strings.NewReader("x")}
	for name, mut := range map[string]func(*nxcloud.UploadInput){
		"upload empty phone":  func(in *nxcloud.UploadInput) { in.BusinessPhone = "" },
		"upload phone CRLF":   func(in *nxcloud.UploadInput) { in.BusinessPhone = "1\r\n2" },
		"upload empty name":   func(in *nxcloud.UploadInput) { in.FileName = "" },
		"upload negative":     func(in *nxcloud.UploadInput) { in.Size = -1 },
		"upload nil body":     func(in *nxcloud.UploadInput) { in.Body = nil },
		"upload empty type":   func(in *nxcloud.UploadInput) { in.Type = "" },
		"upload type param":   func(in *nxcloud.UploadInput) { in.Type = "image/png; x=y" },
		"upload type newline": func(in *nxcloud.UploadInput) { in.Type = "image/png\r\nX: y" },
	} {
		in := ok
		mut(&in)
		_, errs[name] = c.UploadTemplateFile(ctx, in)
		in = ok
		mut(&in)
		_, errs["media "+name] = c.UploadMedia(ctx, in)
	}
	for name, err := range errs {
		if !errors.Is(err, nxcloud.ErrInvalidInput) {
			t.Errorf("%s: err = %v; want ErrInvalidInput", name, err)
		}
	}
	if got := len(srv.Calls("")); got != 0 {
		t.Errorf("server saw %d calls, want 0", got)
	}
}

func TestSHA256EndToEnd(t *testing.T) {
	t.Parallel()
	srv := nxcloudtest.NewTestServer(t)
	c := newTestClient(t, srv, nxcloud.WithAlgorithm(nxcloud.SHA256))
	ctx := context.Background()
	content := bytes.Repeat([]byte("pdf!"), 1000)
	id, err := c.UploadTemplateFile(ctx, nxcloud.UploadInput{
		BusinessPhone: testPhone, Type: "application/pdf", FileName: "doc.pdf", Size: int64(len(content)), Body: bytes.NewReader(content),
	})
	if err != nil {
		t.Fatalf("UploadTemplateFile: %v", err)
	}
	if _, err := c.GetMedia(ctx, testPhone, id); err != nil {
		t.Fatalf("GetMedia: %v", err)
	}
	if err := c.DeleteMedia(ctx, testPhone, id); err != nil {
		t.Fatalf("DeleteMedia: %v", err)
	}
	calls := srv.Calls("")
	if len(calls) != 3 {
		t.Fatalf("server saw %d calls, want 3", len(calls))
	}
	for _, call := range calls {
		if call.Header.Get("algorithm") != "sha256" || !call.Verified || len(call.Header.Get("sign")) != 64 {
			t.Errorf("%s: algorithm=%q verified=%v sign length %d", call.Action, call.Header.Get("algorithm"), call.Verified, len(call.Header.Get("sign")))
		}
	}
}

func TestClockSkewIsRejected(t *testing.T) {
	t.Parallel()
	srv := nxcloudtest.NewTestServer(t)
	skewed := func() time.Time { return time.Now().Add(-2 * time.Minute) }
	_, err := newTestClient(t, srv, nxcloud.WithClock(skewed)).GetMedia(context.Background(), testPhone, "id")
	if !isCode(err, nxcloudtest.CodeTimestampOutOfRange) {
		t.Fatalf("err = %v; want 1003", err)
	}
}

func TestNoSecretsInLogsOrErrors(t *testing.T) {
	t.Parallel()
	cred := nxcloud.Credentials{AccessKey: "AK-very-recognisable", AccessSecret: "SECRET-very-recognisable"}
	srv := nxcloudtest.NewTestServer(t, nxcloudtest.WithCredentials(cred.AccessKey, cred.AccessSecret))
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := newTestClient(t, srv, nxcloud.WithLogger(logger), nxcloud.WithCredentials(nxcloud.StaticCredentials(cred)))
	srv.Inject(nxcloud.ActionGetMedia, nxcloudtest.Fault{HTTPStatus: 500, Times: 1})
	srv.Inject(nxcloud.ActionDeleteMedia, nxcloudtest.Fault{Code: 1002, Times: 2})
	ctx := context.Background()
	var errs []error
	_, err := c.GetMedia(ctx, testPhone, "missing")
	errs = append(errs, err)
	errs = append(errs, c.DeleteMedia(ctx, testPhone, "missing"))
	_, err = c.UploadTemplateFile(ctx, nxcloud.UploadInput{BusinessPhone: testPhone, Type: "image/png", FileName: "a.png", Size: 5, Body: strings.NewReader("abc")})
	errs = append(errs, err)
	if logs.Len() == 0 {
		t.Fatal("no debug logs written")
	}
	secrets := []string{cred.AccessKey, cred.AccessSecret}
	for _, call := range srv.Calls("") {
		secrets = append(secrets, call.Header.Get("sign"))
	}
	for _, s := range secrets {
		if strings.Contains(logs.String(), s) {
			t.Errorf("logs contain a secret value %q", s)
		}
		for _, err := range errs {
			if err == nil {
				t.Fatal("expected every call to fail")
			}
			if strings.Contains(err.Error(), s) {
				t.Errorf("error %q contains a secret value", err)
			}
		}
	}
}
