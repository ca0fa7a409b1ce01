package faults_test

import (
	"cmp"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localstack"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
)

const mediaID = "4:faults-media-1"

func intp(i int) *int { return &i }

// httpCase is one fault against an HTTP function.
type httpCase struct {
	name    string
	method  string        // GET (default) or DELETE
	timeout time.Duration // function timeout; default 5s
	env     []string
	// proxy, when set, puts a TCP proxy with this fault between the
	// function and NXCloud.
	proxy *proxyFault
	// warm makes one successful call first (credentials cached, connection
	// kept alive), then runs before.
	warm   bool
	before func(w *world)
	// want: the status, NXCloud's code in the error body (nil: none), the
	// calls NXCloud records for the faulted request (-1: any number).
	wantStatus int
	wantCode   *int
	wantCalls  int
}

func fault(action string, f nxcloudtest.Fault) func(*world) {
	return func(w *world) { w.nx.Inject(action, f) }
}

// TestHTTPFaults runs GetMediaFunction and DeleteMediaFunction against each
// fault and checks the SPEC.md status, the error shape, the number of
// NXCloud calls, and that the answer came before the function's deadline
// (the invocation itself never fails: no Sandbox.Timedout).
func TestHTTPFaults(t *testing.T) {
	t.Parallel()
	get, del := nxcloud.ActionGetMedia, nxcloud.ActionDeleteMedia
	tests := []httpCase{
		// NXCloud too slow.
		{name: "answer later than NXCLOUD_TIMEOUT", before: fault(get, nxcloudtest.Fault{Delay: 20 * time.Second, Times: 5}),
			wantStatus: 504, wantCalls: 1},
		{name: "answer later than the Lambda deadline", timeout: 3 * time.Second, env: []string{"NXCLOUD_TIMEOUT=60s"},
			before: fault(get, nxcloudtest.Fault{Delay: 20 * time.Second, Times: 5}), wantStatus: 504, wantCalls: 1},
		{name: "delete answer later than NXCLOUD_TIMEOUT", method: http.MethodDelete,
			before: fault(del, nxcloudtest.Fault{Delay: 20 * time.Second, Times: 5}), wantStatus: 504, wantCalls: 1},
		{name: "slow drip answer ending past the timeout", proxy: &proxyFault{mode: modeDripResponse, chunk: 4, interval: 150 * time.Millisecond},
			wantStatus: 504, wantCalls: 1},
		{name: "accepted and never answered", proxy: &proxyFault{mode: modeBlackHole}, timeout: 3 * time.Second, env: []string{"NXCLOUD_TIMEOUT=60s"},
			wantStatus: 504, wantCalls: 0},

		// Broken connections and bodies.
		{name: "reset mid-body on every attempt", proxy: &proxyFault{mode: modeResetResponse, n: 10}, wantStatus: 502, wantCalls: 3},
		{name: "reset mid-body once, then healthy", proxy: &proxyFault{mode: modeResetResponse, n: 10, conns: 1}, wantStatus: 200, wantCalls: 2},
		{name: "truncated body on every attempt", proxy: &proxyFault{mode: modeTruncateResponse, n: 20}, wantStatus: 502, wantCalls: 3},
		{name: "truncated body once, then healthy", proxy: &proxyFault{mode: modeTruncateResponse, n: 20, conns: 1}, wantStatus: 200, wantCalls: 2},
		{name: "delete truncated on every attempt", method: http.MethodDelete, proxy: &proxyFault{mode: modeTruncateResponse, n: 5}, wantStatus: 502, wantCalls: 3},
		{name: "connection dropped without an answer", before: fault(get, nxcloudtest.Fault{DropConnection: true, Times: 5}), wantStatus: 502, wantCalls: 3},
		{name: "truncated JSON with status 200", before: fault(get, nxcloudtest.Fault{Body: `{"code":0,"data":{"mime_type":"applic`}),
			wantStatus: 502, wantCalls: 1},
		{name: "HTML instead of JSON", before: fault(get, nxcloudtest.Fault{Body: "<html><body>gateway busy</body></html>"}),
			wantStatus: 502, wantCalls: 1},
		{name: "code 0 without data", before: fault(get, nxcloudtest.Fault{Body: `{"code":0,"message":"ok"}`}), wantStatus: 502, wantCalls: 1},
		{name: "delete HTML instead of JSON", method: http.MethodDelete, before: fault(del, nxcloudtest.Fault{Body: "<html>busy</html>", HTTPStatus: 200}),
			wantStatus: 502, wantCalls: 1},

		// HTTP errors: retried with backoff, then 502.
		{name: "HTTP 429 on every attempt", before: fault(get, nxcloudtest.Fault{HTTPStatus: 429, Times: 5}), wantStatus: 502, wantCalls: 3},
		{name: "HTTP 500 on every attempt", before: fault(get, nxcloudtest.Fault{HTTPStatus: 500, Times: 5}), wantStatus: 502, wantCalls: 3},
		{name: "HTTP 503 on every attempt", before: fault(get, nxcloudtest.Fault{HTTPStatus: 503, Times: 5}), wantStatus: 502, wantCalls: 3},
		{name: "delete HTTP 503 on every attempt", method: http.MethodDelete, before: fault(del, nxcloudtest.Fault{HTTPStatus: 503, Times: 5}), wantStatus: 502, wantCalls: 3},
		{name: "HTTP 429 once, then healthy", before: fault(get, nxcloudtest.Fault{HTTPStatus: 429}), wantStatus: 200, wantCalls: 2},
		{name: "HTTP 503 twice, then healthy", before: fault(get, nxcloudtest.Fault{HTTPStatus: 503, Times: 2}), wantStatus: 200, wantCalls: 3},
		{name: "delete HTTP 500 once, then healthy", method: http.MethodDelete, before: fault(del, nxcloudtest.Fault{HTTPStatus: 500}), wantStatus: 200, wantCalls: 2},
		{name: "HTTP 404 with a JSON body", before: fault(get, nxcloudtest.Fault{HTTPStatus: 404, Body: `{"code":0,"data":{}}`}), wantStatus: 502, wantCalls: 1},

		// NXCloud codes.
		{name: "code -1", before: fault(get, nxcloudtest.Fault{Code: -1}), wantStatus: 502, wantCode: intp(-1), wantCalls: 1},
		{name: "code 9001", before: fault(get, nxcloudtest.Fault{Code: 9001}), wantStatus: 502, wantCode: intp(9001), wantCalls: 1},
		{name: "undocumented code", before: fault(get, nxcloudtest.Fault{Code: 4242}), wantStatus: 502, wantCode: intp(4242), wantCalls: 1},
		{name: "code 9000", before: fault(get, nxcloudtest.Fault{Code: 9000}), wantStatus: 400, wantCode: intp(9000), wantCalls: 1},
		{name: "code 9002", before: fault(get, nxcloudtest.Fault{Code: 9002}), wantStatus: 422, wantCode: intp(9002), wantCalls: 1},
		{name: "delete code 9006", method: http.MethodDelete, before: fault(del, nxcloudtest.Fault{Code: 9006}), wantStatus: 422, wantCode: intp(9006), wantCalls: 1},

		// Authentication failure and rotation.
		{name: "rotated in NXCloud and in the secret", warm: true, before: func(w *world) { w.rotate(true) },
			wantStatus: 200, wantCalls: 2},
		{name: "rotated in NXCloud only", warm: true, before: func(w *world) { w.rotate(false) },
			wantStatus: 502, wantCode: intp(nxcloudtest.CodeUnknownAccessKey), wantCalls: 2},
		{name: "delete rotated in NXCloud and in the secret", method: http.MethodDelete, warm: true, before: func(w *world) {
			w.nx.AddMedia(nxcloudtest.Media{ID: mediaID, MimeType: "application/pdf", FileName: "menu.pdf", BusinessPhone: phone})
			w.rotate(true)
		}, wantStatus: 200, wantCalls: 2},
		{name: "auth code 1002 twice", before: fault(get, nxcloudtest.Fault{Code: 1002, Times: 2}),
			wantStatus: 502, wantCode: intp(1002), wantCalls: 2},
		{name: "rotated in NXCloud while Secrets Manager fails", warm: true, before: func(w *world) {
			w.rotate(false)
			w.sm.FailNext(1000, "InternalServiceError", 500)
		}, wantStatus: 503, wantCalls: 1},

		// Secrets Manager.
		{name: "Secrets Manager down on a cold start", before: func(w *world) { w.sm.FailNext(1000, "InternalServiceError", 500) },
			wantStatus: 503, wantCalls: 0},
		// The SDK's backoff between its retries can take seconds: the
		// per-call budget (NXCLOUD_TIMEOUT, which includes loading the
		// credentials) must leave room for it.
		{name: "Secrets Manager throttling twice, then healthy", timeout: 10 * time.Second, env: []string{"NXCLOUD_TIMEOUT=8s"},
			before: func(w *world) { w.sm.FailNext(2, "ThrottlingException", 400) }, wantStatus: 200, wantCalls: 1},
		{name: "Secrets Manager access denied", before: func(w *world) { w.sm.FailNext(1000, "AccessDeniedException", 400) },
			wantStatus: 503, wantCalls: 0},
		{name: "Secrets Manager slower than the Lambda deadline", timeout: 3 * time.Second,
			before: func(w *world) { w.sm.SetDelay(20 * time.Second) }, wantStatus: 503, wantCalls: 0},
		{name: "secret is not JSON", before: func(w *world) { w.sm.Put(secretName, "accessKey=abc;accessSecret=def") },
			wantStatus: 503, wantCalls: 0},
		{name: "secret lacks accessSecret", before: func(w *world) { w.sm.Put(secretName, `{"accessKey":"AKonlykey1234"}`) },
			wantStatus: 503, wantCalls: 0},
		{name: "delete with a malformed secret", method: http.MethodDelete, before: func(w *world) { w.sm.Put(secretName, `{"accessKey":1}`) },
			wantStatus: 503, wantCalls: 0},
		{name: "Secrets Manager down while the cached secret is valid", warm: true,
			before: func(w *world) { w.sm.FailNext(1000, "InternalServiceError", 500) }, wantStatus: 200, wantCalls: 1},
		// The stale grace is one more TTL, counted when the failed fetch
		// (with the SDK's retries) ends: a 3s TTL leaves room for them.
		{name: "Secrets Manager down after the TTL (stale grace)", warm: true, env: []string{"NXCLOUD_SECRET_TTL=3s"},
			before: func(w *world) {
				w.sm.FailNext(1000, "InternalServiceError", 500)
				time.Sleep(3100 * time.Millisecond)
			}, wantStatus: 200, wantCalls: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.run)
	}
}

func (tc httpCase) run(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.nx.AddMedia(nxcloudtest.Media{ID: mediaID, MimeType: "application/pdf", FileName: "menu.pdf", BusinessPhone: phone})
	o := fnOpts{timeout: cmp.Or(tc.timeout, 5*time.Second), env: tc.env}
	var p *tcpProxy
	if tc.proxy != nil {
		p = newTCPProxy(t, w.nx.URL())
		o.nxURL = p.URL()
	}
	pkg, method := pkgGet, http.MethodGet
	o.name = "GetMediaFunction"
	if tc.method == http.MethodDelete {
		pkg, method, o.name = pkgDelete, http.MethodDelete, "DeleteMediaFunction"
	}
	rt := w.start(pkg, o)
	ev := localstack.MediaEvent(method, "/media/"+mediaID+"?business_phone="+phone)
	if tc.warm {
		if a := invokeHTTP(t, rt, ev); a.status != 200 {
			t.Fatalf("warm-up: status %d %s", a.status, a.body)
		}
	}
	if tc.before != nil {
		tc.before(w)
	}
	if p != nil {
		p.set(*tc.proxy)
	}
	callsBefore := len(w.nx.Calls(""))
	smBefore := w.sm.Calls("GetSecretValue")

	a := invokeHTTP(t, rt, ev)
	if p != nil && p.faulted.Load() == 0 {
		t.Errorf("no connection went through the %s proxy fault", tc.proxy.mode)
	}

	if a.status != tc.wantStatus {
		t.Errorf("status %d (%s), want %d", a.status, a.body, tc.wantStatus)
	}
	switch {
	case tc.wantCode == nil && a.code != nil:
		t.Errorf("nxcloud_code %d in %s, want none", *a.code, a.body)
	case tc.wantCode != nil && (a.code == nil || *a.code != *tc.wantCode):
		t.Errorf("body %s, want nxcloud_code %d", a.body, *tc.wantCode)
	}
	// The answer comes before the deadline, with the handler's margin.
	if limit := o.timeout - 200*time.Millisecond; a.elapsed > limit {
		t.Errorf("answered after %v, want before %v (function timeout %v)", a.elapsed, limit, o.timeout)
	}
	if tc.wantCalls >= 0 {
		// A call NXCloud saw but did not finish recording (the client left
		// a delayed answer) is recorded when its handler returns: wait.
		var got int
		for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			got = len(w.nx.Calls("")) - callsBefore
			if got >= tc.wantCalls || time.Now().After(deadline) {
				break
			}
		}
		if got != tc.wantCalls {
			t.Errorf("NXCloud got %d calls, want %d", got, tc.wantCalls)
		}
	}
	t.Logf("%s: %d in %v (NXCloud calls %d, GetSecretValue calls %d)", tc.name, a.status, a.elapsed.Round(time.Millisecond),
		len(w.nx.Calls(""))-callsBefore, w.sm.Calls("GetSecretValue")-smBefore)
	recordOutcome("HTTP "+method, tc.name, fmt.Sprintf("%d%s in %v", a.status, codeSuffix(a.code), a.elapsed.Round(10*time.Millisecond)))
}

func codeSuffix(c *int) string {
	if c == nil {
		return ""
	}
	return fmt.Sprintf(" nxcloud_code %d", *c)
}
