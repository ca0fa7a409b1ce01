package e2e_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localstack"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
)

// addMedia stores a media file at the local NXCloud under a fresh id.
func addMedia(t *testing.T, fileName, mimeType string) string {
	t.Helper()
	return st.NXCloud.AddMedia(nxcloudtest.Media{
		ID:            "e2e-" + randomID(16),
		MimeType:      mimeType,
		FileName:      fileName,
		BusinessPhone: phone,
		Content:       []byte("%PDF-1.4 " + randomID(8)),
	})
}

func mediaPath(id, query string) string {
	p := "/media/" + url.PathEscape(id)
	if query != "" {
		p += "?" + query
	}
	return p
}

// jsonEqual compares two JSON documents by value.
func jsonEqual(t *testing.T, got, want []byte) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s is not JSON: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("%s is not JSON: %v", want, err)
	}
	return reflect.DeepEqual(g, w)
}

// TestGetMedia: GET answers 200 with NXCloud's data object, exactly.
func TestGetMedia(t *testing.T) {
	t.Parallel()
	id := addMedia(t, "menu card (été).pdf", "application/pdf")
	r := apiCall(t, http.MethodGet, mediaPath(id, "business_phone="+phone))
	checkJSON(t, r)
	if r.Status != http.StatusOK {
		t.Fatalf("GET = %s, want 200", r)
	}
	want, _ := json.Marshal(map[string]string{
		"mime_type": "application/pdf",
		"file_name": "menu card (été).pdf",
		"url":       st.NXCloudURL + "/files/" + id,
	})
	if !jsonEqual(t, r.Body, want) {
		t.Errorf("GET body = %s, want NXCloud's data object %s", r.Body, want)
	}
	calls := callsOf(nxcloud.ActionGetMedia, id)
	if len(calls) != 1 || !calls[0].Verified || calls[0].Fields["business_phone"] != phone {
		t.Errorf("NXCloud calls for %s = %+v, want one verified getMedia with business_phone %s", id, calls, phone)
	}
}

// TestGetMediaDataAsIs: whatever members NXCloud's data object carries are
// passed on unchanged (serial: it answers through an injected body).
func TestGetMediaDataAsIs(t *testing.T) {
	serial(t, nxcloud.ActionGetMedia)
	data := `{"mime_type":"image/png","file_name":"a \"quoted\" name.png","url":"https://cdn.example/x.png?sig=1&e=2","size":12345,"extra":{"nested":[1,2.5,null,true]},"empty":""}`
	st.NXCloud.Inject(nxcloud.ActionGetMedia, nxcloudtest.Fault{Body: `{"code":0,"message":"Request successful","data":` + data + `}`})
	id := "e2e-asis-" + randomID(8)
	r := apiCall(t, http.MethodGet, mediaPath(id, "business_phone="+phone))
	checkJSON(t, r)
	if r.Status != http.StatusOK || !jsonEqual(t, r.Body, []byte(data)) {
		t.Errorf("GET = %s, want 200 with the data object %s", r, data)
	}
}

// TestDeleteMedia: DELETE answers exactly {"success":true} and the media is
// gone: a GET or another DELETE now gets NXCloud's 9000, a 400.
func TestDeleteMedia(t *testing.T) {
	t.Parallel()
	id := addMedia(t, "to-delete.pdf", "application/pdf")
	r := apiCall(t, http.MethodDelete, mediaPath(id, "business_phone="+phone))
	checkJSON(t, r)
	if r.Status != http.StatusOK || string(r.Body) != `{"success":true}` {
		t.Fatalf("DELETE = %s, want 200 {\"success\":true}", r)
	}
	if _, ok := st.NXCloud.Media(id); ok {
		t.Errorf("media %s is still at NXCloud after DELETE", id)
	}
	checkError(t, apiCall(t, http.MethodGet, mediaPath(id, "business_phone="+phone)), http.StatusBadRequest, intp(nxcloudtest.CodeParameter))
	checkError(t, apiCall(t, http.MethodDelete, mediaPath(id, "business_phone="+phone)), http.StatusBadRequest, intp(nxcloudtest.CodeParameter))
	if calls := callsOf(nxcloud.ActionDeleteMedia, id); len(calls) != 2 {
		t.Errorf("deleteMedia calls = %d, want 2", len(calls))
	}
}

// TestBusinessPhoneSources: the query wins, NXCLOUD_BUSINESS_PHONE is the
// fallback, and with neither the request is a 400 that never reaches
// NXCloud.
func TestBusinessPhoneSources(t *testing.T) {
	t.Parallel()
	id := addMedia(t, "phone.pdf", "application/pdf")

	// Main stack: no NXCLOUD_BUSINESS_PHONE.
	r := apiCall(t, http.MethodGet, mediaPath(id, ""))
	msg := checkError(t, r, http.StatusBadRequest, nil)
	if !strings.Contains(msg, "business_phone") {
		t.Errorf("the 400 message %q does not name business_phone", msg)
	}
	if n := len(callsOf(nxcloud.ActionGetMedia, id)); n != 0 {
		t.Fatalf("NXCloud got %d calls for a request without a phone", n)
	}
	r = apiCall(t, http.MethodGet, mediaPath(id, "business_phone="))
	checkError(t, r, http.StatusBadRequest, nil)

	// A Runtime whose environment names a default phone.
	for _, fn := range []string{localstack.GetMediaFunction, localstack.DeleteMediaFunction} {
		rt, logs := mustRuntimeLog(t, fn, "NXCLOUD_BUSINESS_PHONE="+defaultPhone)
		method := http.MethodGet
		if fn == localstack.DeleteMediaFunction {
			method = http.MethodDelete
		}
		action := map[string]string{http.MethodGet: nxcloud.ActionGetMedia, http.MethodDelete: nxcloud.ActionDeleteMedia}[method]

		// The query wins over the default.
		mid := addMedia(t, "q.pdf", "application/pdf")
		r = invokeAPI(t, rt.Invoke, localstack.MediaEvent(method, mediaPath(mid, "business_phone="+phone)))
		if r.Status != http.StatusOK {
			t.Fatalf("%s with a query phone = %s, want 200", fn, r)
		}
		if c := callsOf(action, mid); len(c) != 1 || c[0].Fields["business_phone"] != phone {
			t.Errorf("%s: NXCloud got %+v, want one call with the query's phone %s", fn, c, phone)
		}

		// Without a query, the default.
		mid = addMedia(t, "d.pdf", "application/pdf")
		r = invokeAPI(t, rt.Invoke, localstack.MediaEvent(method, mediaPath(mid, "")))
		if r.Status != http.StatusOK {
			t.Fatalf("%s without a query phone = %s, want 200 through NXCLOUD_BUSINESS_PHONE", fn, r)
		}
		checkJSON(t, r)
		if c := callsOf(action, mid); len(c) != 1 || c[0].Fields["business_phone"] != defaultPhone {
			t.Errorf("%s: NXCloud got %+v, want one call with the default phone %s", fn, c, defaultPhone)
		}

		// One log line per request, the first of the process a cold start.
		var lines []map[string]any
		for end := time.Now().Add(3 * time.Second); len(lines) < 2 && time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			lines = logs.Lines(t, "media request") // the output comes through a pipe
		}
		if len(lines) != 2 {
			t.Fatalf("%s: %d request log lines, want 2:\n%s", fn, len(lines), logs)
		}
		for i, l := range lines {
			if l["cold_start"] != (i == 0) || l["function_name"] != fn || l["request_id"] == "" {
				t.Errorf("%s: log line %d: %v, want cold_start %v, function and request_id", fn, i, l, i == 0)
			}
		}
	}
}

// TestBadInput: invalid ids and phones are 400s that never reach NXCloud;
// the limits themselves pass.
func TestBadInput(t *testing.T) {
	t.Parallel()
	tag := randomID(10)
	long := "e2e-" + tag + strings.Repeat("x", 257-len("e2e-")-len(tag))
	atLimit := "e2e-" + tag + strings.Repeat("y", 256-len("e2e-")-len(tag))
	for _, tc := range []struct {
		name, method, path, marker string
		status                     int
		reach                      bool // NXCloud is called
	}{
		{"id of 257 characters", http.MethodGet, mediaPath(long, "business_phone="+phone), long, 400, false},
		{"id of 257 characters, delete", http.MethodDelete, mediaPath(long, "business_phone="+phone), long, 400, false},
		{"id of 256 characters reaches NXCloud", http.MethodGet, mediaPath(atLimit, "business_phone="+phone), atLimit, 400, true},
		{"control character %01", http.MethodGet, "/media/e2e-" + tag + "-ctl%01x?business_phone=" + phone, "e2e-" + tag + "-ctl", 400, false},
		{"control character %7F", http.MethodDelete, "/media/e2e-" + tag + "-del%7Fx?business_phone=" + phone, "e2e-" + tag + "-del", 400, false},
		{"newline %0A", http.MethodGet, "/media/e2e-" + tag + "-nl%0Ax?business_phone=" + phone, "e2e-" + tag + "-nl", 400, false},
		{"phone of 4 digits", http.MethodGet, mediaPath("e2e-"+tag+"-p4", "business_phone=1234"), "e2e-" + tag + "-p4", 400, false},
		{"phone of 21 digits", http.MethodGet, mediaPath("e2e-"+tag+"-p21", "business_phone=123456789012345678901"), "e2e-" + tag + "-p21", 400, false},
		{"phone with letters", http.MethodDelete, mediaPath("e2e-"+tag+"-pl", "business_phone=86158abc1795"), "e2e-" + tag + "-pl", 400, false},
		{"phone with a plus", http.MethodGet, mediaPath("e2e-"+tag+"-pp", "business_phone=%2B8615812341795"), "e2e-" + tag + "-pp", 400, false},
		{"phone with spaces", http.MethodGet, mediaPath("e2e-"+tag+"-ps", "business_phone=86158%201234"), "e2e-" + tag + "-ps", 400, false},
		{"phone of 5 digits reaches NXCloud", http.MethodGet, mediaPath("e2e-"+tag+"-p5", "business_phone=12345"), "e2e-" + tag + "-p5", 400, true},
		{"phone of 20 digits reaches NXCloud", http.MethodGet, mediaPath("e2e-"+tag+"-p20", "business_phone=12345678901234567890"), "e2e-" + tag + "-p20", 400, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := apiCall(t, tc.method, tc.path)
			var code *int
			if tc.reach {
				code = intp(nxcloudtest.CodeParameter) // unknown media
			}
			checkError(t, r, tc.status, code)
			n := len(callsOf(nxcloud.ActionGetMedia, tc.marker)) + len(callsOf(nxcloud.ActionDeleteMedia, tc.marker))
			if tc.reach && n != 1 {
				t.Errorf("NXCloud got %d calls, want 1", n)
			}
			if !tc.reach && n != 0 {
				t.Errorf("bad input reached NXCloud (%d calls)", n)
			}
		})
	}
}

// TestNXCloudCodes: each NXCloud answer maps to its status (serial: faults).
func TestNXCloudCodes(t *testing.T) {
	serial(t, nxcloud.ActionGetMedia, nxcloud.ActionDeleteMedia)
	for _, tc := range []struct {
		name   string
		fault  nxcloudtest.Fault
		status int
		code   *int
		calls  int // calls NXCloud gets; 0: more than one (retried)
	}{
		{"9000", nxcloudtest.Fault{Code: 9000}, 400, intp(9000), 1},
		{"9002", nxcloudtest.Fault{Code: 9002}, 422, intp(9002), 1}, // the message: below
		{"9006", nxcloudtest.Fault{Code: 9006}, 422, intp(9006), 1},
		{"-1", nxcloudtest.Fault{Code: -1}, 502, intp(-1), 1},
		{"9001", nxcloudtest.Fault{Code: 9001}, 502, intp(9001), 1},
		{"undocumented 1234", nxcloudtest.Fault{Code: 1234}, 502, intp(1234), 1},
		{"HTTP 500 on every attempt", nxcloudtest.Fault{HTTPStatus: 500, Times: 20}, 502, nil, 0},
		{"HTTP 404", nxcloudtest.Fault{HTTPStatus: 404}, 502, nil, 1},
		{"body not JSON", nxcloudtest.Fault{Body: "<html>gateway</html>"}, 502, nil, 1},
		{"JSON without a code", nxcloudtest.Fault{Body: `{"message":"ok","data":{}}`}, 502, nil, 1},
		{"code 0 with data not an object", nxcloudtest.Fault{Body: `{"code":0,"message":"ok","data":"x"}`}, 502, nil, 1},
		{"code 0 with data null", nxcloudtest.Fault{Body: `{"code":0,"message":"ok","data":null}`}, 502, nil, 1},
		{"auth code on every attempt", nxcloudtest.Fault{Code: 1001, Times: 2}, 502, intp(1001), 2},
		{"auth code 1003 on every attempt", nxcloudtest.Fault{Code: 1003, Times: 2}, 502, intp(1003), 2},
	} {
		for _, method := range []string{http.MethodGet, http.MethodDelete} {
			action := nxcloud.ActionGetMedia
			if method == http.MethodDelete {
				action = nxcloud.ActionDeleteMedia
			}
			if action == nxcloud.ActionDeleteMedia && strings.Contains(tc.name, "code 0 with data") {
				continue // deleteMedia's data is not read
			}
			t.Run(tc.name+" "+method, func(t *testing.T) {
				id := addMedia(t, "codes.pdf", "application/pdf")
				secretCalls := st.Secrets.Calls("GetSecretValue")
				n := len(st.NXCloud.Calls(action))
				st.NXCloud.Inject(action, tc.fault)
				r := apiCall(t, method, mediaPath(id, "business_phone="+phone))
				msg := checkError(t, r, tc.status, tc.code)
				if tc.name == "9002" && !strings.Contains(msg, "is not a WhatsApp number (NXCloud 9002") {
					t.Errorf("the 422 message %q does not say the phone is not a WhatsApp number", msg)
				}
				got := len(callsSince(action, n))
				switch {
				case tc.calls > 0 && got != tc.calls:
					t.Errorf("NXCloud got %d calls, want %d", got, tc.calls)
				case tc.calls == 0 && got < 2:
					t.Errorf("NXCloud got %d calls: a 5xx or a dropped connection must be retried", got)
				}
				drainFaults(t, action)
				if tc.fault.Code >= 1000 && tc.fault.Code <= 1099 {
					if st.Secrets.Calls("GetSecretValue") <= secretCalls {
						t.Errorf("an authentication code did not make the function reload its secret")
					}
					if strings.Contains(msg, localstack.DefaultAccessKey) {
						t.Errorf("the message names the access key")
					}
				}
			})
		}
	}
}

// TestNXCloudRetries: a 5xx or a dropped connection is retried inside the
// budget and the caller sees the answer of the retry (serial: faults).
func TestNXCloudRetries(t *testing.T) {
	serial(t, nxcloud.ActionGetMedia, nxcloud.ActionDeleteMedia)
	for _, tc := range []struct {
		name  string
		fault nxcloudtest.Fault
	}{
		{"HTTP 500 once", nxcloudtest.Fault{HTTPStatus: 500}},
		{"HTTP 503 twice", nxcloudtest.Fault{HTTPStatus: 503, Times: 2}},
		{"connection dropped once", nxcloudtest.Fault{DropConnection: true}},
	} {
		for _, method := range []string{http.MethodGet, http.MethodDelete} {
			t.Run(tc.name+" "+method, func(t *testing.T) {
				action := nxcloud.ActionGetMedia
				if method == http.MethodDelete {
					action = nxcloud.ActionDeleteMedia
				}
				id := addMedia(t, "retry.pdf", "application/pdf")
				n := len(st.NXCloud.Calls(action))
				st.NXCloud.Inject(action, tc.fault)
				r := apiCall(t, method, mediaPath(id, "business_phone="+phone))
				checkJSON(t, r)
				if r.Status != http.StatusOK {
					t.Errorf("%s = %s, want 200 after the retry", method, r)
				}
				want := max(tc.fault.Times, 1) + 1
				if got := len(callsSince(action, n)); got != want {
					t.Errorf("NXCloud got %d calls, want %d", got, want)
				}
			})
		}
	}
}

// TestTimeout: NXCloud answering later than NXCLOUD_TIMEOUT is a 504 that
// arrives within the budget (serial: a fault).
func TestTimeout(t *testing.T) {
	serial(t, nxcloud.ActionGetMedia, nxcloud.ActionDeleteMedia)
	for _, method := range []string{http.MethodGet, http.MethodDelete} {
		t.Run(method, func(t *testing.T) {
			action := nxcloud.ActionGetMedia
			if method == http.MethodDelete {
				action = nxcloud.ActionDeleteMedia
			}
			id := addMedia(t, "slow.pdf", "application/pdf")
			st.NXCloud.Inject(action, nxcloudtest.Fault{Delay: 3 * nxcloudTimeout, Times: 5})
			start := time.Now()
			r := apiCall(t, method, mediaPath(id, "business_phone="+phone))
			took := time.Since(start)
			checkError(t, r, http.StatusGatewayTimeout, nil)
			if budget := nxcloudTimeout + 1500*time.Millisecond; took > budget {
				t.Errorf("the 504 took %s, want at most NXCLOUD_TIMEOUT (%s) plus a margin: %s", took, nxcloudTimeout, budget)
			}
			if took < nxcloudTimeout/2 {
				t.Errorf("the 504 came after %s, long before NXCLOUD_TIMEOUT %s", took, nxcloudTimeout)
			}
		})
	}
}

// TestRoutes: an unknown route is a 404, and a method the function does not
// serve is its own 405.
func TestRoutes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/nope"},
		{http.MethodGet, "/media"},
		{http.MethodGet, "/media/"},
		{http.MethodGet, "/media/a/b"},
		{http.MethodPost, "/media/abc"},
		{http.MethodPut, "/media/abc?business_phone=" + phone},
	} {
		r := apiCall(t, tc.method, tc.path)
		checkJSON(t, r)
		if r.Status != http.StatusNotFound {
			t.Errorf("%s %s = %s, want 404", tc.method, tc.path, r)
		}
	}

	id := "e2e-405-" + randomID(8)
	for _, tc := range []struct {
		fn, method, allow string
	}{
		{localstack.GetMediaFunction, http.MethodDelete, http.MethodGet},
		{localstack.GetMediaFunction, http.MethodPost, http.MethodGet},
		{localstack.DeleteMediaFunction, http.MethodGet, http.MethodDelete},
	} {
		r := invokeAPI(t, stackFunction(tc.fn), localstack.MediaEvent(tc.method, mediaPath(id, "business_phone="+phone)))
		msg := checkError(t, r, http.StatusMethodNotAllowed, nil)
		if got := r.Header.Get("Allow"); !strings.Contains(got, tc.allow) || !strings.Contains(msg, "use "+tc.allow) {
			t.Errorf("%s %s: Allow = %q, message %q; want both to name %s", tc.fn, tc.method, got, msg, tc.allow)
		}
	}
	// The handler's own 404 for a path outside /media/{mediaId}.
	r := invokeAPI(t, stackFunction(localstack.GetMediaFunction), localstack.MediaEvent(http.MethodGet, "/other/x?business_phone="+phone))
	checkError(t, r, http.StatusNotFound, nil)
	if n := len(callsOf(nxcloud.ActionGetMedia, id)) + len(callsOf(nxcloud.ActionDeleteMedia, id)); n != 0 {
		t.Errorf("a 405 reached NXCloud (%d calls)", n)
	}
}

// TestEventFiles: the events/ fixtures, invoked as sam local invoke does,
// answer as the contract says for the media they name.
func TestEventFiles(t *testing.T) {
	t.Parallel()
	get := readEvent(t, "get-media.json")
	var ev struct {
		PathParameters        map[string]string `json:"pathParameters"`
		QueryStringParameters map[string]string `json:"queryStringParameters"`
	}
	if err := json.Unmarshal(get, &ev); err != nil {
		t.Fatal(err)
	}
	id, evPhone := ev.PathParameters["mediaId"], ev.QueryStringParameters["business_phone"]

	// The id named by the fixtures, if NXCloud does not know it yet, is
	// unknown: NXCloud's 9000 is a 400.
	if _, known := st.NXCloud.Media(id); !known {
		r := invokeAPI(t, stackFunction(localstack.GetMediaFunction), get)
		checkError(t, r, http.StatusBadRequest, intp(nxcloudtest.CodeParameter))
	}
	st.NXCloud.AddMedia(nxcloudtest.Media{ID: id, MimeType: "application/pdf", FileName: "menu card.pdf", BusinessPhone: evPhone})

	r := invokeAPI(t, stackFunction(localstack.GetMediaFunction), get)
	checkJSON(t, r)
	if r.Status != http.StatusOK {
		t.Fatalf("events/get-media.json = %s, want 200", r)
	}
	var data map[string]string
	_ = json.Unmarshal(r.Body, &data)
	if data["mime_type"] != "application/pdf" || data["file_name"] != "menu card.pdf" || data["url"] == "" {
		t.Errorf("events/get-media.json body = %s, want the media's data object", r.Body)
	}
	if c := callsOf(nxcloud.ActionGetMedia, id); len(c) == 0 || c[len(c)-1].Fields["business_phone"] != evPhone {
		t.Errorf("NXCloud did not get the fixture's phone %s", evPhone)
	}

	// A hand-written event may hold a raw control character in rawPath.
	var raw map[string]any
	_ = json.Unmarshal(get, &raw)
	raw["rawPath"] = "/media/ab\x01c"
	bad, _ := json.Marshal(raw)
	if msg := checkError(t, invokeAPI(t, stackFunction(localstack.GetMediaFunction), bad), http.StatusBadRequest, nil); !strings.Contains(msg, "control characters") {
		t.Errorf("a raw control character in rawPath: message %q, want it named", msg)
	}
	if n := len(callsOf(nxcloud.ActionGetMedia, "ab\x01c")); n != 0 {
		t.Errorf("a raw control character in rawPath reached NXCloud (%d calls)", n)
	}

	r = invokeAPI(t, stackFunction(localstack.DeleteMediaFunction), readEvent(t, "delete-media.json"))
	checkJSON(t, r)
	if r.Status != http.StatusOK || !jsonEqual(t, r.Body, []byte(`{"success":true}`)) {
		t.Errorf("events/delete-media.json = %s, want 200 {\"success\":true}", r)
	}
	if _, ok := st.NXCloud.Media(id); ok {
		t.Errorf("media %s still at NXCloud after events/delete-media.json", id)
	}

	// The seeded sample media through the HTTP API.
	r = apiCall(t, http.MethodGet, mediaPath(localstack.SampleMediaID, "business_phone="+phone))
	if r.Status != http.StatusOK {
		t.Errorf("GET of the seeded %s = %s, want 200", localstack.SampleMediaID, r)
	}
}

// ---------------------------------------------------------------- credentials

// TestSecretMissing: a secret Secrets Manager does not have is a 503 for
// both HTTP functions (fresh Runtimes: nothing cached).
func TestSecretMissing(t *testing.T) {
	t.Parallel()
	missing := "e2e/missing-" + randomID(8)
	for _, tc := range []struct{ fn, event, method string }{
		{localstack.GetMediaFunction, "get-media.json", http.MethodGet},
		{localstack.DeleteMediaFunction, "delete-media.json", http.MethodDelete},
	} {
		rt := mustRuntime(t, tc.fn, "NXCLOUD_SECRET_ID="+missing)
		r := invokeAPI(t, rt.Invoke, readEvent(t, tc.event))
		checkError(t, r, http.StatusServiceUnavailable, nil)

		id := addMedia(t, "nosecret.pdf", "application/pdf")
		r = invokeAPI(t, rt.Invoke, localstack.MediaEvent(tc.method, mediaPath(id, "business_phone="+phone)))
		checkError(t, r, http.StatusServiceUnavailable, nil)
		if n := len(callsOf(nxcloud.ActionGetMedia, id)) + len(callsOf(nxcloud.ActionDeleteMedia, id)); n != 0 {
			t.Errorf("%s called NXCloud %d times without credentials", tc.fn, n)
		}
	}
}

// TestSecretsManagerDown: Secrets Manager refusing the call is a 503
// (serial: the failure is injected into the shared Secrets Manager).
func TestSecretsManagerDown(t *testing.T) {
	faultMu.Lock()
	defer faultMu.Unlock()
	rt := mustRuntime(t, localstack.GetMediaFunction)
	st.Secrets.FailNext(100, "AccessDeniedException", http.StatusBadRequest)
	defer st.Secrets.FailNext(0, "", 0)
	id := addMedia(t, "denied.pdf", "application/pdf")
	r := invokeAPI(t, rt.Invoke, localstack.MediaEvent(http.MethodGet, mediaPath(id, "business_phone="+phone)))
	checkError(t, r, http.StatusServiceUnavailable, nil)
	if n := len(callsOf(nxcloud.ActionGetMedia, id)); n != 0 {
		t.Errorf("NXCloud got %d calls without credentials", n)
	}
}

// TestSecretMalformed: a secret without the expected fields is a 503 whose
// body holds nothing of the secret; the function's log names the field.
func TestSecretMalformed(t *testing.T) {
	t.Parallel()
	r8 := randomID(8)
	for _, tc := range []struct {
		name, value, field string
		parts              []string // parts of the value that must not show
	}{
		{"accessSecret missing", `{"accessKey":"AKmalformed-` + r8 + `"}`, "accessSecret", []string{"AKmalformed-" + r8}},
		{"accessSecret empty", `{"accessKey":"AKempty-` + r8 + `","accessSecret":""}`, "accessSecret", []string{"AKempty-" + r8}},
		{"accessKey missing", `{"accessSecret":"only-secret-` + r8 + `"}`, "accessKey", []string{"only-secret-" + r8}},
		{"not JSON", `plain-text-secret-` + r8, "", []string{"plain-text-secret-" + r8}},
		{"JSON array", `["array-secret-` + r8 + `"]`, "", []string{"array-secret-" + r8}},
		{"the template's placeholders", `{"accessKey":"REPLACE_ME","accessSecret":"REPLACE_ME"}`, "accessKey", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			secrets.Add(tc.value)
			secrets.Add(tc.parts...)
			name := "e2e/malformed-" + randomID(8)
			st.Secrets.Put(name, tc.value)
			rt, logs := mustRuntimeLog(t, localstack.GetMediaFunction, "NXCLOUD_SECRET_ID="+name)
			id := addMedia(t, "malformed.pdf", "application/pdf")
			r := invokeAPI(t, rt.Invoke, localstack.MediaEvent(http.MethodGet, mediaPath(id, "business_phone="+phone)))
			msg := checkError(t, r, http.StatusServiceUnavailable, nil)
			if placeholder := strings.Contains(tc.value, "REPLACE_ME"); placeholder != strings.Contains(msg, "aws secretsmanager put-secret-value") {
				t.Errorf("503 message %q: the put-secret-value fix must be given exactly for the placeholders", msg)
			}
			for _, p := range append([]string{tc.value}, tc.parts...) {
				if strings.Contains(string(r.Body), p) {
					t.Errorf("the 503 body holds part of the secret's value")
				}
			}
			if n := len(callsOf(nxcloud.ActionGetMedia, id)); n != 0 {
				t.Errorf("NXCloud got %d calls with a malformed secret", n)
			}
			// The process's output is read through a pipe: give it a moment.
			for end := time.Now().Add(3 * time.Second); tc.field != "" && !strings.Contains(logs.String(), tc.field) && time.Now().Before(end); {
				time.Sleep(20 * time.Millisecond)
			}
			if tc.field != "" && !strings.Contains(logs.String(), tc.field) {
				t.Errorf("no function log line names the field %s of the malformed secret", tc.field)
			}
		})
	}
}

// TestRotatedSecret: after the credentials change at NXCloud and in the
// secret, warm functions get NXCloud's authentication code once, reload the
// secret, retry, and the caller never sees an error (serial: it changes the
// shared credentials for good).
func TestRotatedSecret(t *testing.T) {
	faultMu.Lock()
	defer faultMu.Unlock()
	ctx := testContext(t, 60*time.Second)

	// Warm every function with the current credentials.
	before := addMedia(t, "before.pdf", "application/pdf")
	if r := apiCall(t, http.MethodGet, mediaPath(before, "business_phone="+phone)); r.Status != http.StatusOK {
		t.Fatalf("GET before the rotation = %s", r)
	}
	if r := apiCall(t, http.MethodDelete, mediaPath(before, "business_phone="+phone)); r.Status != http.StatusOK {
		t.Fatalf("DELETE before the rotation = %s", r)
	}
	warm := randomPDF()
	putObject(t, ctx, st.Prefix+phone+"/rotation-before-"+randomID(6)+".pdf", warm, nil)

	// Rotate.
	key, secret := "AKrotated-"+randomID(12), "rotated-secret-"+randomID(24)
	secrets.Add(key, secret)
	val, _ := json.Marshal(map[string]string{"accessKey": key, "accessSecret": secret})
	secrets.Add(string(val))
	st.NXCloud.SetCredentials(key, secret)
	st.Secrets.Put(st.SecretID, string(val))

	for _, method := range []string{http.MethodGet, http.MethodDelete} {
		action := nxcloud.ActionGetMedia
		if method == http.MethodDelete {
			action = nxcloud.ActionDeleteMedia
		}
		id := addMedia(t, "after.pdf", "application/pdf")
		r := apiCall(t, method, mediaPath(id, "business_phone="+phone))
		checkJSON(t, r)
		if r.Status != http.StatusOK {
			t.Fatalf("%s after the rotation = %s, want 200", method, r)
		}
		calls := callsOf(action, id)
		if len(calls) != 2 || calls[0].Code != nxcloudtest.CodeUnknownAccessKey || calls[1].Code != nxcloudtest.CodeOK ||
			calls[1].Header.Get("accessKey") != key {
			codes := []int{}
			for _, c := range calls {
				codes = append(codes, c.Code)
			}
			t.Errorf("%s: NXCloud codes %v, want [1001 0]: one refused call with the old key, one retry with the new", method, codes)
		}
	}

	// The upload function picks up the rotation too.
	body := randomPDF()
	k := st.Prefix + phone + "/rotation-after-" + randomID(6) + ".pdf"
	putObject(t, ctx, k, body, nil)
	tags := waitTags(t, ctx, k)
	if tags["nxcloud-status"] != "uploaded" {
		t.Fatalf("upload after the rotation: tags %v, want nxcloud-status=uploaded", tags)
	}
	if n := len(uploadsOf(body)); n != 1 {
		t.Errorf("NXCloud stored the file %d times, want 1", n)
	}
	if err := st.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	for _, f := range st.Failed() {
		if strings.Contains(string(f.RequestPayload), "rotation-") {
			t.Errorf("an upload around the rotation reached the failure queue: %s", f.ResponsePayload.ErrorMessage)
		}
	}
}

// TestLeakCheck: the suite's list of values TestMain checks the whole
// output against holds the stack's credentials (lambdarttest tests the check).
func TestLeakCheck(t *testing.T) {
	t.Parallel()
	if !secrets.Has(localstack.DefaultAccessSecret) || !secrets.Has(localstack.DefaultAccessKey) {
		t.Errorf("the secret list misses the stack's credentials")
	}
}

// TestSecretCache: a warm function keeps its credentials across invocations
// and fetches them again after NXCLOUD_SECRET_TTL (serial: it counts the
// calls of the shared Secrets Manager).
func TestSecretCache(t *testing.T) {
	faultMu.Lock()
	defer faultMu.Unlock()
	const ttl = 1500 * time.Millisecond
	cred := st.NXCloud.Credentials()
	val, _ := json.Marshal(map[string]string{"accessKey": cred.AccessKey, "accessSecret": cred.AccessSecret})
	secrets.Add(string(val))
	name := "e2e/ttl-" + randomID(8)
	st.Secrets.Put(name, string(val))
	rt := mustRuntime(t, localstack.GetMediaFunction, "NXCLOUD_SECRET_ID="+name, "NXCLOUD_SECRET_TTL="+ttl.String())

	get := func() {
		t.Helper()
		id := addMedia(t, "ttl.pdf", "application/pdf")
		if r := invokeAPI(t, rt.Invoke, localstack.MediaEvent(http.MethodGet, mediaPath(id, "business_phone="+phone))); r.Status != http.StatusOK {
			t.Fatalf("GET = %s, want 200", r)
		}
	}
	start := time.Now()
	c0 := st.Secrets.Calls("GetSecretValue")
	get()
	get()
	get()
	if got := st.Secrets.Calls("GetSecretValue") - c0; got != 1 && time.Since(start) < ttl {
		t.Errorf("three invocations within the TTL fetched the secret %d times, want once", got)
	}
	time.Sleep(ttl + 200*time.Millisecond)
	c1 := st.Secrets.Calls("GetSecretValue")
	get()
	if got := st.Secrets.Calls("GetSecretValue") - c1; got != 1 {
		t.Errorf("after NXCLOUD_SECRET_TTL the secret was fetched %d times, want once", got)
	}
}
