package e2e_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localstack"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
)

// The upload sessions (POST /uploads, GET /uploads/{uploadId}) and the
// content redirect (GET /media/{mediaId}/content), through the built
// functions, the local HTTP API and MinIO.

const sessionWait = 30 * time.Second

// session is the 201 answer of POST /uploads.
type session struct {
	ID        string            `json:"upload_id"`
	URL       string            `json:"upload_url"`
	Method    string            `json:"method"`
	Headers   map[string]string `json:"headers"`
	ExpiresAt time.Time         `json:"expires_at"`
	Purpose   string            `json:"purpose"`
}

// sessionStatus is the 200 answer of GET /uploads/{uploadId}.
type sessionStatus struct {
	ID            string    `json:"upload_id"`
	Purpose       string    `json:"purpose"`
	Status        string    `json:"status"`
	FileName      string    `json:"file_name"`
	Type          string    `json:"type"`
	Size          int64     `json:"size"`
	BusinessPhone string    `json:"business_phone"`
	MediaID       string    `json:"media_id"`
	Error         string    `json:"error"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// sessionRequest sends a request with a body to the stack's HTTP API.
func sessionRequest(t *testing.T, method, path string, body []byte) apiResponse {
	t.Helper()
	return httpCall(t, method, st.APIURL+path, nil, body)
}

// newSessionBody is a POST /uploads body.
func newSessionBody(fileName, typ string, size int) []byte {
	b, _ := json.Marshal(map[string]any{"file_name": fileName, "type": typ, "size": size, "business_phone": phone})
	return b
}

// decodeJSON decodes a 2xx answer strictly.
func decodeJSON(t *testing.T, r apiResponse, status int, v any) {
	t.Helper()
	checkJSON(t, r)
	if r.Status != status {
		t.Fatalf("answer %s, want %d", r, status)
	}
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("answer %s: %v", r, err)
	}
}

// createSession makes a session through the HTTP API.
func createSession(t *testing.T, fileName, typ string, size int) session {
	t.Helper()
	var s session
	decodeJSON(t, sessionRequest(t, http.MethodPost, "/uploads", newSessionBody(fileName, typ, size)), http.StatusCreated, &s)
	return s
}

// putSessionFile sends body to the session's upload URL with headers, as a
// caller with curl does (Content-Length is the body's own); it returns the
// status S3 answered.
func putSessionFile(t *testing.T, s session, body []byte, headers map[string]string) int {
	t.Helper()
	return httpCall(t, s.Method, s.URL, headers, body).Status
}

// getStatus reads a session's status through the HTTP API.
func getStatus(t *testing.T, id string) sessionStatus {
	t.Helper()
	var s sessionStatus
	decodeJSON(t, sessionRequest(t, http.MethodGet, "/uploads/"+id, nil), http.StatusOK, &s)
	return s
}

// waitStatus polls a session until its status is not one of pending.
func waitStatus(t *testing.T, id string, pending ...string) sessionStatus {
	t.Helper()
	deadline := time.Now().Add(sessionWait)
	for {
		s := getStatus(t, id)
		if !contains(pending, s.Status) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s still %s after %s", id, s.Status, sessionWait)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// uploadCalls returns the verified uploadTemplateFile calls that carried
// content.
func uploadCalls(content []byte) []nxcloudtest.Call {
	var out []nxcloudtest.Call
	for _, c := range st.NXCloud.Calls(nxcloud.ActionUploadTemplateFile) {
		if c.Verified && c.FileSHA256 == sha256Hex(content) {
			out = append(out, c)
		}
	}
	return out
}

// sessionFile returns a PDF-looking file no other test sends.
func sessionFile(size int) []byte {
	b := []byte("%PDF-1.4 " + randomID(16) + " ")
	for len(b) < size {
		b = append(b, 'x')
	}
	return b[:size]
}

var hexID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestSessionFullFlow: a caller with no S3 rights uploads a file over HTTP
// and gets the media id NXCloud returned, then follows the content redirect
// to the very bytes it sent.
func TestSessionFullFlow(t *testing.T) {
	t.Parallel()
	file := sessionFile(4096)
	fileName := "menu card (été) " + randomID(4) + ".pdf"
	before := time.Now()
	s := createSession(t, fileName, "application/pdf", len(file))

	if !hexID.MatchString(s.ID) || s.Method != http.MethodPut {
		t.Errorf("upload_id %q (want 32 hex digits), method %q (want PUT)", s.ID, s.Method)
	}
	if d := s.ExpiresAt.Sub(before); d < 14*time.Minute || d > 16*time.Minute {
		t.Errorf("expires_at %v is %v from now, want UPLOAD_URL_TTL's default 15m", s.ExpiresAt, d)
	}
	u, err := url.Parse(s.URL)
	if err != nil || "http://"+u.Host != st.S3Endpoint || u.Query().Get("X-Amz-Signature") == "" {
		t.Fatalf("upload_url %s is not a presigned URL of the local S3 %s", s.URL, st.S3Endpoint)
	}
	wantHeaders := map[string]string{"Content-Type": "application/pdf", "Content-Length": "4096", "If-None-Match": "*", "X-Amz-Meta-Business-Phone": phone}
	if fmt.Sprint(s.Headers) != fmt.Sprint(wantHeaders) {
		t.Errorf("headers = %v, want %v", s.Headers, wantHeaders)
	}
	if got := getStatus(t, s.ID); got.Status != "awaiting_file" || got.FileName != fileName || got.Size != 4096 || got.BusinessPhone != phone {
		t.Errorf("status before the PUT = %+v, want awaiting_file with the announced file", got)
	}

	if code := putSessionFile(t, s, file, s.Headers); code != http.StatusOK {
		t.Fatalf("PUT with exactly the given headers = %d, want 200", code)
	}
	got := waitStatus(t, s.ID, "awaiting_file", "processing")
	calls := uploadCalls(file)
	if len(calls) != 1 {
		t.Fatalf("%d uploadTemplateFile calls sent the file, want exactly 1", len(calls))
	}
	c := calls[0]
	want := sessionStatus{ID: s.ID, Purpose: "template", Status: "uploaded", FileName: fileName, Type: "application/pdf", Size: 4096, BusinessPhone: phone,
		MediaID: c.MediaID, UpdatedAt: got.UpdatedAt}
	if got != want || c.MediaID == "" {
		t.Errorf("status = %+v\nwant     %+v (NXCloud's media id %q)", got, want, c.MediaID)
	}
	if c.FileName != fileName || c.FileType != "application/pdf" || c.Fields["business_phone"] != phone {
		t.Errorf("NXCloud got file %q of type %q for phone %q", c.FileName, c.FileType, c.Fields["business_phone"])
	}
	// The verdict is recorded before the object is tagged: the tags follow.
	key := st.Prefix + "uploads/" + s.ID + "/" + fileName
	if tags := waitForTag(t, testContext(t, sessionWait), key, "nxcloud-media-id", sessionWait); tags["nxcloud-media-id"] != c.MediaID {
		t.Errorf("the object %s is tagged %v, want nxcloud-media-id %s", key, tags, c.MediaID)
	}

	// The content route sends the caller to the file NXCloud holds.
	r := contentCall(t, got.MediaID)
	if r.Status != http.StatusFound || r.Header.Get("Location") != st.NXCloudURL+"/files/"+got.MediaID {
		t.Fatalf("content = %d Location %q, want 302 to NXCloud's url", r.Status, r.Header.Get("Location"))
	}
	if back := httpCall(t, http.MethodGet, r.Header.Get("Location"), nil, nil); back.Status != http.StatusOK || !bytes.Equal(back.Body, file) {
		t.Errorf("following the redirect: %d, %d bytes, want the %d bytes uploaded", back.Status, len(back.Body), len(file))
	}
}

// contentCall sends GET /media/{id}/content without following the redirect.
func contentCall(t *testing.T, id string) apiResponse {
	t.Helper()
	r := apiCall(t, http.MethodGet, "/media/"+url.PathEscape(id)+"/content?business_phone="+phone)
	checkJSON(t, r)
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	return r
}

// TestSessionPutRefused: S3 refuses a PUT of another type, other metadata or
// another size than announced; the session stays awaiting_file and nothing
// reaches NXCloud, and the announced file still goes through.
func TestSessionPutRefused(t *testing.T) {
	t.Parallel()
	file := sessionFile(1000)
	s := createSession(t, "refused-"+randomID(6)+".pdf", "application/pdf", len(file))
	with := func(changes map[string]string) map[string]string { // "" deletes a header
		h := maps.Clone(s.Headers)
		maps.Copy(h, changes)
		maps.DeleteFunc(h, func(_, v string) bool { return v == "" })
		return h
	}
	for _, tc := range []struct {
		name    string
		body    []byte
		headers map[string]string
	}{
		{"another Content-Type", file, with(map[string]string{"Content-Type": "image/png"})},
		{"another business-phone", file, with(map[string]string{"X-Amz-Meta-Business-Phone": defaultPhone})},
		{"other metadata", file, with(map[string]string{"X-Amz-Meta-Business-Phone-Override": defaultPhone})},
		{"no metadata", file, with(map[string]string{"X-Amz-Meta-Business-Phone": ""})},
		{"a larger file", sessionFile(1001), s.Headers},
		{"a smaller file", file[:999], s.Headers},
		{"an empty file", nil, s.Headers},
	} {
		if code := putSessionFile(t, s, tc.body, tc.headers); code < 400 {
			t.Errorf("%s: S3 answered %d, want a refusal", tc.name, code)
		}
	}
	if got := getStatus(t, s.ID); got.Status != "awaiting_file" {
		t.Errorf("status after refused PUTs = %s, want awaiting_file", got.Status)
	}
	if code := putSessionFile(t, s, file, s.Headers); code != http.StatusOK {
		t.Fatalf("the announced PUT = %d, want 200", code)
	}
	if got := waitStatus(t, s.ID, "awaiting_file", "processing"); got.Status != "uploaded" || got.Size != 1000 {
		t.Errorf("status = %+v, want uploaded with the announced 1000 bytes", got)
	}
	if code := putSessionFile(t, s, sessionFile(1000), s.Headers); code != http.StatusPreconditionFailed {
		t.Errorf("a second PUT to the session = %d, want 412: a session takes one file", code)
	}
	if n := len(uploadCalls(file)); n != 1 {
		t.Errorf("%d uploads of the file, want 1", n)
	}
}

// sessionEvent is the fixture events/create-upload.json (or get-upload.json
// for a GET) as API Gateway sends it for method and path, with body.
func sessionEvent(t *testing.T, method, path string, body []byte) []byte {
	t.Helper()
	var ev events.APIGatewayV2HTTPRequest
	fixture := "create-upload.json"
	if method == http.MethodGet {
		fixture = "get-upload.json"
	}
	if err := json.Unmarshal(readEvent(t, fixture), &ev); err != nil {
		t.Fatal(err)
	}
	ev.RawPath, ev.RequestContext.HTTP.Path, ev.RequestContext.HTTP.Method = path, path, method
	ev.Body = string(body)
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSessionValidationAndS3Requests: every validation rule answers 400
// without touching S3; a session costs one S3 request, a status at most
// three, an id that is not one of ours none.
func TestSessionValidationAndS3Requests(t *testing.T) {
	t.Parallel()
	s3c, err := st.CountS3()
	if err != nil {
		t.Fatal(err)
	}
	rt := mustRuntime(t, localstack.UploadSessionsFunction, "AWS_ENDPOINT_URL_S3="+s3c.URL)
	inv := func(method, path string, body []byte) apiResponse {
		t.Helper()
		return invokeAPI(t, rt.Invoke, sessionEvent(t, method, path, body))
	}
	valid := map[string]any{"file_name": "menu.pdf", "type": "application/pdf", "size": 2048, "business_phone": phone}
	body := func(change func(map[string]any)) []byte {
		m := map[string]any{}
		for k, v := range valid {
			m[k] = v
		}
		change(m)
		b, _ := json.Marshal(m)
		return b
	}
	for _, tc := range []struct {
		name, msg string
		body      []byte
	}{
		{"no file_name", "file_name is required", body(func(m map[string]any) { delete(m, "file_name") })},
		{"empty type", "type is required", body(func(m map[string]any) { m["type"] = "" })},
		{"no size", "size is required", body(func(m map[string]any) { delete(m, "size") })},
		{"type NXCloud does not accept", "not a type NXCloud takes for purpose template", body(func(m map[string]any) { m["type"] = "image/webp" })},
		{"unknown purpose", `purpose "video" is not one of`, body(func(m map[string]any) { m["purpose"] = "video" })},
		{"a sticker over 100 KB", "the largest sticker NXCloud takes", body(func(m map[string]any) { m["purpose"] = "message"; m["type"] = "image/webp"; m["size"] = 100<<10 + 1 })},
		{"a sha256 that is none", "is not a SHA-256", body(func(m map[string]any) { m["sha256"] = "0f0f" })},
		{"size 0", "out of range", body(func(m map[string]any) { m["size"] = 0 })},
		{"size over MAX_UPLOAD_BYTES", fmt.Sprintf("from 1 to %d", maxUploadBytes), body(func(m map[string]any) { m["size"] = maxUploadBytes + 1 })},
		{"bad phone", "not a merchant phone", body(func(m map[string]any) { m["business_phone"] = "+86 158" })},
		{"no phone, no default", "business_phone is required", body(func(m map[string]any) { delete(m, "business_phone") })},
		{"file_name over 255 bytes", "at most 255", body(func(m map[string]any) { m["file_name"] = strings.Repeat("a", 252) + ".pdf" })},
		{"file_name with /", `contains / or \`, body(func(m map[string]any) { m["file_name"] = "../../nxcloud-records/x.pdf" })},
		{"file_name with \\", `contains / or \`, body(func(m map[string]any) { m["file_name"] = `..\x.pdf` })},
		{"file_name with a control character", "control characters", body(func(m map[string]any) { m["file_name"] = "a\tb.pdf" })},
		{"not JSON", "not a JSON object", []byte("file_name=menu.pdf&size=1")},
		{"two JSON values", "more than one JSON value", append(body(func(map[string]any) {}), body(func(map[string]any) {})...)},
		{"an array", "not a JSON object", []byte(`[{"file_name":"a.pdf"}]`)},
		{"over 16 KiB", "larger than 16384 bytes", body(func(m map[string]any) { m["note"] = strings.Repeat("x", 16<<10) })},
	} {
		r := inv(http.MethodPost, "/uploads", tc.body)
		if msg := checkError(t, r, http.StatusBadRequest, nil); !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: message %q does not say %q", tc.name, msg, tc.msg)
		}
		if n, reqs := s3c.Take(); n != 0 {
			t.Errorf("%s: %d S3 requests %v for a refused request, want none", tc.name, n, reqs)
		}
	}

	var s session
	decodeJSON(t, inv(http.MethodPost, "/uploads", body(func(map[string]any) {})), http.StatusCreated, &s)
	if n, reqs := s3c.Take(); n != 1 {
		t.Errorf("POST /uploads made %d S3 requests %v, want 1", n, reqs)
	}
	status := func(id string, want int) (apiResponse, int) {
		t.Helper()
		r := inv(http.MethodGet, "/uploads/"+url.PathEscape(id), nil)
		if r.Status != want {
			t.Fatalf("GET /uploads/%s = %s, want %d", id, r, want)
		}
		n, reqs := s3c.Take()
		if n > 3 {
			t.Errorf("GET /uploads/%s made %d S3 requests %v, want at most 3", id, n, reqs)
		}
		return r, n
	}
	for _, id := range []string{"abc", strings.ToUpper(s.ID), s.ID + "0", "../" + s.ID[3:], "%00"} {
		r, n := status(id, http.StatusNotFound)
		checkError(t, r, http.StatusNotFound, nil)
		if n != 0 {
			t.Errorf("the malformed id %q cost %d S3 requests, want 0", id, n)
		}
	}
	if _, n := status(strings.Repeat("0", 32), http.StatusNotFound); n != 1 {
		t.Errorf("an unknown id cost %d S3 requests, want 1", n)
	}
	if _, n := status(s.ID, http.StatusOK); n != 3 {
		t.Errorf("awaiting_file cost %d S3 requests, want 3 (the document, the binding, the file's HEAD)", n)
	}
	file := sessionFile(2048)
	if code := putSessionFile(t, s, file, s.Headers); code != http.StatusOK {
		t.Fatalf("PUT through %s = %d", s3c.URL, code)
	}
	s3c.Take() // the caller's PUT, through the proxy the URL names
	deadline := time.Now().Add(sessionWait)
	for {
		r, n := status(s.ID, http.StatusOK)
		var got sessionStatus
		decodeJSON(t, r, http.StatusOK, &got)
		if got.Status == "uploaded" {
			if n != 3 {
				t.Errorf("uploaded cost %d S3 requests, want 3", n)
			}
			break
		}
		if got.Status != "processing" || time.Now().After(deadline) {
			t.Fatalf("status = %+v, want processing then uploaded", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSessionUnknownIDs: through the HTTP API, an id that is not a session's
// is a 404 with the error document.
func TestSessionUnknownIDs(t *testing.T) {
	t.Parallel()
	for _, id := range []string{strings.Repeat("ab", 16), "not-an-id", "%2e%2e%2f" + strings.Repeat("a", 23)} {
		msg := checkError(t, sessionRequest(t, http.MethodGet, "/uploads/"+id, nil), http.StatusNotFound, nil)
		if !strings.Contains(msg, "POST /uploads") {
			t.Errorf("404 message %q does not say how to get an upload_id", msg)
		}
	}
}

// TestSessionExpired: with no file past UPLOAD_URL_TTL the session reads
// expired, and S3 refuses the expired URL.
func TestSessionExpired(t *testing.T) {
	t.Parallel()
	rt := mustRuntime(t, localstack.UploadSessionsFunction, "UPLOAD_URL_TTL=1s")
	var s session
	decodeJSON(t, invokeAPI(t, rt.Invoke, sessionEvent(t, http.MethodPost, "/uploads", newSessionBody("late.pdf", "application/pdf", 10))), http.StatusCreated, &s)
	if d := time.Until(s.ExpiresAt); d > time.Second {
		t.Errorf("expires_at %v is %v away, want UPLOAD_URL_TTL=1s", s.ExpiresAt, d)
	}
	if got := getStatus(t, s.ID); got.Status != "awaiting_file" && got.Status != "expired" {
		t.Errorf("status = %s, want awaiting_file", got.Status)
	}
	time.Sleep(time.Until(s.ExpiresAt) + 1500*time.Millisecond)
	got := getStatus(t, s.ID)
	if got.Status != "expired" || !got.UpdatedAt.Equal(s.ExpiresAt) {
		t.Errorf("status = %+v, want expired since %v", got, s.ExpiresAt)
	}
	if code := putSessionFile(t, s, sessionFile(10), s.Headers); code != http.StatusForbidden {
		t.Errorf("PUT to the expired URL = %d, want 403", code)
	}
}

// TestSessionRejected: a file NXCloud refuses ends rejected, and the status
// carries the reason (serial: it injects NXCloud's 9002 into the upload).
func TestSessionRejected(t *testing.T) {
	serial(t, nxcloud.ActionUploadTemplateFile)
	file := sessionFile(512)
	s := createSession(t, "rejected-"+randomID(6)+".pdf", "application/pdf", len(file))
	st.NXCloud.Inject(nxcloud.ActionUploadTemplateFile, nxcloudtest.Fault{Code: 9002})
	if code := putSessionFile(t, s, file, s.Headers); code != http.StatusOK {
		t.Fatalf("PUT = %d", code)
	}
	got := waitStatus(t, s.ID, "awaiting_file", "processing")
	if got.Status != "rejected" || !strings.Contains(got.Error, "9002") || got.MediaID != "" {
		t.Errorf("status = %+v, want rejected with NXCloud's 9002 as the reason", got)
	}
}

// TestSessionContentFetchedAfresh: each GET /media/{mediaId}/content calls
// getMedia and redirects to the url of that answer; an NXCloud error maps as
// for GET (serial: it injects getMedia answers).
func TestSessionContentFetchedAfresh(t *testing.T) {
	serial(t, nxcloud.ActionGetMedia)
	id := addMedia(t, "content.pdf", "application/pdf")
	n := len(st.NXCloud.Calls(nxcloud.ActionGetMedia))
	for i := range 2 {
		signed := fmt.Sprintf("https://cdn.example/%s?Expires=%d&Signature=s%d", url.PathEscape(id), time.Now().Unix()+60, i)
		data, _ := json.Marshal(map[string]string{"mime_type": "application/pdf", "file_name": "content.pdf", "url": signed})
		st.NXCloud.Inject(nxcloud.ActionGetMedia, nxcloudtest.Fault{Body: `{"code":0,"message":"Request successful","data":` + string(data) + `}`})
		r := contentCall(t, id)
		if r.Status != http.StatusFound || r.Header.Get("Location") != signed {
			t.Errorf("request %d: %d Location %q, want 302 to %s", i, r.Status, r.Header.Get("Location"), signed)
		}
	}
	if calls := callsSince(nxcloud.ActionGetMedia, n); len(calls) != 2 {
		t.Errorf("%d getMedia calls for 2 content requests, want 2", len(calls))
	}
	st.NXCloud.Inject(nxcloud.ActionGetMedia, nxcloudtest.Fault{Code: 9006})
	if msg := checkError(t, contentCall(t, id), http.StatusUnprocessableEntity, intp(9006)); !strings.Contains(msg, "not bound") {
		t.Errorf("9006 message %q", msg)
	}
}

// TestSessionsWithoutSecret: the upload sessions read no secret: without
// NXCLOUD_SECRET_ID, and no Secrets Manager, POST /uploads answers 201.
func TestSessionsWithoutSecret(t *testing.T) {
	t.Parallel()
	rt := mustRuntime(t, localstack.UploadSessionsFunction, "-NXCLOUD_SECRET_ID", "AWS_ENDPOINT_URL_SECRETS_MANAGER=http://127.0.0.1:1")
	r := invokeAPI(t, rt.Invoke, sessionEvent(t, http.MethodPost, "/uploads", newSessionBody("nosecret.pdf", "image/png", 1)))
	if r.Status != http.StatusCreated {
		t.Errorf("POST /uploads without a secret = %s, want 201", r)
	}
}

// TestSessionDemo: make demo's walk-through (a message session with its
// checksum, PUT, poll, get, content, archive, delete) runs against the
// stack, to a message media id.
func TestSessionDemo(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := localstack.Demo(testContext(t, time.Minute), st, &out, phone); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "\ndone") || !strings.Contains(out.String(), `"purpose":"message"`) ||
		!regexp.MustCompile(`"media_id":"[0-9a-f]{8}-[0-9a-f]{4}-`).MatchString(out.String()) {
		t.Errorf("the demo did not walk a message media file to its id:\n%s", out.String())
	}
	fmt.Fprintf(output, "e2e demo | %s\n", out.String())
}

// createMessageSession makes a message session for file, its SHA-256 given
// in the base64 form `openssl dgst -sha256 -binary | base64` prints.
func createMessageSession(t *testing.T, fileName, typ string, file []byte) session {
	t.Helper()
	sum := sha256.Sum256(file)
	body, _ := json.Marshal(map[string]any{"file_name": fileName, "type": typ, "size": len(file), "business_phone": phone,
		"purpose": "message", "sha256": base64.StdEncoding.EncodeToString(sum[:])})
	var s session
	decodeJSON(t, sessionRequest(t, http.MethodPost, "/uploads", body), http.StatusCreated, &s)
	return s
}

// TestSessionMessageMedia: a session with purpose message and the file's
// SHA-256 puts the file under MEDIA_PREFIX with its checksum bound: S3
// refuses other bytes; the file becomes a message media id (uploadMedia),
// which GET /media/{id}, /content and DELETE serve.
func TestSessionMessageMedia(t *testing.T) {
	t.Parallel()
	photo := append([]byte("\xff\xd8\xff\xe0 session photo "), randomID(32)...)
	s := createMessageSession(t, "photo-"+randomID(4)+".jpg", "image/jpeg", photo)
	if s.Purpose != "message" || !strings.HasPrefix(s.ID, "m") || !strings.Contains(s.URL, "/"+st.MediaPrefix+"uploads/"+s.ID+"/") {
		t.Fatalf("session = %+v; want a message session under %suploads/", s, st.MediaPrefix)
	}
	sum := sha256.Sum256(photo)
	if s.Headers["X-Amz-Checksum-Sha256"] != base64.StdEncoding.EncodeToString(sum[:]) {
		t.Errorf("headers = %v; want the checksum among them", s.Headers)
	}
	other := bytes.Clone(photo)
	other[0] ^= 1
	if code := putSessionFile(t, s, other, s.Headers); code != http.StatusBadRequest {
		t.Errorf("PUT of other bytes of the same length = %d; want S3's 400 (checksum mismatch)", code)
	}
	if got := getStatus(t, s.ID); got.Status != "awaiting_file" || got.Purpose != "message" {
		t.Errorf("status after the refused PUT = %+v; want a message session awaiting its file", got)
	}
	if code := putSessionFile(t, s, photo, s.Headers); code != http.StatusOK {
		t.Fatalf("PUT = %d", code)
	}
	got := waitStatus(t, s.ID, "awaiting_file", "processing")
	if got.Status != "uploaded" || !uuidRE.MatchString(got.MediaID) {
		t.Fatalf("status = %+v; want uploaded with a message media id", got)
	}
	if m, ok := st.NXCloud.Media(got.MediaID); !ok || m.Action != nxcloud.ActionUploadMedia || m.SHA256 != sha256Hex(photo) {
		t.Errorf("NXCloud has %+v; want the photo, sent with uploadMedia", m)
	}
	if r := apiCall(t, http.MethodGet, "/media/"+got.MediaID+"?business_phone="+phone); r.Status != http.StatusOK {
		t.Errorf("GET /media/%s = %s", got.MediaID, r)
	}
	r := contentCall(t, got.MediaID)
	if back := httpCall(t, http.MethodGet, r.Header.Get("Location"), nil, nil); !bytes.Equal(back.Body, photo) {
		t.Errorf("the content route led to %d bytes; want the photo's %d", len(back.Body), len(photo))
	}
	if r := apiCall(t, http.MethodDelete, "/media/"+got.MediaID+"?business_phone="+phone); r.Status != http.StatusOK {
		t.Errorf("DELETE /media/%s = %s", got.MediaID, r)
	}
}

// TestSessionIsOneFile: after the session's file was uploaded and deleted
// (a lifecycle rule, say), the URL takes a second PUT (the key has no
// current object, so If-None-Match passes), but the second file is rejected
// as "upload session already used", never sent, and the status keeps the
// first file's outcome and id.
func TestSessionIsOneFile(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	file := sessionFile(600)
	name := "once-" + randomID(6) + ".pdf"
	s := createSession(t, name, "application/pdf", len(file))
	if code := putSessionFile(t, s, file, s.Headers); code != http.StatusOK {
		t.Fatalf("PUT = %d", code)
	}
	first := waitStatus(t, s.ID, "awaiting_file", "processing")
	if first.Status != "uploaded" {
		t.Fatalf("status = %+v; want uploaded", first)
	}
	key := st.Prefix + "uploads/" + s.ID + "/" + name
	if _, err := st.S3Client().DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(st.Bucket), Key: aws.String(key)}); err != nil {
		t.Fatal(err)
	}
	second := sessionFile(600)
	if code := putSessionFile(t, s, second, s.Headers); code != http.StatusOK {
		t.Fatalf("the second PUT = %d; S3 takes it (the key has no current object)", code)
	}
	tags := waitTags(t, ctx, key)
	if tags["nxcloud-status"] != "rejected" || !strings.Contains(tags["nxcloud-error"], "session already used") {
		t.Errorf("the second file's tags = %v; want rejected: upload session already used", tags)
	}
	if n := len(uploadCalls(second)); n != 0 {
		t.Errorf("the second file was sent %d times", n)
	}
	if got := getStatus(t, s.ID); got.Status != "uploaded" || got.MediaID != first.MediaID {
		t.Errorf("status = %+v; want the first file's outcome, %s", got, first.MediaID)
	}
}

// TestSessionWrongLength: a session announced 44 bytes, and the caller sends
// a 45-byte file with exactly the answered headers (Content-Length 44, as
// curl -H does): S3 reads 44 bytes. With the file's SHA-256 in the session,
// S3 refuses them and nothing is stored or sent; without it, S3 stores 44
// bytes (the README says to send the checksum).
func TestSessionWrongLength(t *testing.T) {
	t.Parallel()
	file := sessionFile(45)
	sum := sha256.Sum256(file)
	body, _ := json.Marshal(map[string]any{"file_name": "len-" + randomID(6) + ".pdf", "type": "application/pdf", "size": 44,
		"business_phone": phone, "sha256": hex.EncodeToString(sum[:])})
	var s session
	decodeJSON(t, sessionRequest(t, http.MethodPost, "/uploads", body), http.StatusCreated, &s)
	if code := rawPut(t, s, file); code != http.StatusBadRequest {
		t.Errorf("45 bytes under a Content-Length of 44 = %d; want S3's 400 checksum mismatch", code)
	}
	if got := getStatus(t, s.ID); got.Status != "awaiting_file" {
		t.Errorf("status = %s; want awaiting_file: nothing was stored", got.Status)
	}
}

// rawPut writes the session's PUT by hand: its headers as given (the
// Content-Length among them), then body, whatever its length.
func rawPut(t *testing.T, s session, body []byte) int {
	t.Helper()
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var req strings.Builder
	fmt.Fprintf(&req, "PUT %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", u.RequestURI(), u.Host)
	for k, v := range s.Headers {
		fmt.Fprintf(&req, "%s: %s\r\n", k, v)
	}
	req.WriteString("\r\n")
	if _, err := conn.Write(append([]byte(req.String()), body...)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading S3's answer: %v", err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}
