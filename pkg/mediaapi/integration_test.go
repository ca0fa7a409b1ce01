package mediaapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart/lambdarttest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/mediaapi"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/secret"
)

// Distinctive credentials, searched for in every response and log line.
const (
	testAccessKey    = "AKnxtest5f3a9c"
	testAccessSecret = "sEcReT-7b1d-0e4f-value"
	rotatedKey       = "AKnxrotated77e2"
	rotatedSecret    = "rOtAtEd-secret-31c8"
)

// fakeSecrets is a Secrets Manager holding one secret whose value can be
// rotated or made unavailable.
type fakeSecrets struct {
	mu    sync.Mutex
	value string
	err   error
	calls int
}

func (f *fakeSecrets) GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(f.value), VersionId: aws.String(fmt.Sprint("v", f.calls))}, nil
}

func (f *fakeSecrets) set(value string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.value, f.err = value, err
}

func secretJSON(key, sec string) string {
	b, _ := json.Marshal(map[string]string{"accessKey": key, "accessSecret": sec})
	return string(b)
}

// stack is the handler wired as the functions wire it, against a local
// NXCloud and a fake Secrets Manager.
type stack struct {
	srv     *nxcloudtest.Server
	secrets *fakeSecrets
	creds   *secret.Provider
	h       http.Handler
	logs    *lambdarttest.Buffer
}

type stackOpts struct {
	defaultPhone string
	timeout      time.Duration // client budget; default 2s
	server       []nxcloudtest.Option
}

func newStack(t *testing.T, o stackOpts) *stack {
	t.Helper()
	log, logs := lambdarttest.Logger()
	srv := nxcloudtest.NewTestServer(t, append([]nxcloudtest.Option{nxcloudtest.WithCredentials(testAccessKey, testAccessSecret)}, o.server...)...)
	sm := &fakeSecrets{value: secretJSON(testAccessKey, testAccessSecret)}
	creds := secret.NewProvider(sm, "nxcloud-media-test", secret.WithLogger(log))
	if o.timeout == 0 {
		o.timeout = 2 * time.Second
	}
	client, err := nxcloud.NewClient(
		nxcloud.WithBaseURL(srv.URL()),
		nxcloud.WithCredentials(creds),
		nxcloud.WithTimeout(o.timeout),
		nxcloud.WithRetry(3, 5*time.Millisecond, 20*time.Millisecond),
		nxcloud.WithLogger(log),
	)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	h := mediaapi.NewHandler(client, mediaapi.Options{DefaultBusinessPhone: o.defaultPhone, Logger: log})
	return &stack{srv: srv, secrets: sm, creds: creds, h: h, logs: logs}
}

// assertNoLeak checks that no credential and no signature sent to NXCloud
// appears in the body or the captured logs.
func (s *stack) assertNoLeak(t *testing.T, body string) {
	t.Helper()
	needles := []string{testAccessKey, testAccessSecret, rotatedKey, rotatedSecret}
	for _, c := range s.srv.Calls("") {
		if sig := c.Header.Get("sign"); sig != "" {
			needles = append(needles, sig)
		}
	}
	logs := s.logs.String()
	for _, n := range needles {
		if strings.Contains(body, n) {
			t.Errorf("response body leaks %q: %s", n, body)
		}
		if strings.Contains(logs, n) {
			t.Errorf("logs leak %q: %s", n, logs)
		}
	}
}

func TestHandlerAgainstLocalNXCloud(t *testing.T) {
	t.Parallel()
	fixture := loadEvent(t, getEvent)
	fixtureID, fixturePhone := fixture.PathParameters["mediaId"], fixture.QueryStringParameters["business_phone"]
	if fixtureID == "" || fixturePhone == "" {
		t.Fatal("events/get-media.json has no pathParameters.mediaId or queryStringParameters.business_phone")
	}
	fault := func(action string, f nxcloudtest.Fault) func(*stack) {
		return func(s *stack) { s.srv.Inject(action, f) }
	}
	tests := []struct {
		name       string
		fixture    string
		opts       stackOpts
		setup      func(*stack)
		mods       []eventMod
		wantStatus int
		wantCode   int // 0: no nxcloud_code
		wantMsg    string
		wantCalls  int           // calls NXCloud received for the fixture's action
		wantPhone  string        // phone NXCloud got on success (default: the fixture's)
		within     time.Duration // answer within this time (0: no bound)
	}{
		{name: "get: 200 with the data object", fixture: getEvent, wantStatus: 200, wantCalls: 1},
		{name: "delete: 200 success", fixture: deleteEvent, wantStatus: 200, wantCalls: 1},
		{name: "get: retried 5xx recovers", fixture: getEvent, setup: fault(nxcloud.ActionGetMedia, nxcloudtest.Fault{HTTPStatus: 503}),
			wantStatus: 200, wantCalls: 2},
		{name: "get: unknown media is NXCloud's 9000", fixture: getEvent, mods: []eventMod{withMediaID("no-such-media")},
			wantStatus: 400, wantCode: 9000, wantCalls: 1},
		{name: "injected 9000", fixture: deleteEvent, setup: fault(nxcloud.ActionDeleteMedia, nxcloudtest.Fault{Code: 9000}),
			wantStatus: 400, wantCode: 9000, wantCalls: 1},
		{name: "9002 from the server's phone check", fixture: getEvent, opts: stackOpts{server: []nxcloudtest.Option{nxcloudtest.WithNotWhatsAppPhones(fixturePhone)}},
			wantStatus: 422, wantCode: 9002, wantMsg: "the merchant phone " + fixturePhone + " is not a WhatsApp number (NXCloud 9002", wantCalls: 1},
		{name: "injected 9002", fixture: deleteEvent, setup: fault(nxcloud.ActionDeleteMedia, nxcloudtest.Fault{Code: 9002}),
			wantStatus: 422, wantCode: 9002, wantCalls: 1},
		{name: "9006 from the server's binding check", fixture: deleteEvent, opts: stackOpts{server: []nxcloudtest.Option{nxcloudtest.WithUnboundPhones(fixturePhone)}},
			wantStatus: 422, wantCode: 9006, wantMsg: "not bound", wantCalls: 1},
		{name: "injected 9006", fixture: getEvent, setup: fault(nxcloud.ActionGetMedia, nxcloudtest.Fault{Code: 9006}),
			wantStatus: 422, wantCode: 9006, wantCalls: 1},
		{name: "-1", fixture: getEvent, setup: fault(nxcloud.ActionGetMedia, nxcloudtest.Fault{Code: -1}),
			wantStatus: 502, wantCode: -1, wantCalls: 1},
		{name: "9001", fixture: deleteEvent, setup: fault(nxcloud.ActionDeleteMedia, nxcloudtest.Fault{Code: 9001}),
			wantStatus: 502, wantCode: 9001, wantCalls: 1},
		{name: "1001 twice: auth still failing after refresh", fixture: getEvent, setup: fault(nxcloud.ActionGetMedia, nxcloudtest.Fault{Code: 1001, Times: 2}),
			wantStatus: 502, wantCode: 1001, wantMsg: "even after reloading", wantCalls: 2},
		{name: "HTTP 500 on every attempt", fixture: getEvent, setup: fault(nxcloud.ActionGetMedia, nxcloudtest.Fault{HTTPStatus: 500, Times: 10}),
			wantStatus: 502, wantMsg: "HTTP status 500", wantCalls: 3},
		{name: "body not JSON", fixture: deleteEvent, setup: fault(nxcloud.ActionDeleteMedia, nxcloudtest.Fault{HTTPStatus: 200, Body: "<html>gateway says hi</html>"}),
			wantStatus: 502, wantMsg: "not its documented JSON", wantCalls: 1},
		{name: "connection dropped on every attempt", fixture: getEvent, setup: fault(nxcloud.ActionGetMedia, nxcloudtest.Fault{DropConnection: true, Times: 10}),
			wantStatus: 502, wantMsg: "could not be reached", wantCalls: 3},
		{name: "no answer within the budget", fixture: getEvent, opts: stackOpts{timeout: 300 * time.Millisecond},
			setup:      fault(nxcloud.ActionGetMedia, nxcloudtest.Fault{Delay: 5 * time.Second, Times: 10}),
			wantStatus: 504, wantMsg: "in time", wantCalls: 1, within: 1500 * time.Millisecond},
		{name: "Secrets Manager unavailable", fixture: getEvent, setup: func(s *stack) { s.secrets.set("", errors.New("dial tcp 10.9.8.7:443: i/o timeout")) },
			wantStatus: 503, wantMsg: "cannot load its NXCloud credentials", wantCalls: 0},
		{name: "secret malformed", fixture: deleteEvent, setup: func(s *stack) { s.secrets.set(`{"accessKey":"`+testAccessKey+`"}`, nil) },
			wantStatus: 503, wantMsg: "cannot load its NXCloud credentials", wantCalls: 0},
		{name: "rotated secret is picked up", fixture: getEvent, setup: func(s *stack) {
			if _, err := s.creds.Retrieve(context.Background()); err != nil { // cache the old pair
				panic(err)
			}
			s.srv.SetCredentials(rotatedKey, rotatedSecret)
			s.secrets.set(secretJSON(rotatedKey, rotatedSecret), nil)
		}, wantStatus: 200, wantCalls: 2},
		{name: "default phone fallback", fixture: getEvent, opts: stackOpts{defaultPhone: defaultPhone}, mods: []eventMod{withQuery("")},
			wantStatus: 200, wantCalls: 1, wantPhone: defaultPhone},
		{name: "no phone at all", fixture: getEvent, mods: []eventMod{withQuery("")},
			wantStatus: 400, wantMsg: "business_phone is required: pass ?business_phone=<5-20 digits> or set NXCLOUD_BUSINESS_PHONE", wantCalls: 0},
		{name: "bad phone", fixture: deleteEvent, opts: stackOpts{defaultPhone: defaultPhone}, mods: []eventMod{withPhone("86158xxxx1795")},
			wantStatus: 400, wantMsg: "5 to 20 digits", wantCalls: 0},
		{name: "empty mediaId", fixture: getEvent, mods: []eventMod{withMediaID("")},
			wantStatus: 400, wantMsg: "mediaId is required", wantCalls: 0},
		{name: "257-character mediaId", fixture: deleteEvent, mods: []eventMod{withMediaID(strings.Repeat("a", 257))},
			wantStatus: 400, wantMsg: "257 characters", wantCalls: 0},
		{name: "control character in mediaId", fixture: getEvent, mods: []eventMod{withMediaID("abc\x00")},
			wantStatus: 400, wantMsg: "control characters", wantCalls: 0},
		{name: "405 on the wrong method", fixture: getEvent, mods: []eventMod{withMethod(http.MethodPut)},
			wantStatus: 405, wantMsg: "not allowed", wantCalls: 0},
		{name: "404 elsewhere", fixture: getEvent, mods: []eventMod{withRawPath("/")},
			wantStatus: 404, wantMsg: "not found", wantCalls: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStack(t, tc.opts)
			action := nxcloud.ActionGetMedia
			if tc.fixture == deleteEvent {
				action = nxcloud.ActionDeleteMedia
			}
			s.srv.AddMedia(nxcloudtest.Media{ID: fixtureID, MimeType: "image/png", FileName: "menu.png", BusinessPhone: fixturePhone, Content: []byte("\x89PNG fake")})
			if tc.setup != nil {
				tc.setup(s)
			}
			ev := loadEvent(t, tc.fixture)

			start := time.Now()
			resp := invoke(context.Background(), t, s.h, ev, tc.mods...)
			elapsed := time.Since(start)

			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tc.wantStatus, resp.Body)
			}
			if tc.within > 0 && elapsed > tc.within {
				t.Errorf("answered after %v, want within %v", elapsed, tc.within)
			}
			// A call the client gave up on is recorded when the server
			// finishes it, possibly after the answer: wait a little.
			got := len(s.srv.Calls(action))
			for deadline := time.Now().Add(2 * time.Second); got < tc.wantCalls && time.Now().Before(deadline); got = len(s.srv.Calls(action)) {
				time.Sleep(10 * time.Millisecond)
			}
			if got != tc.wantCalls {
				t.Errorf("NXCloud %s calls = %d, want %d", action, got, tc.wantCalls)
			}
			s.assertNoLeak(t, resp.Body)

			lines := s.logs.Lines(t, "media request")
			if len(lines) != 1 || lines[0]["status"] != float64(tc.wantStatus) {
				t.Errorf("want one request log line with status %d, got %v", tc.wantStatus, lines)
			}

			if tc.wantStatus != http.StatusOK {
				e := decodeError(t, resp)
				if host := strings.TrimPrefix(s.srv.URL(), "http://"); strings.Contains(resp.Body, host) {
					t.Errorf("error body leaks NXCloud's address %s: %s", host, resp.Body)
				}
				if !strings.Contains(e.Error.Message, tc.wantMsg) {
					t.Errorf("message %q does not contain %q", e.Error.Message, tc.wantMsg)
				}
				switch {
				case tc.wantCode == 0 && e.Error.NXCloudCode != nil:
					t.Errorf("nxcloud_code = %d, want none", *e.Error.NXCloudCode)
				case tc.wantCode != 0 && (e.Error.NXCloudCode == nil || *e.Error.NXCloudCode != tc.wantCode):
					t.Errorf("body %s: want nxcloud_code %d", resp.Body, tc.wantCode)
				}
				if tc.wantStatus == http.StatusMethodNotAllowed && header(resp, "Allow") != "DELETE, GET" {
					t.Errorf("Allow = %q, want \"DELETE, GET\"", header(resp, "Allow"))
				}
				return
			}

			calls := s.srv.Calls(action)
			last := calls[len(calls)-1]
			wantPhone := ev.QueryStringParameters["business_phone"] // the fixture's
			if tc.wantPhone != "" {
				wantPhone = tc.wantPhone
			}
			if last.Fields["business_phone"] != wantPhone || last.Fields["Media-ID"] != fixtureID || !last.Verified {
				t.Errorf("NXCloud got business_phone=%q Media-ID=%q verified=%v, want %q %q true",
					last.Fields["business_phone"], last.Fields["Media-ID"], last.Verified, wantPhone, fixtureID)
			}
			if action == nxcloud.ActionDeleteMedia {
				if resp.Body != `{"success":true}` {
					t.Errorf("body = %s, want {\"success\":true}", resp.Body)
				}
				if _, ok := s.srv.Media(fixtureID); ok {
					t.Errorf("media %s still stored after DELETE", fixtureID)
				}
				return
			}
			var data map[string]any
			if err := json.Unmarshal([]byte(resp.Body), &data); err != nil {
				t.Fatalf("body %s: %v", resp.Body, err)
			}
			if data["mime_type"] != "image/png" || data["file_name"] != "menu.png" || !strings.HasPrefix(fmt.Sprint(data["url"]), s.srv.URL()) {
				t.Errorf("body = %s, want the stored media's data object", resp.Body)
			}
		})
	}
}
