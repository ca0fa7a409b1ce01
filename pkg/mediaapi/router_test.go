package mediaapi_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart/lambdarttest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/mediaapi"
)

// TestRouter runs each function's handler over paths and methods of every
// route: a function answers its own routes, a JSON 405 with Allow for
// another method on one of its paths, a JSON 404 for anything else, and an
// escaped slash (%2F), escaped dots included, stays inside the path value.
func TestRouter(t *testing.T) {
	t.Parallel()
	type handlers struct {
		media   *fakeMedia
		uploads *fakeUploads
		archive *fakeArchive
		byName  map[string]http.Handler
	}
	build := func() handlers {
		log, _ := lambdarttest.Logger()
		h := handlers{media: &fakeMedia{}, uploads: &fakeUploads{}, archive: &fakeArchive{}}
		h.byName = map[string]http.Handler{
			"get":     mediaapi.NewHandler(h.media, mediaapi.Options{Logger: log, Methods: []string{http.MethodGet}}),
			"delete":  mediaapi.NewHandler(h.media, mediaapi.Options{Logger: log, Methods: []string{http.MethodDelete}}),
			"uploads": mediaapi.NewUploadsHandler(h.uploads, mediaapi.UploadsOptions{Logger: log}),
			"archive": mediaapi.NewArchiveHandler(h.archive, mediaapi.ArchiveOptions{Logger: log}),
		}
		return h
	}
	tests := []struct {
		handler, method, rawPath, stage string
		wantStatus                      int
		wantAllow                       string
		wantID                          string // the id the service got
	}{
		{"get", "GET", "/media/a%2F..%2Fb", "", 200, "", "a/../b"},
		{"get", "GET", "/media/a%2Fb/content", "", 302, "", "a/b"},
		{"get", "GET", "/media/%2E%2E", "", 200, "", ".."},
		{"get", "GET", "/media/a/../b", "", 404, "", ""},
		{"get", "GET", "//media/x", "", 404, "", ""},
		{"get", "GET", "/media/x/", "", 404, "", ""},
		{"get", "GET", "/media", "", 404, "", ""},
		{"get", "HEAD", "/media/x", "", 405, "GET", ""},
		{"get", "HEAD", "/media/x/content", "", 405, "GET", ""},
		{"get", "POST", "/media/x/content", "", 405, "GET", ""},
		{"get", "POST", "/media/x/archive", "", 404, "", ""},
		{"get", "POST", "/uploads", "", 404, "", ""},
		{"delete", "DELETE", "/media/a%2Fb", "", 200, "", "a/b"},
		{"delete", "GET", "/media/x", "", 405, "DELETE", ""},
		{"delete", "GET", "/media/x/content", "", 404, "", ""},
		{"delete", "DELETE", "/prod/media/x", "prod", 200, "", "x"},
		{"delete", "DELETE", "/prod/media/x", "$default", 404, "", ""},
		{"uploads", "GET", "/uploads/a%2Fb", "", 200, "", "a/b"},
		{"uploads", "GET", "/uploads/", "", 404, "", ""},
		{"uploads", "HEAD", "/uploads/x", "", 405, "GET", ""},
		{"uploads", "PUT", "/uploads", "", 405, "POST", ""},
		{"uploads", "DELETE", "/media/x", "", 404, "", ""},
		{"archive", "POST", "/media/a%2Fb/archive", "", 201, "", "a/b"},
		{"archive", "POST", "/stage-1/media/x/archive", "stage-1", 201, "", "x"},
		{"archive", "DELETE", "/media/x/archive", "", 405, "POST", ""},
		{"archive", "HEAD", "/media/x/archive", "", 405, "POST", ""},
		{"archive", "GET", "/media/x", "", 404, "", ""},
		{"archive", "POST", "/media/x/archive/", "", 404, "", ""},
		{"archive", "POST", "/media/x/content", "", 404, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.handler+" "+tc.method+" "+tc.rawPath, func(t *testing.T) {
			t.Parallel()
			h := build()
			ev := loadEvent(t, getEvent)
			resp := invoke(context.Background(), t, h.byName[tc.handler], ev, withPhone(phone), withPath(tc.method, tc.rawPath),
				func(ev *events.APIGatewayV2HTTPRequest) {
					ev.RequestContext.Stage = tc.stage
					if tc.method == http.MethodPost {
						ev.Body = `{"file_name":"a.pdf","type":"application/pdf","size":1,"business_phone":"` + phone + `"}`
					}
				})
			if resp.StatusCode != tc.wantStatus || header(resp, "Allow") != tc.wantAllow {
				t.Fatalf("%d Allow %q (%s), want %d Allow %q", resp.StatusCode, header(resp, "Allow"), resp.Body, tc.wantStatus, tc.wantAllow)
			}
			if tc.wantStatus >= 400 {
				decodeError(t, resp)
			}
			var ids []string
			for _, c := range append(h.media.recorded(), h.archive.recorded()...) {
				ids = append(ids, c.id)
			}
			_, gets := h.uploads.calls()
			ids = append(ids, gets...)
			if tc.wantID == "" && len(ids) > 0 || tc.wantID != "" && (len(ids) != 1 || ids[0] != tc.wantID) {
				t.Errorf("the services got ids %q, want %q", ids, tc.wantID)
			}
		})
	}
}
