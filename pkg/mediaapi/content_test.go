package mediaapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart/lambdarttest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/mediaapi"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

const contentEvent = "get-media-content.json"

// mediaWithURL answers getMedia with a data object holding url.
func mediaWithURL(url string) (*nxcloud.Media, error) {
	raw, _ := json.Marshal(map[string]string{"mime_type": "application/pdf", "file_name": "m.pdf", "url": url})
	return &nxcloud.Media{MimeType: "application/pdf", FileName: "m.pdf", URL: url, Raw: raw}, nil
}

func TestContentRedirect(t *testing.T) {
	t.Parallel()
	signed := "https://goss.oss-cn-hongkong.aliyuncs.com/1b0a4c77?Expires=1663747602&OSSAccessKeyId=LTAI5t&Signature=EW1K%3D"
	tests := []struct {
		name         string
		methods      []string
		mods         []eventMod
		url          string // the url getMedia answers
		err          error  // getMedia fails with it
		wantStatus   int
		wantLocation string
		wantAllow    string
		wantMsg      string
		wantCall     *fakeCall
	}{
		{name: "fixture as is", url: signed, wantStatus: 302, wantLocation: signed, wantCall: &fakeCall{"GET", phone, "1234567890123456"}},
		{name: "on a handler serving both methods", methods: []string{http.MethodGet, http.MethodDelete}, url: "http://files.local/x",
			wantStatus: 302, wantLocation: "http://files.local/x", wantCall: &fakeCall{"GET", phone, "1234567890123456"}},
		{name: "escaped slash stays inside the id", mods: []eventMod{withRawPath("/media/a%2Fb/content"), withPhone(phone)}, url: signed,
			wantStatus: 302, wantLocation: signed, wantCall: &fakeCall{"GET", phone, "a/b"}},
		{name: "input checked as for GET", mods: []eventMod{withRawPath("/media/ab%01c/content"), withPhone(phone)}, wantStatus: 400, wantMsg: "control characters"},
		{name: "phone checked as for GET", mods: []eventMod{withPhone("12")}, wantStatus: 400, wantMsg: "5 to 20 digits"},
		{name: "DELETE on content", methods: []string{http.MethodGet, http.MethodDelete}, mods: []eventMod{withMethod(http.MethodDelete)},
			wantStatus: 405, wantAllow: "GET", wantMsg: "method DELETE is not allowed on /media/{mediaId}/content: use GET"},
		{name: "the delete function serves no content", methods: []string{http.MethodDelete}, wantStatus: 404, wantMsg: "not found"},
		{name: "another suffix", mods: []eventMod{withRawPath("/media/m/contents"), withPhone(phone)}, wantStatus: 404, wantMsg: "not found"},
		{name: "content of content", mods: []eventMod{withRawPath("/media/m/content/content"), withPhone(phone)}, wantStatus: 404, wantMsg: "not found"},
		{name: "NXCloud error: same table as GET", err: &nxcloud.APIError{Action: nxcloud.ActionGetMedia, Code: 9002, Message: "Merchant phone number error"},
			wantStatus: 422, wantMsg: "is not a WhatsApp number", wantCall: &fakeCall{"GET", phone, "1234567890123456"}},
		{name: "no url", url: "", wantStatus: 502, wantMsg: "not its documented JSON", wantCall: &fakeCall{"GET", phone, "1234567890123456"}},
		{name: "not an http url", url: "javascript:alert(1)", wantStatus: 502, wantMsg: "not its documented JSON", wantCall: &fakeCall{"GET", phone, "1234567890123456"}},
		{name: "url without a host", url: "https:///x", wantStatus: 502, wantCall: &fakeCall{"GET", phone, "1234567890123456"}},
		{name: "url with a line break", url: "https://a.example/x\r\nSet-Cookie: y=1", wantStatus: 502, wantCall: &fakeCall{"GET", phone, "1234567890123456"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := &fakeMedia{getMedia: func(context.Context, string, string) (*nxcloud.Media, error) {
				if tc.err != nil {
					return nil, tc.err
				}
				return mediaWithURL(tc.url)
			}}
			log, _ := lambdarttest.Logger()
			methods := tc.methods
			if methods == nil {
				methods = []string{http.MethodGet}
			}
			h := mediaapi.NewHandler(fake, mediaapi.Options{Logger: log, Methods: methods})
			resp := invoke(context.Background(), t, h, loadEvent(t, contentEvent), tc.mods...)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tc.wantStatus, resp.Body)
			}
			if got := header(resp, "Location"); got != tc.wantLocation {
				t.Errorf("Location = %q, want %q", got, tc.wantLocation)
			}
			if got := header(resp, "Allow"); got != tc.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tc.wantAllow)
			}
			if got := header(resp, "Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store: the url is a short-lived signed link", got)
			}
			calls := fake.recorded()
			if tc.wantCall == nil && len(calls) != 0 || tc.wantCall != nil && (len(calls) != 1 || calls[0] != *tc.wantCall) {
				t.Errorf("NXCloud calls = %v, want %v", calls, tc.wantCall)
			}
			if tc.wantStatus == http.StatusFound {
				var data map[string]string
				if err := json.Unmarshal([]byte(resp.Body), &data); err != nil || data["url"] != tc.url {
					t.Errorf("body = %s, want NXCloud's data object", resp.Body)
				}
				return
			}
			if msg := decodeError(t, resp).Error.Message; !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("message %q does not contain %q", msg, tc.wantMsg)
			}
		})
	}
}

// Every content request asks NXCloud afresh: its signed urls expire, so no
// earlier answer is reused.
func TestContentFetchedEachTime(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	fake := &fakeMedia{getMedia: func(context.Context, string, string) (*nxcloud.Media, error) {
		return mediaWithURL(fmt.Sprintf("https://files.example/m?sig=%d", n.Add(1)))
	}}
	log, _ := lambdarttest.Logger()
	h := mediaapi.NewHandler(fake, mediaapi.Options{Logger: log, Methods: []string{http.MethodGet}})
	for i := 1; i <= 3; i++ {
		resp := invoke(context.Background(), t, h, loadEvent(t, contentEvent))
		if want := fmt.Sprintf("https://files.example/m?sig=%d", i); resp.StatusCode != http.StatusFound || header(resp, "Location") != want {
			t.Errorf("request %d: %d Location %q, want 302 to %s", i, resp.StatusCode, header(resp, "Location"), want)
		}
	}
	if got := len(fake.recorded()); got != 3 {
		t.Errorf("%d getMedia calls for 3 requests", got)
	}
}
