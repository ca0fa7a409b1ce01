package mediaapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart/lambdarttest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/mediaapi"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/sessions/session"
)

// Fixture names in eventsDir.
const (
	createUploadEvent = "create-upload.json"
	getUploadEvent    = "get-upload.json"
)

// fakeUploads is a function-field fake of mediaapi.UploadService that
// records every call.
type fakeUploads struct {
	create func(in session.NewUpload) (*session.Upload, error)
	status func(id string) (*session.UploadStatus, error)

	mu      sync.Mutex
	creates []session.NewUpload
	gets    []string
}

var (
	fakeExpiry  = time.Date(2026, 1, 12, 10, 30, 30, 0, time.UTC)
	fakeUpdated = time.Date(2026, 1, 12, 10, 16, 2, 0, time.UTC)
)

func (f *fakeUploads) CreateUpload(_ context.Context, in session.NewUpload) (*session.Upload, error) {
	f.mu.Lock()
	f.creates = append(f.creates, in)
	f.mu.Unlock()
	if f.create != nil {
		return f.create(in)
	}
	return &session.Upload{ID: "u1", URL: "https://bucket.s3.example/templates/uploads/u1/x?X-Amz-Signature=ab&X-Amz-Expires=900",
		Method: http.MethodPut, Headers: map[string]string{"Content-Type": in.Type}, ExpiresAt: fakeExpiry, Purpose: in.Purpose}, nil
}

func (f *fakeUploads) Upload(_ context.Context, id string) (*session.UploadStatus, error) {
	f.mu.Lock()
	f.gets = append(f.gets, id)
	f.mu.Unlock()
	if f.status != nil {
		return f.status(id)
	}
	return &session.UploadStatus{ID: id, Purpose: session.PurposeTemplate, Status: session.StatusUploaded, FileName: "menu.pdf", Type: "application/pdf",
		Size: 5, BusinessPhone: phone, MediaID: "4:abc", UpdatedAt: fakeUpdated}, nil
}

func (f *fakeUploads) calls() (creates []session.NewUpload, gets []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]session.NewUpload(nil), f.creates...), append([]string(nil), f.gets...)
}

// withBody sets the request body as API Gateway passes a text body.
func withBody(body string) eventMod {
	return func(ev *events.APIGatewayV2HTTPRequest) { ev.Body, ev.IsBase64Encoded = body, false }
}

// withPath sets the raw path (escaped) and the method.
func withPath(method, raw string) eventMod {
	return func(ev *events.APIGatewayV2HTTPRequest) {
		ev.RawPath, ev.RequestContext.HTTP.Path, ev.RequestContext.HTTP.Method = raw, raw, method
	}
}

func TestUploadsCreate(t *testing.T) {
	t.Parallel()
	const maxBytes = 1 << 20
	body := func(fields map[string]any) string {
		b, _ := json.Marshal(fields)
		return string(b)
	}
	valid := func(change func(map[string]any)) string {
		m := map[string]any{"file_name": "menu.pdf", "type": "application/pdf", "size": 12345, "business_phone": phone}
		change(m)
		return body(m)
	}
	tests := []struct {
		name         string
		defaultPhone string
		body         string // the fixture's body when empty
		wantStatus   int
		wantMsg      []string
		want         *session.NewUpload // what the store is asked for
	}{
		{name: "fixture as is", wantStatus: 201, want: &session.NewUpload{Purpose: session.PurposeTemplate, FileName: "menu card.pdf", Type: "application/pdf", Size: 245760, BusinessPhone: phone}},
		{name: "phone falls back to the default", defaultPhone: defaultPhone, body: valid(func(m map[string]any) { delete(m, "business_phone") }),
			wantStatus: 201, want: &session.NewUpload{Purpose: session.PurposeTemplate, FileName: "menu.pdf", Type: "application/pdf", Size: 12345, BusinessPhone: defaultPhone}},
		{name: "empty phone falls back to the default", defaultPhone: defaultPhone, body: valid(func(m map[string]any) { m["business_phone"] = "" }),
			wantStatus: 201, want: &session.NewUpload{Purpose: session.PurposeTemplate, FileName: "menu.pdf", Type: "application/pdf", Size: 12345, BusinessPhone: defaultPhone}},
		{name: "type is matched without case", body: valid(func(m map[string]any) { m["type"] = "Image/PNG" }),
			wantStatus: 201, want: &session.NewUpload{Purpose: session.PurposeTemplate, FileName: "menu.pdf", Type: "image/png", Size: 12345, BusinessPhone: phone}},
		{name: "largest size and longest name", body: valid(func(m map[string]any) { m["size"] = maxBytes; m["file_name"] = strings.Repeat("é", 127) + "x" }),
			wantStatus: 201, want: &session.NewUpload{Purpose: session.PurposeTemplate, FileName: strings.Repeat("é", 127) + "x", Type: "application/pdf", Size: maxBytes, BusinessPhone: phone}},

		{name: "no file_name", body: valid(func(m map[string]any) { delete(m, "file_name") }), wantStatus: 400, wantMsg: []string{"file_name is required"}},
		{name: "empty file_name", body: valid(func(m map[string]any) { m["file_name"] = "" }), wantStatus: 400, wantMsg: []string{"file_name is required"}},
		{name: "file_name of 256 bytes", body: valid(func(m map[string]any) { m["file_name"] = strings.Repeat("é", 128) }), wantStatus: 400,
			wantMsg: []string{"file_name has 256 bytes: at most 255"}},
		{name: "file_name with a slash", body: valid(func(m map[string]any) { m["file_name"] = "../../nxcloud-records/x.pdf" }), wantStatus: 400,
			wantMsg: []string{`contains / or \`, "base name"}},
		{name: "file_name with a backslash", body: valid(func(m map[string]any) { m["file_name"] = `a\b.pdf` }), wantStatus: 400, wantMsg: []string{`contains / or \`}},
		{name: "file_name with a newline", body: valid(func(m map[string]any) { m["file_name"] = "a\nb.pdf" }), wantStatus: 400, wantMsg: []string{"control characters"}},
		{name: "file_name with DEL", body: valid(func(m map[string]any) { m["file_name"] = "a\x7f.pdf" }), wantStatus: 400, wantMsg: []string{"control characters"}},
		{name: "file_name ..", body: valid(func(m map[string]any) { m["file_name"] = ".." }), wantStatus: 400, wantMsg: []string{"not . or .."}},
		{name: "file_name not a string", body: valid(func(m map[string]any) { m["file_name"] = 7 }), wantStatus: 400, wantMsg: []string{"file_name must be a JSON string"}},
		{name: "no type", body: valid(func(m map[string]any) { delete(m, "type") }), wantStatus: 400, wantMsg: []string{"type is required: one of application/pdf"}},
		{name: "type not accepted", body: valid(func(m map[string]any) { m["type"] = "image/gif" }), wantStatus: 400,
			wantMsg: []string{`type "image/gif" is not a type NXCloud takes for purpose template: use one of application/pdf, video/mp4, image/jpeg, image/png, image/jpg`}},
		{name: "type with parameters", body: valid(func(m map[string]any) { m["type"] = "application/pdf; charset=binary" }), wantStatus: 400, wantMsg: []string{"not a type NXCloud takes"}},
		{name: "no size", body: valid(func(m map[string]any) { delete(m, "size") }), wantStatus: 400, wantMsg: []string{"size is required", "from 1 to 1048576"}},
		{name: "size 0", body: valid(func(m map[string]any) { m["size"] = 0 }), wantStatus: 400, wantMsg: []string{"size 0 is out of range", "MAX_UPLOAD_BYTES"}},
		{name: "size negative", body: valid(func(m map[string]any) { m["size"] = -1 }), wantStatus: 400, wantMsg: []string{"size -1 is out of range"}},
		{name: "size over MAX_UPLOAD_BYTES", body: valid(func(m map[string]any) { m["size"] = maxBytes + 1 }), wantStatus: 400, wantMsg: []string{"size 1048577 is out of range"}},
		{name: "size a string", body: valid(func(m map[string]any) { m["size"] = "12345" }), wantStatus: 400, wantMsg: []string{"size must be a whole number of bytes"}},
		{name: "size a fraction", body: valid(func(m map[string]any) { m["size"] = 1.5 }), wantStatus: 400, wantMsg: []string{"size must be a whole number"}},
		{name: "size beyond int64", body: `{"file_name":"a.pdf","type":"application/pdf","size":99999999999999999999,"business_phone":"` + phone + `"}`,
			wantStatus: 400, wantMsg: []string{"size must be a whole number"}},
		{name: "no phone and no default", body: valid(func(m map[string]any) { delete(m, "business_phone") }), wantStatus: 400,
			wantMsg: []string{"business_phone is required", "NXCLOUD_BUSINESS_PHONE"}},
		{name: "phone with a plus", body: valid(func(m map[string]any) { m["business_phone"] = "+8615812341795" }), wantStatus: 400,
			wantMsg: []string{`business_phone "+8615812341795" is not a merchant phone`}},
		{name: "phone of 4 digits", defaultPhone: defaultPhone, body: valid(func(m map[string]any) { m["business_phone"] = "1234" }), wantStatus: 400, wantMsg: []string{"5 to 20 digits"}},
		{name: "phone a number", body: valid(func(m map[string]any) { m["business_phone"] = 8615812341795 }), wantStatus: 400, wantMsg: []string{"business_phone must be a JSON string"}},
		{name: "unknown member", body: valid(func(m map[string]any) { m["filename"] = "x" }), wantStatus: 400,
			wantMsg: []string{`unknown member "filename": the body takes file_name, type, size, business_phone, purpose and sha256`}},

		// purpose: the prefix and the table; sha256: the file's checksum.
		{name: "purpose message", body: valid(func(m map[string]any) { m["purpose"] = "message"; m["type"] = "image/webp"; m["size"] = 100 << 10 }),
			wantStatus: 201, want: &session.NewUpload{Purpose: session.PurposeMessage, FileName: "menu.pdf", Type: "image/webp", Size: 100 << 10, BusinessPhone: phone}},
		{name: "purpose message: a sticker over 100 KB", body: valid(func(m map[string]any) { m["purpose"] = "message"; m["type"] = "image/webp"; m["size"] = 100<<10 + 1 }),
			wantStatus: 400, wantMsg: []string{"size 102401 is out of range", "from 1 to 102400 (the largest sticker NXCloud takes)"}},
		{name: "purpose message: a type of templates only", body: valid(func(m map[string]any) { m["purpose"] = "message"; m["type"] = "image/jpg" }),
			wantStatus: 400, wantMsg: []string{`type "image/jpg" is not a type NXCloud takes for purpose message`, "audio/ogg"}},
		{name: "purpose template: a type of messages only", body: valid(func(m map[string]any) { m["type"] = "audio/ogg" }),
			wantStatus: 400, wantMsg: []string{`type "audio/ogg" is not a type NXCloud takes for purpose template`}},
		{name: "unknown purpose", body: valid(func(m map[string]any) { m["purpose"] = "marketing" }),
			wantStatus: 400, wantMsg: []string{`purpose "marketing" is not one of "template"`}},
		{name: "sha256 as hex", body: valid(func(m map[string]any) { m["sha256"] = strings.Repeat("0f", 32) }),
			wantStatus: 201, want: &session.NewUpload{Purpose: session.PurposeTemplate, FileName: "menu.pdf", Type: "application/pdf", Size: 12345, BusinessPhone: phone,
				SHA256: "Dw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8="}},
		{name: "sha256 as base64", body: valid(func(m map[string]any) { m["sha256"] = "Dw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8=" }),
			wantStatus: 201, want: &session.NewUpload{Purpose: session.PurposeTemplate, FileName: "menu.pdf", Type: "application/pdf", Size: 12345, BusinessPhone: phone,
				SHA256: "Dw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8="}},
		{name: "sha256 too short", body: valid(func(m map[string]any) { m["sha256"] = "abc123" }),
			wantStatus: 400, wantMsg: []string{`sha256 "abc123" is not a SHA-256`, "sha256sum"}},
		{name: "every problem in one answer", body: `{"type":"text/plain","size":0}`, wantStatus: 400,
			wantMsg: []string{"file_name is required", "not a type NXCloud takes", "size 0 is out of range", "business_phone is required"}},
		{name: "empty body", body: " ", wantStatus: 400, wantMsg: []string{"the body is not a JSON object", `"file_name": "menu.pdf"`}},
		{name: "not JSON", body: "file_name=menu.pdf", wantStatus: 400, wantMsg: []string{"not a JSON object"}},
		{name: "an array", body: "[" + valid(func(map[string]any) {}) + "]", wantStatus: 400, wantMsg: []string{"not a JSON object"}},
		{name: "null", body: "null", wantStatus: 400, wantMsg: []string{"not a JSON object"}},
		{name: "two objects", body: valid(func(map[string]any) {}) + valid(func(map[string]any) {}), wantStatus: 400, wantMsg: []string{"more than one JSON value"}},
		{name: "trailing garbage", body: valid(func(map[string]any) {}) + " x", wantStatus: 400, wantMsg: []string{"more than one JSON value"}},
		{name: "over 16 KiB", body: valid(func(m map[string]any) { m["pad"] = strings.Repeat("x", 16<<10) }), wantStatus: 400, wantMsg: []string{"larger than 16384 bytes"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := &fakeUploads{}
			log, _ := lambdarttest.Logger()
			h := mediaapi.NewUploadsHandler(fake, mediaapi.UploadsOptions{DefaultBusinessPhone: tc.defaultPhone, MaxUploadBytes: maxBytes, Logger: log})
			var mods []eventMod
			if tc.body != "" {
				mods = append(mods, withBody(tc.body))
			}
			resp := invoke(context.Background(), t, h, loadEvent(t, createUploadEvent), mods...)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tc.wantStatus, resp.Body)
			}
			creates, _ := fake.calls()
			if tc.wantStatus != http.StatusCreated {
				msg := decodeError(t, resp).Error.Message
				for _, w := range tc.wantMsg {
					if !strings.Contains(msg, w) {
						t.Errorf("message %q does not contain %q", msg, w)
					}
				}
				if len(creates) != 0 {
					t.Errorf("the store was asked for %v on a refused request", creates)
				}
				return
			}
			if len(creates) != 1 || creates[0] != *tc.want {
				t.Fatalf("store asked for %+v, want one %+v", creates, *tc.want)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(resp.Body), &got); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{
				"upload_id": "u1", "method": "PUT", "expires_at": "2026-01-12T10:30:30Z",
				"upload_url": "https://bucket.s3.example/templates/uploads/u1/x?X-Amz-Signature=ab&X-Amz-Expires=900",
				"headers":    map[string]any{"Content-Type": tc.want.Type}, "purpose": tc.want.Purpose,
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("body = %v, want %v", got, want)
			}
			if strings.Contains(resp.Body, `\u0026`) {
				t.Errorf("the upload_url is HTML-escaped: %s", resp.Body)
			}
		})
	}
}

func TestUploadsStatus(t *testing.T) {
	t.Parallel()
	const fixtureID = "3f9c2a7d5e1b4c8a9d0e6f7a8b9c0d1e"
	storeDown := errors.New("operation error S3: GetObject, dial tcp 10.9.8.7:443: i/o timeout")
	tests := []struct {
		name       string
		mods       []eventMod
		status     func(id string) (*session.UploadStatus, error)
		wantStatus int
		wantBody   string // exact, for 200
		wantMsg    string
		wantAllow  string
		wantGet    string // the id the store was asked for; "" for none
	}{
		{name: "fixture as is", wantStatus: 200, wantGet: fixtureID,
			wantBody: `{"upload_id":"` + fixtureID + `","purpose":"template","status":"uploaded","file_name":"menu.pdf","type":"application/pdf","size":5,"business_phone":"` + phone + `","media_id":"4:abc","updated_at":"2026-01-12T10:16:02Z"}`},
		{name: "rejected carries the reason, not a media id", wantStatus: 200, wantGet: fixtureID,
			status: func(id string) (*session.UploadStatus, error) {
				return &session.UploadStatus{ID: id, Purpose: session.PurposeTemplate, Status: session.StatusRejected, FileName: "m.pdf", Type: "application/pdf", Size: 5,
					BusinessPhone: phone, Error: "NXCloud 9002: Merchant phone number error", UpdatedAt: fakeUpdated}, nil
			},
			wantBody: `{"upload_id":"` + fixtureID + `","purpose":"template","status":"rejected","file_name":"m.pdf","type":"application/pdf","size":5,"business_phone":"` + phone + `","error":"NXCloud 9002: Merchant phone number error","updated_at":"2026-01-12T10:16:02Z"}`},
		{name: "unknown id", status: func(string) (*session.UploadStatus, error) {
			return nil, fmt.Errorf("id x: %w", session.ErrUploadNotFound)
		},
			wantStatus: 404, wantMsg: "no upload session has this upload_id", wantGet: fixtureID},
		{name: "escaped id reaches the store decoded", mods: []eventMod{withPath(http.MethodGet, "/uploads/a%2Fb")},
			status: func(string) (*session.UploadStatus, error) { return nil, session.ErrUploadNotFound }, wantStatus: 404, wantGet: "a/b"},
		{name: "storage failure", status: func(string) (*session.UploadStatus, error) { return nil, storeDown },
			wantStatus: 503, wantMsg: "retry later", wantGet: fixtureID},
		{name: "POST on an upload", mods: []eventMod{withPath(http.MethodPost, "/uploads/"+fixtureID)}, wantStatus: 405, wantAllow: "GET",
			wantMsg: "method POST is not allowed on /uploads/{uploadId}: use GET"},
		{name: "GET on the collection", mods: []eventMod{withPath(http.MethodGet, "/uploads")}, wantStatus: 405, wantAllow: "POST", wantMsg: "use POST"},
		{name: "two segments", mods: []eventMod{withPath(http.MethodGet, "/uploads/a/b")}, wantStatus: 404, wantMsg: "not found"},
		{name: "empty id", mods: []eventMod{withPath(http.MethodGet, "/uploads/")}, wantStatus: 404, wantMsg: "not found"},
		{name: "a media route", mods: []eventMod{withPath(http.MethodGet, "/media/x")}, wantStatus: 404, wantMsg: "this API serves"},
		{name: "named stage prefix is removed", mods: []eventMod{withPath(http.MethodGet, "/prod/uploads/"+fixtureID), func(ev *events.APIGatewayV2HTTPRequest) {
			ev.RequestContext.Stage = "prod"
		}}, wantStatus: 200, wantGet: fixtureID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := &fakeUploads{status: tc.status}
			log, logs := lambdarttest.Logger()
			h := mediaapi.NewUploadsHandler(fake, mediaapi.UploadsOptions{Logger: log})
			resp := invoke(context.Background(), t, h, loadEvent(t, getUploadEvent), tc.mods...)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tc.wantStatus, resp.Body)
			}
			if got := header(resp, "Allow"); got != tc.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tc.wantAllow)
			}
			if _, gets := fake.calls(); tc.wantGet == "" && len(gets) != 0 || tc.wantGet != "" && (len(gets) != 1 || gets[0] != tc.wantGet) {
				t.Errorf("store asked for %q, want %q", gets, tc.wantGet)
			}
			if tc.wantStatus == http.StatusOK {
				if tc.wantBody != "" && resp.Body != tc.wantBody {
					t.Errorf("body = %s\nwant   %s", resp.Body, tc.wantBody)
				}
				return
			}
			msg := decodeError(t, resp).Error.Message
			if !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("message %q does not contain %q", msg, tc.wantMsg)
			}
			if strings.Contains(resp.Body, "10.9.8.7") {
				t.Errorf("the answer leaks the storage error: %s", resp.Body)
			}
			lines := logs.Lines(t, "upload request")
			if len(lines) != 1 || lines[0]["status"] != float64(tc.wantStatus) {
				t.Fatalf("log lines %v, want one with status %d", lines, tc.wantStatus)
			}
			if tc.wantStatus == 503 && !strings.Contains(fmt.Sprint(lines[0]["error"]), "10.9.8.7") {
				t.Errorf("the log line does not give the operator the storage error: %v", lines[0])
			}
		})
	}
}

// A storage failure on POST is a 503 too, and the log line names the cause.
func TestUploadsCreateStoreFailure(t *testing.T) {
	t.Parallel()
	fake := &fakeUploads{create: func(session.NewUpload) (*session.Upload, error) {
		return nil, errors.New("put session: AccessDenied: s3:PutObject")
	}}
	log, logs := lambdarttest.Logger()
	h := mediaapi.NewUploadsHandler(fake, mediaapi.UploadsOptions{Logger: log})
	resp := invoke(context.Background(), t, h, loadEvent(t, createUploadEvent))
	if resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(resp.Body, "AccessDenied") {
		t.Fatalf("got %d %s, want 503 without the storage error", resp.StatusCode, resp.Body)
	}
	lines := logs.Lines(t, "upload request")
	if len(lines) != 1 || lines[0]["cause"] != "upload_store" || !strings.Contains(fmt.Sprint(lines[0]["error"]), "AccessDenied") {
		t.Errorf("log lines = %v, want one with cause upload_store and the error", lines)
	}
}

// Through NewLambdaHandler, as the function runs it: a body API Gateway
// base64-encoded reaches the handler decoded, and an event the adapter
// cannot convert is the same JSON 400 as on the media routes, before the
// store is asked.
func TestUploadsThroughLambdaHandler(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		mod        eventMod
		wantStatus int
		wantMsg    string
	}{
		{"body base64-encoded", func(ev *events.APIGatewayV2HTTPRequest) {
			ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString([]byte(ev.Body)), true
		}, http.StatusCreated, ""},
		{"body marked base64 that is not", func(ev *events.APIGatewayV2HTTPRequest) { ev.IsBase64Encoded = true },
			http.StatusBadRequest, "marked isBase64Encoded but is not base64"},
		{"raw control character in rawPath", func(ev *events.APIGatewayV2HTTPRequest) { ev.RawPath = "/uploads\x01" },
			http.StatusBadRequest, "percent-encode rawPath"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := &fakeUploads{}
			log, _ := lambdarttest.Logger()
			ev := loadEvent(t, createUploadEvent)
			tc.mod(&ev)
			resp, err := mediaapi.NewLambdaHandler(mediaapi.NewUploadsHandler(fake, mediaapi.UploadsOptions{Logger: log}))(context.Background(), ev)
			if err != nil {
				t.Fatalf("invocation failed: %v", err)
			}
			if resp.StatusCode != tc.wantStatus || resp.Headers["Content-Type"] != "application/json" {
				t.Fatalf("got %d %v %s, want %d application/json", resp.StatusCode, resp.Headers, resp.Body, tc.wantStatus)
			}
			creates, _ := fake.calls()
			if tc.wantStatus == http.StatusCreated {
				if len(creates) != 1 || creates[0].FileName != "menu card.pdf" {
					t.Errorf("store asked for %v, want the fixture's file", creates)
				}
				return
			}
			if msg := decodeError(t, resp).Error.Message; !strings.Contains(msg, tc.wantMsg) || len(creates) != 0 {
				t.Errorf("message %q (want %q), store asked for %v", msg, tc.wantMsg, creates)
			}
		})
	}
}
