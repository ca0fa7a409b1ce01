package nxcloudtest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
)

const phone = "8615812341795"

var fixedNow = time.UnixMilli(1700000000123)

// request is a hand-built call; the zero value of each field means "the
// correct value".
type request struct {
	method, action, path string
	body                 []byte
	contentType          string
	ts                   string
	sign                 string // "" computes it
	signBody             []byte // what to sign instead of body, if set
	alg                  string
	drop                 []string // headers to leave out
	set                  map[string]string
	cred                 nxcloud.Credentials
	multipart            bool
	chunked              bool
}

func jsonBody(phone, id string) []byte {
	return []byte(`{"business_phone":"` + phone + `","messaging_product":"whatsapp","Media-ID":"` + id + `"}`)
}

func (rq request) do(t *testing.T, srv *nxcloudtest.Server) (int, map[string]any) {
	t.Helper()
	if rq.method == "" {
		rq.method = http.MethodPost
	}
	if rq.action == "" {
		rq.action = nxcloud.ActionGetMedia
	}
	if rq.path == "" {
		rq.path = "/api/wa/" + rq.action
	}
	if rq.cred == (nxcloud.Credentials{}) {
		rq.cred = srv.Credentials()
	}
	if rq.ts == "" {
		rq.ts = nxcloud.Timestamp(fixedNow)
	}
	if rq.contentType == "" && !rq.multipart {
		rq.contentType = "application/json"
	}
	var body io.Reader = bytes.NewReader(rq.body)
	if rq.chunked {
		body = io.MultiReader(bytes.NewReader(rq.body)) // unknown length: chunked
	}
	req, err := http.NewRequest(rq.method, srv.URL()+rq.path, body)
	if err != nil {
		t.Fatal(err)
	}
	alg := nxcloud.MD5
	if rq.alg == "sha256" {
		alg = nxcloud.SHA256
	}
	signed := rq.body
	if rq.signBody != nil {
		signed = rq.signBody
	}
	if rq.multipart {
		signed = nil
	}
	if rq.sign == "" {
		rq.sign = nxcloud.Sign(alg, rq.cred, rq.action, rq.ts, signed)
	}
	h := map[string]string{"accessKey": rq.cred.AccessKey, "ts": rq.ts, "bizType": "2", "action": rq.action, "sign": rq.sign, "Content-Type": rq.contentType}
	if rq.alg != "" {
		h["algorithm"] = rq.alg
	}
	for k, v := range rq.set {
		h[k] = v
	}
	for _, k := range rq.drop {
		delete(h, k)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("answer %q is not JSON: %v", raw, err)
		}
	}
	return resp.StatusCode, out
}

func code(t *testing.T, ans map[string]any) int {
	t.Helper()
	c, ok := ans["code"].(float64)
	if !ok {
		t.Fatalf("answer %v has no code", ans)
	}
	return int(c)
}

func multipartBody(t *testing.T, fields map[string]string, fileName, fileType string, content []byte) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, k := range []string{"messaging_product", "business_phone", "type"} {
		if v, ok := fields[k]; ok {
			_ = mw.WriteField(k, v)
		}
	}
	if content != nil {
		h := make(map[string][]string)
		h["Content-Disposition"] = []string{`form-data; name="file"; filename="` + fileName + `"`}
		h["Content-Type"] = []string{fileType}
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(content)
	}
	_ = mw.Close()
	return buf.Bytes(), mw.FormDataContentType()
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	srv := nxcloudtest.NewTestServer(t, nxcloudtest.WithClock(func() time.Time { return fixedNow }))
	id := srv.AddMedia(nxcloudtest.Media{MimeType: "image/png", FileName: "a.png"})
	body := jsonBody(phone, id)
	tests := []struct {
		name string
		rq   request
		want int
	}{
		{"valid md5", request{body: body}, 0},
		{"valid sha256", request{body: body, alg: "sha256"}, 0},
		{"explicit md5", request{body: body, alg: "md5"}, 0},
		{"missing accessKey", request{body: body, drop: []string{"accessKey"}}, nxcloudtest.CodeMissingHeader},
		{"missing ts", request{body: body, drop: []string{"ts"}}, nxcloudtest.CodeMissingHeader},
		{"missing bizType", request{body: body, drop: []string{"bizType"}}, nxcloudtest.CodeMissingHeader},
		{"missing action", request{body: body, drop: []string{"action"}}, nxcloudtest.CodeMissingHeader},
		{"missing sign", request{body: body, drop: []string{"sign"}}, nxcloudtest.CodeMissingHeader},
		{"bizType 1", request{body: body, set: map[string]string{"bizType": "1"}}, nxcloudtest.CodeBadHeader},
		{"action mismatch", request{body: body, path: "/api/wa/deleteMedia"}, nxcloudtest.CodeBadHeader},
		{"algorithm sha1", request{body: body, alg: "sha1", sign: strings.Repeat("0", 40)}, nxcloudtest.CodeBadHeader},
		{"unknown accessKey", request{body: body, cred: nxcloud.Credentials{AccessKey: "other", AccessSecret: nxcloudtest.DefaultAccessSecret}}, nxcloudtest.CodeUnknownAccessKey},
		{"wrong secret", request{body: body, cred: nxcloud.Credentials{AccessKey: nxcloudtest.DefaultAccessKey, AccessSecret: "wrong"}}, nxcloudtest.CodeBadSignature},
		{"uppercase sign", request{body: body, sign: strings.ToUpper(nxcloud.Sign(nxcloud.MD5, srv.Credentials(), "getMedia", nxcloud.Timestamp(fixedNow), body))}, nxcloudtest.CodeBadSignature},
		{"sha256 sign announced as md5", request{body: body, sign: nxcloud.Sign(nxcloud.SHA256, srv.Credentials(), "getMedia", nxcloud.Timestamp(fixedNow), body)}, nxcloudtest.CodeBadSignature},
		{"body signed differently than sent", request{body: []byte(`{"business_phone": "` + phone + `","messaging_product":"whatsapp","Media-ID":"` + id + `"}`), signBody: body}, nxcloudtest.CodeBadSignature},
		{"body not signed", request{body: body, signBody: []byte{}}, nxcloudtest.CodeBadSignature},
		{"ts 12 digits", request{body: body, ts: "170000000012"}, nxcloudtest.CodeTimestampOutOfRange},
		{"ts seconds", request{body: body, ts: "1700000000"}, nxcloudtest.CodeTimestampOutOfRange},
		{"ts 61s old", request{body: body, ts: nxcloud.Timestamp(fixedNow.Add(-61 * time.Second))}, nxcloudtest.CodeTimestampOutOfRange},
		{"ts 61s ahead", request{body: body, ts: nxcloud.Timestamp(fixedNow.Add(61 * time.Second))}, nxcloudtest.CodeTimestampOutOfRange},
		{"ts 60s old", request{body: body, ts: nxcloud.Timestamp(fixedNow.Add(-60 * time.Second))}, 0},
		{"ts 59s ahead", request{body: body, ts: nxcloud.Timestamp(fixedNow.Add(59 * time.Second))}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			status, ans := tc.rq.do(t, srv)
			if status != http.StatusOK {
				t.Fatalf("HTTP %d, want 200 (NXCloud answers codes with 200)", status)
			}
			if got := code(t, ans); got != tc.want {
				t.Errorf("code %d (%v), want %d", got, ans["message"], tc.want)
			}
			if tc.want != 0 && ans["data"] != nil {
				t.Errorf("failure data = %v, want null", ans["data"])
			}
		})
	}
}

func TestJSONParameters(t *testing.T) {
	t.Parallel()
	srv := nxcloudtest.NewTestServer(t,
		nxcloudtest.WithClock(func() time.Time { return fixedNow }),
		nxcloudtest.WithNotWhatsAppPhones("111111"), nxcloudtest.WithUnboundPhones("222222"))
	id := srv.AddMedia(nxcloudtest.Media{MimeType: "image/png", FileName: "a.png"})
	tests := []struct {
		name string
		rq   request
		want int
	}{
		{"ok", request{body: jsonBody(phone, id)}, 0},
		{"content type with charset", request{body: jsonBody(phone, id), contentType: "application/json; charset=utf-8"}, 0},
		{"text/plain", request{body: jsonBody(phone, id), contentType: "text/plain"}, 9000},
		{"not an object", request{body: []byte(`["x"]`)}, 9000},
		{"not JSON", request{body: []byte(`business_phone=1`)}, 9000},
		{"empty body", request{body: nil}, 9000},
		{"missing phone", request{body: []byte(`{"messaging_product":"whatsapp","Media-ID":"` + id + `"}`)}, 9000},
		{"phone not a string", request{body: []byte(`{"business_phone":8615812341795,"messaging_product":"whatsapp","Media-ID":"` + id + `"}`)}, 9000},
		{"wrong product", request{body: []byte(`{"business_phone":"` + phone + `","messaging_product":"sms","Media-ID":"` + id + `"}`)}, 9000},
		{"missing product", request{body: []byte(`{"business_phone":"` + phone + `","Media-ID":"` + id + `"}`)}, 9000},
		{"media-id lowercase key", request{body: []byte(`{"business_phone":"` + phone + `","messaging_product":"whatsapp","media-id":"` + id + `"}`)}, 9000},
		{"Media_ID underscore key", request{body: []byte(`{"business_phone":"` + phone + `","messaging_product":"whatsapp","Media_ID":"` + id + `"}`)}, 9000},
		{"unknown media", request{body: jsonBody(phone, "nope")}, 9000},
		{"phone letters", request{body: jsonBody("86abc", id)}, 9002},
		{"phone too short", request{body: jsonBody("1234", id)}, 9002},
		{"phone not whatsapp", request{body: jsonBody("111111", id)}, 9002},
		{"phone not bound", request{body: jsonBody("222222", id)}, 9006},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, ans := tc.rq.do(t, srv)
			if got := code(t, ans); got != tc.want {
				t.Errorf("code %d (%v), want %d", got, ans["message"], tc.want)
			}
		})
	}
}

func TestKnownPhones(t *testing.T) {
	t.Parallel()
	srv := nxcloudtest.NewTestServer(t, nxcloudtest.WithClock(func() time.Time { return fixedNow }), nxcloudtest.WithKnownPhones(phone))
	id := srv.AddMedia(nxcloudtest.Media{MimeType: "image/png", FileName: "a.png"})
	if _, ans := (request{body: jsonBody(phone, id)}).do(t, srv); code(t, ans) != 0 {
		t.Errorf("known phone: %v", ans)
	}
	if _, ans := (request{body: jsonBody("4915112345678", id)}).do(t, srv); code(t, ans) != 9002 {
		t.Errorf("unknown phone: %v, want 9002", ans)
	}
}

func TestAnswerShapes(t *testing.T) {
	t.Parallel()
	srv := nxcloudtest.NewTestServer(t, nxcloudtest.WithClock(func() time.Time { return fixedNow }))
	id := srv.AddMedia(nxcloudtest.Media{MimeType: "image/png", FileName: "a.png"})
	get := func(body []byte) string {
		req, _ := http.NewRequest(http.MethodPost, srv.URL()+"/api/wa/getMedia", bytes.NewReader(body))
		ts := nxcloud.Timestamp(fixedNow)
		for k, v := range map[string]string{"accessKey": nxcloudtest.DefaultAccessKey, "ts": ts, "bizType": "2", "action": "getMedia",
			"sign": nxcloud.Sign(nxcloud.MD5, srv.Credentials(), "getMedia", ts, body), "Content-Type": "application/json"} {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return string(raw)
	}
	ok := get(jsonBody(phone, id))
	wantOK := `{"code":0,"data":{"mime_type":"image/png","file_name":"a.png","url":"` + srv.URL() + `/files/` + id + `"},"message":"Request successful"}`
	if ok != wantOK {
		t.Errorf("success answer\n got %s\nwant %s", ok, wantOK)
	}
	if bad := get(jsonBody(phone, "nope")); bad != `{"code":9000,"message":"Parameter exception: media not found","data":null}` {
		t.Errorf("failure answer %s", bad)
	}
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	srv := nxcloudtest.NewTestServer(t)
	tests := []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/api/wa/getMedia", http.StatusMethodNotAllowed},
		{http.MethodPut, "/api/wa/uploadTemplateFile", http.StatusMethodNotAllowed},
		{http.MethodGet, "/api/wa/uploadMedia", http.StatusMethodNotAllowed},
		{http.MethodPost, "/api/wa/sendMessage", http.StatusNotFound},
		{http.MethodPost, "/getMedia", http.StatusNotFound},
		{http.MethodGet, "/files/unknown", http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequest(tc.method, srv.URL()+tc.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("HTTP %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// The two upload endpoints take the same request and differ in the table of
// types and sizes they accept and in the ids they answer.
func TestUploadEndpoint(t *testing.T) {
	t.Parallel()
	srv := nxcloudtest.NewTestServer(t, nxcloudtest.WithClock(func() time.Time { return fixedNow }), nxcloudtest.WithKeepContent(true))
	content := []byte("%PDF-1.4 hello")
	good := map[string]string{"messaging_product": "whatsapp", "business_phone": phone, "type": "application/pdf"}
	with := func(k, v string) map[string]string {
		m := maps.Clone(good)
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	sticker := bytes.Repeat([]byte("w"), 100<<10)
	tests := []struct {
		name          string
		fields        map[string]string
		content       []byte
		mutate        func(*request)
		template, msg int // the code each endpoint answers
	}{
		{"ok", good, content, nil, 0, 0},
		{"chunked", good, content, func(r *request) { r.chunked = true }, 9000, 9000},
		{"json content type", good, content, func(r *request) { r.contentType = "application/json" }, 9000, 9000},
		{"signed with body", good, content, func(r *request) {
			r.sign = nxcloud.Sign(nxcloud.MD5, r.cred, r.action, nxcloud.Timestamp(fixedNow), r.body)
		}, nxcloudtest.CodeBadSignature, nxcloudtest.CodeBadSignature},
		{"action header of the other upload", good, content, func(r *request) {
			other := map[string]string{nxcloud.ActionUploadMedia: nxcloud.ActionUploadTemplateFile, nxcloud.ActionUploadTemplateFile: nxcloud.ActionUploadMedia}[r.action]
			r.path = "/api/wa/" + r.action
			r.action = other
		}, nxcloudtest.CodeBadHeader, nxcloudtest.CodeBadHeader},
		{"missing product", with("messaging_product", ""), content, nil, 9000, 9000},
		{"wrong product", with("messaging_product", "sms"), content, nil, 9000, 9000},
		{"missing phone", with("business_phone", ""), content, nil, 9000, 9000},
		{"missing type", with("type", ""), content, nil, 9000, 9000},
		{"gif type", with("type", "image/gif"), content, nil, 9000, 9000},
		{"image/jpg: template only", with("type", "image/jpg"), content, nil, 0, 9000},
		{"audio/mpeg: message only", with("type", "audio/mpeg"), content, nil, 9000, 0},
		{"docx: message only", with("type", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"), content, nil, 9000, 0},
		{"video/3gp: message only", with("type", "video/3gp"), content, nil, 9000, 0},
		{"video/3gpp: an alias is not sent", with("type", "video/3gpp"), content, nil, 9000, 9000},
		{"upper-case type", with("type", "APPLICATION/PDF"), content, nil, 9000, 9000},
		{"type with parameters", with("type", "text/plain; charset=utf-8"), content, nil, 9000, 9000},
		{"sticker of 100 KB", with("type", "image/webp"), sticker, nil, 9000, 0},
		{"sticker over 100 KB", with("type", "image/webp"), append(sticker, 'w'), nil, 9000, 9000},
		{"no file", good, nil, nil, 9000, 9000},
		{"empty file", good, []byte{}, nil, 9000, 9000},
		{"bad phone", with("business_phone", "abc"), content, nil, 9002, 9002},
	}
	for _, action := range []string{nxcloud.ActionUploadTemplateFile, nxcloud.ActionUploadMedia} {
		for _, tc := range tests {
			t.Run(action+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				want := tc.template
				if action == nxcloud.ActionUploadMedia {
					want = tc.msg
				}
				body, ct := multipartBody(t, tc.fields, "doc.pdf", "application/pdf", tc.content)
				rq := request{action: action, body: body, contentType: ct, multipart: true, cred: srv.Credentials()}
				if tc.mutate != nil {
					tc.mutate(&rq)
				}
				_, ans := rq.do(t, srv)
				if got := code(t, ans); got != want {
					t.Fatalf("code %d (%v), want %d", got, ans["message"], want)
				}
				if want != 0 {
					return
				}
				id, _ := ans["data"].(map[string]any)["id"].(string)
				if action == nxcloud.ActionUploadMedia && !uuidRE.MatchString(id) || action == nxcloud.ActionUploadTemplateFile && !strings.HasPrefix(id, "4:") {
					t.Errorf("%s answered id %q: want a UUID from uploadMedia, a 4: handle from uploadTemplateFile", action, id)
				}
				m, ok := srv.Media(id)
				if !ok || m.Action != action || m.Size != int64(len(tc.content)) || !bytes.Equal(m.Content, tc.content) || m.FileName != "doc.pdf" || m.MimeType != tc.fields["type"] {
					t.Errorf("stored %+v", m)
				}
				resp, err := http.Get(srv.URL() + "/files/" + id)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				got, _ := io.ReadAll(resp.Body)
				if !bytes.Equal(got, tc.content) || resp.Header.Get("Content-Type") != tc.fields["type"] {
					t.Errorf("download = %d bytes (%s)", len(got), resp.Header.Get("Content-Type"))
				}
			})
		}
	}
}

// An uploadMedia id is served by getMedia, its url serves the bytes, and
// deleteMedia removes it; Calls and Inject keep the actions apart.
func TestUploadMediaLifecycle(t *testing.T) {
	t.Parallel()
	srv := nxcloudtest.NewTestServer(t, nxcloudtest.WithClock(func() time.Time { return fixedNow }), nxcloudtest.WithKeepContent(true))
	content := []byte("\x89PNG photo")
	body, ct := multipartBody(t, map[string]string{"messaging_product": "whatsapp", "business_phone": phone, "type": "image/png"}, "photo.png", "image/png", content)
	upload := request{action: nxcloud.ActionUploadMedia, body: body, contentType: ct, multipart: true}

	srv.Inject(nxcloud.ActionUploadMedia, nxcloudtest.Fault{Code: 9001})
	if _, ans := upload.do(t, srv); code(t, ans) != 9001 {
		t.Fatalf("injected uploadMedia fault: %v, want 9001", ans)
	}
	_, ans := upload.do(t, srv)
	if code(t, ans) != 0 {
		t.Fatalf("uploadMedia: %v", ans)
	}
	id, _ := ans["data"].(map[string]any)["id"].(string)
	if n, all := len(srv.Calls(nxcloud.ActionUploadMedia)), len(srv.Calls("")); n != 2 || all != 2 {
		t.Errorf("Calls(uploadMedia) = %d of %d calls, want 2 of 2", n, all)
	}
	if calls := srv.Calls(nxcloud.ActionUploadMedia); calls[0].Fault == nil || calls[1].Fault != nil || calls[1].MediaID != id || calls[1].FileSize != int64(len(content)) {
		t.Errorf("calls %+v", calls)
	}
	if ups := srv.Uploads(); len(ups) != 1 || ups[0].ID != id || ups[0].Action != nxcloud.ActionUploadMedia {
		t.Errorf("Uploads() = %+v", ups)
	}

	_, got := (request{body: jsonBody(phone, id)}).do(t, srv)
	data, _ := got["data"].(map[string]any)
	if code(t, got) != 0 || data["mime_type"] != "image/png" || data["file_name"] != "photo.png" {
		t.Fatalf("getMedia = %v", got)
	}
	resp, err := http.Get(data["url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(served, content) {
		t.Errorf("url served %q, want %q", served, content)
	}
	if _, got := (request{action: nxcloud.ActionDeleteMedia, body: jsonBody(phone, id)}).do(t, srv); code(t, got) != 0 {
		t.Fatalf("deleteMedia = %v", got)
	}
	if _, got := (request{body: jsonBody(phone, id)}).do(t, srv); code(t, got) != 9000 {
		t.Errorf("getMedia after deleteMedia = %v, want 9000", got)
	}
	resp, err = http.Get(data["url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("url after deleteMedia: HTTP %d, want 404", resp.StatusCode)
	}
}

func TestRotation(t *testing.T) {
	t.Parallel()
	srv := nxcloudtest.NewTestServer(t, nxcloudtest.WithClock(func() time.Time { return fixedNow }), nxcloudtest.WithCredentials("k1", "s1"))
	id := srv.AddMedia(nxcloudtest.Media{MimeType: "image/png", FileName: "a.png"})
	old := nxcloud.Credentials{AccessKey: "k1", AccessSecret: "s1"}
	if _, ans := (request{body: jsonBody(phone, id), cred: old}).do(t, srv); code(t, ans) != 0 {
		t.Fatalf("before rotation: %v", ans)
	}
	srv.SetCredentials("k2", "s2")
	if _, ans := (request{body: jsonBody(phone, id), cred: old}).do(t, srv); code(t, ans) != nxcloudtest.CodeUnknownAccessKey {
		t.Errorf("old credentials after rotation: %v, want 1001", ans)
	}
	if _, ans := (request{body: jsonBody(phone, id), cred: nxcloud.Credentials{AccessKey: "k2", AccessSecret: "s2"}}).do(t, srv); code(t, ans) != 0 {
		t.Errorf("new credentials: %v", ans)
	}
}

func TestInjectQueue(t *testing.T) {
	t.Parallel()
	srv := nxcloudtest.NewTestServer(t, nxcloudtest.WithClock(func() time.Time { return fixedNow }))
	id := srv.AddMedia(nxcloudtest.Media{MimeType: "image/png", FileName: "a.png"})
	srv.Inject(nxcloud.ActionGetMedia, nxcloudtest.Fault{Code: 9001, Times: 2})
	srv.Inject(nxcloud.ActionGetMedia, nxcloudtest.Fault{Code: -1})
	srv.Inject(nxcloud.ActionDeleteMedia, nxcloudtest.Fault{Code: 9002})
	var got []int
	for range 4 {
		_, ans := (request{body: jsonBody(phone, id)}).do(t, srv)
		got = append(got, code(t, ans))
	}
	if want := []int{9001, 9001, -1, 0}; !equal(got, want) {
		t.Errorf("codes %v, want %v", got, want)
	}
	calls := srv.Calls(nxcloud.ActionGetMedia)
	if len(calls) != 4 || calls[0].Fault == nil || calls[3].Fault != nil || !calls[3].Verified {
		t.Errorf("calls %+v", calls)
	}
	if len(srv.Calls(nxcloud.ActionDeleteMedia)) != 0 || len(srv.Calls("")) != 4 {
		t.Errorf("Calls filters by action")
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFaultKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		fault      nxcloudtest.Fault
		wantStatus int
		wantBody   string
		wantErr    bool
	}{
		{"raw body", nxcloudtest.Fault{HTTPStatus: 502, Body: "<html>bad gateway</html>"}, 502, "<html>bad gateway</html>", false},
		{"status only", nxcloudtest.Fault{HTTPStatus: 503}, 503, "Service Unavailable", false},
		{"code", nxcloudtest.Fault{Code: 9006}, 200, `{"code":9006,"message":"WhatsApp number not bound to the application","data":null}`, false},
		{"drop", nxcloudtest.Fault{DropConnection: true}, 0, "", true},
		{"delay then normal", nxcloudtest.Fault{Delay: 30 * time.Millisecond}, 200, `{"code":0,`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := nxcloudtest.NewTestServer(t, nxcloudtest.WithClock(func() time.Time { return fixedNow }))
			id := srv.AddMedia(nxcloudtest.Media{MimeType: "image/png", FileName: "a.png"})
			srv.Inject(nxcloud.ActionGetMedia, tc.fault)
			body := jsonBody(phone, id)
			req, _ := http.NewRequest(http.MethodPost, srv.URL()+"/api/wa/getMedia", bytes.NewReader(body))
			ts := nxcloud.Timestamp(fixedNow)
			for k, v := range map[string]string{"accessKey": nxcloudtest.DefaultAccessKey, "ts": ts, "bizType": "2", "action": "getMedia",
				"sign": nxcloud.Sign(nxcloud.MD5, srv.Credentials(), "getMedia", ts, body), "Content-Type": "application/json"} {
				req.Header.Set(k, v)
			}
			start := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if tc.wantErr {
				if err == nil {
					resp.Body.Close()
					t.Fatal("want a dropped connection")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus || !strings.HasPrefix(string(raw), tc.wantBody) {
				t.Errorf("HTTP %d %q, want %d %q", resp.StatusCode, raw, tc.wantStatus, tc.wantBody)
			}
			if time.Since(start) < tc.fault.Delay {
				t.Errorf("answered after %v, before the %v delay", time.Since(start), tc.fault.Delay)
			}
		})
	}
}

func TestVerifySign(t *testing.T) {
	t.Parallel()
	// Values computed outside Go:
	// printf '%s' 'accessKey=AK-test-123&action=uploadTemplateFile&bizType=2&ts=1700000000123&accessSecret=s3cr3t-Example' | md5sum
	h := http.Header{}
	h.Set("accessKey", "AK-test-123")
	h.Set("action", "uploadTemplateFile")
	h.Set("bizType", "2")
	h.Set("ts", "1700000000123")
	h.Set("sign", "ad6923e48f3dc97f6ad19ece2b7211e8")
	if err := nxcloudtest.VerifySign(h, nil, "s3cr3t-Example"); err != nil {
		t.Errorf("md5 vector: %v", err)
	}
	h.Set("algorithm", "sha256")
	h.Set("sign", "3c45334f601ab79687a1e5dca35615017ec57dc2bdfe18a2c513782c34d69986")
	if err := nxcloudtest.VerifySign(h, nil, "s3cr3t-Example"); err != nil {
		t.Errorf("sha256 vector: %v", err)
	}
	h.Set("algorithm", "crc32")
	if err := nxcloudtest.VerifySign(h, nil, "s3cr3t-Example"); err == nil {
		t.Error("unknown algorithm accepted")
	}
}

func TestStartAndClose(t *testing.T) {
	t.Parallel()
	srv := nxcloudtest.NewServer()
	url, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if url != srv.URL() || !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Errorf("URL %q / %q", url, srv.URL())
	}
	if _, err := srv.Start("127.0.0.1:0"); err == nil {
		t.Error("second Start succeeded")
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Post(url+"/api/wa/getMedia", "application/json", nil); err == nil {
		t.Error("server still answers after Close")
	}
	if port, _ := strconv.Atoi(url[strings.LastIndex(url, ":")+1:]); port == 0 {
		t.Errorf("no port in %q", url)
	}
}
