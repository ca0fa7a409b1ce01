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

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart/lambdarttest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/archive"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/mediaapi"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

const archiveEvent = "archive-media.json"

// fakeArchive is a function-field fake of mediaapi.ArchiveService that
// records every call.
type fakeArchive struct {
	archive func(phone, id string) (*archive.Object, bool, error)

	mu       sync.Mutex
	calls    []fakeCall
	deadline time.Time
}

func (f *fakeArchive) Archive(ctx context.Context, phone, id string) (*archive.Object, bool, error) {
	f.mu.Lock()
	f.calls = append(f.calls, fakeCall{http.MethodPost, phone, id})
	f.deadline, _ = ctx.Deadline()
	f.mu.Unlock()
	if f.archive != nil {
		return f.archive(phone, id)
	}
	return archivedObject(phone, id), true, nil
}

func (f *fakeArchive) recorded() []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeCall(nil), f.calls...)
}

func archivedObject(phone, id string) *archive.Object {
	return &archive.Object{MediaID: id, BusinessPhone: phone, Bucket: "nxcloud-media-bucket", Key: archive.Key("inbound/", phone, id),
		VersionID: "v1", Size: 5, Type: "image/jpeg", FileName: "photo.jpg", ArchivedAt: time.Date(2026, 1, 12, 10, 15, 31, 0, time.UTC)}
}

func TestArchiveRoute(t *testing.T) {
	t.Parallel()
	const fixtureID = "3604357656489911"
	apiErr := func(code int) error {
		return &nxcloud.APIError{Action: nxcloud.ActionGetMedia, Code: code, Message: "m"}
	}
	archErr := func(k archive.Kind, msg string) error {
		return &archive.Error{Kind: k, Message: msg, Err: errors.New("dial tcp 10.1.2.3:443: internal detail")}
	}
	tests := []struct {
		name       string
		mods       []eventMod
		answer     func(phone, id string) (*archive.Object, bool, error)
		wantStatus int
		wantCode   int    // nxcloud_code; 0 for none
		wantMsg    string // part of the error message
		wantAllow  string
		wantCall   *fakeCall
	}{
		{name: "fixture as is: stored", wantStatus: 201, wantCall: &fakeCall{"POST", phone, fixtureID}},
		{name: "already archived", answer: func(p, id string) (*archive.Object, bool, error) { return archivedObject(p, id), false, nil },
			wantStatus: 200, wantCall: &fakeCall{"POST", phone, fixtureID}},
		{name: "escaped slash stays inside the id", mods: []eventMod{withPath(http.MethodPost, "/media/4%3Aab%2Fcd/archive")},
			wantStatus: 201, wantCall: &fakeCall{"POST", phone, "4:ab/cd"}},
		{name: "default phone", mods: []eventMod{withQuery("")}, wantStatus: 201, wantCall: &fakeCall{"POST", defaultPhone, fixtureID}},
		{name: "bad phone", mods: []eventMod{withPhone("12")}, wantStatus: 400, wantMsg: "5 to 20 digits"},
		{name: "control character", mods: []eventMod{withPath(http.MethodPost, "/media/a%01b/archive")}, wantStatus: 400, wantMsg: "control characters"},
		{name: "id of 257 characters", mods: []eventMod{withPath(http.MethodPost, "/media/"+strings.Repeat("a", 257)+"/archive")}, wantStatus: 400, wantMsg: "257 characters"},
		{name: "empty id", mods: []eventMod{withPath(http.MethodPost, "/media//archive")}, wantStatus: 404, wantMsg: "not found"},
		{name: "GET on the archive", mods: []eventMod{withPath(http.MethodGet, "/media/m/archive")}, wantStatus: 405, wantAllow: "POST",
			wantMsg: "method GET is not allowed on /media/{mediaId}/archive: use POST"},
		{name: "the media route is another function's", mods: []eventMod{withPath(http.MethodGet, "/media/m")}, wantStatus: 404, wantMsg: "this API serves"},
		{name: "POST on the media route", mods: []eventMod{withPath(http.MethodPost, "/media/m")}, wantStatus: 404},
		{name: "NXCloud 9002", answer: func(string, string) (*archive.Object, bool, error) { return nil, false, apiErr(9002) },
			wantStatus: 422, wantCode: 9002, wantMsg: "is not a WhatsApp number", wantCall: &fakeCall{"POST", phone, fixtureID}},
		{name: "NXCloud 9000", answer: func(string, string) (*archive.Object, bool, error) { return nil, false, apiErr(9000) },
			wantStatus: 400, wantCode: 9000, wantMsg: "rejected the getMedia parameters", wantCall: &fakeCall{"POST", phone, fixtureID}},
		{name: "NXCloud 9001", answer: func(string, string) (*archive.Object, bool, error) { return nil, false, apiErr(9001) },
			wantStatus: 502, wantCode: 9001, wantCall: &fakeCall{"POST", phone, fixtureID}},
		{name: "NXCloud late", answer: func(string, string) (*archive.Object, bool, error) {
			return nil, false, fmt.Errorf("getMedia: %w", nxcloud.ErrTimeout)
		}, wantStatus: 504, wantMsg: "did not answer getMedia in time", wantCall: &fakeCall{"POST", phone, fixtureID}},
		{name: "credentials", answer: func(string, string) (*archive.Object, bool, error) {
			return nil, false, &nxcloud.CredentialsError{Err: errors.New("secret unavailable")}
		}, wantStatus: 503, wantCall: &fakeCall{"POST", phone, fixtureID}},
		{name: "key too long", answer: func(string, string) (*archive.Object, bool, error) {
			return nil, false, archErr(archive.Input, "mediaId is too long to be archived")
		}, wantStatus: 400, wantMsg: "too long to be archived", wantCall: &fakeCall{"POST", phone, fixtureID}},
		{name: "download failed", answer: func(string, string) (*archive.Object, bool, error) {
			return nil, false, archErr(archive.Download, "the media URL NXCloud answered gave HTTP 404 Not Found")
		}, wantStatus: 502, wantMsg: "gave HTTP 404 Not Found", wantCall: &fakeCall{"POST", phone, fixtureID}},
		{name: "too large", answer: func(string, string) (*archive.Object, bool, error) {
			return nil, false, archErr(archive.TooLarge, "more than MAX_UPLOAD_BYTES")
		}, wantStatus: 413, wantMsg: "MAX_UPLOAD_BYTES", wantCall: &fakeCall{"POST", phone, fixtureID}},
		{name: "past the budget", answer: func(string, string) (*archive.Object, bool, error) {
			return nil, false, &archive.Error{Kind: archive.Timeout, Message: "did not download within the function's time budget", Err: context.DeadlineExceeded}
		}, wantStatus: 504, wantMsg: "did not download within", wantCall: &fakeCall{"POST", phone, fixtureID}},
		{name: "storage", answer: func(string, string) (*archive.Object, bool, error) {
			return nil, false, archErr(archive.Storage, "the archive's storage (S3) failed")
		}, wantStatus: 503, wantMsg: "storage (S3) failed", wantCall: &fakeCall{"POST", phone, fixtureID}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := &fakeArchive{archive: tc.answer}
			log, logs := lambdarttest.Logger()
			h := mediaapi.NewArchiveHandler(fake, mediaapi.ArchiveOptions{DefaultBusinessPhone: defaultPhone, Logger: log})
			resp := invoke(context.Background(), t, h, loadEvent(t, archiveEvent), tc.mods...)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tc.wantStatus, resp.Body)
			}
			if got := header(resp, "Allow"); got != tc.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tc.wantAllow)
			}
			calls := fake.recorded()
			if tc.wantCall == nil && len(calls) != 0 || tc.wantCall != nil && (len(calls) != 1 || calls[0] != *tc.wantCall) {
				t.Errorf("Archive calls = %v, want %v", calls, tc.wantCall)
			}
			lines := logs.Lines(t, "archive request")
			if len(lines) != 1 || lines[0]["status"] != float64(tc.wantStatus) {
				t.Fatalf("log lines %v, want one with status %d", lines, tc.wantStatus)
			}
			if tc.wantStatus < 300 {
				var got archive.Object
				if err := json.Unmarshal([]byte(resp.Body), &got); err != nil || got != *archivedObject(calls[0].phone, calls[0].id) {
					t.Errorf("body %s, want the archive's document", resp.Body)
				}
				for _, k := range []string{"media_id", "business_phone", "bucket", "key", "version_id", "size", "type", "file_name", "archived_at"} {
					if !strings.Contains(resp.Body, `"`+k+`":`) {
						t.Errorf("body %s has no %s", resp.Body, k)
					}
				}
				if lines[0]["key"] != archive.Key("inbound/", calls[0].phone, calls[0].id) || lines[0]["created"] != (tc.wantStatus == 201) || lines[0]["route"] != mediaapi.ArchiveRoute {
					t.Errorf("log line %v: want the key, created and the route", lines[0])
				}
				return
			}
			e := decodeError(t, resp)
			if !strings.Contains(e.Error.Message, tc.wantMsg) {
				t.Errorf("message %q does not contain %q", e.Error.Message, tc.wantMsg)
			}
			switch {
			case tc.wantCode == 0 && e.Error.NXCloudCode != nil:
				t.Errorf("nxcloud_code %d, want none", *e.Error.NXCloudCode)
			case tc.wantCode != 0 && (e.Error.NXCloudCode == nil || *e.Error.NXCloudCode != tc.wantCode):
				t.Errorf("body %s: want nxcloud_code %d", resp.Body, tc.wantCode)
			}
			if strings.Contains(resp.Body, "10.1.2.3") || strings.Contains(resp.Body, "internal detail") {
				t.Errorf("the answer leaks the cause: %s", resp.Body)
			}
		})
	}
}

// TestArchiveKeepsMarginBeforeDeadline: the archive gets the invocation's
// deadline less the margin in which its error is written.
func TestArchiveKeepsMarginBeforeDeadline(t *testing.T) {
	t.Parallel()
	fake := &fakeArchive{}
	log, _ := lambdarttest.Logger()
	h := mediaapi.NewArchiveHandler(fake, mediaapi.ArchiveOptions{Logger: log})
	deadline := time.Now().Add(20 * time.Second)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	invoke(ctx, t, h, loadEvent(t, archiveEvent))
	if fake.deadline.IsZero() || !fake.deadline.Before(deadline) {
		t.Errorf("archive deadline %v, want before the invocation's %v", fake.deadline, deadline)
	}
}
