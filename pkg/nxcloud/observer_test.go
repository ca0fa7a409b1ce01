package nxcloud_test

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
)

// callLog collects what an observer sees.
type callLog struct {
	mu    sync.Mutex
	calls []nxcloud.Call
}

func (l *callLog) observe(_ context.Context, c nxcloud.Call) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, c)
}

// summary is each call as "action status answered code", without durations.
func (l *callLog) summary() []nxcloud.Call {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := slices.Clone(l.calls)
	for i := range out {
		if out[i].Duration <= 0 {
			out[i].Action += " (no duration)"
		}
		out[i].Duration = 0
	}
	return out
}

// The observer sees every exchange with NXCloud: each attempt of a retried
// call, with the HTTP status and NXCloud's code, and no answer as status 0.
func TestObserver(t *testing.T) {
	t.Parallel()
	srv := nxcloudtest.NewTestServer(t)
	id := srv.AddMedia(nxcloudtest.Media{MimeType: "application/pdf", FileName: "a.pdf"})
	log := &callLog{}
	c := newTestClient(t, srv, nxcloud.WithObserver(log.observe))

	srv.Inject(nxcloud.ActionGetMedia, nxcloudtest.Fault{HTTPStatus: 503})
	srv.Inject(nxcloud.ActionGetMedia, nxcloudtest.Fault{DropConnection: true})
	if _, err := c.GetMedia(context.Background(), testPhone, id); err != nil {
		t.Fatalf("GetMedia: %v", err)
	}
	srv.Inject(nxcloud.ActionDeleteMedia, nxcloudtest.Fault{Code: 9000})
	if err := c.DeleteMedia(context.Background(), testPhone, id); err == nil {
		t.Fatal("DeleteMedia with code 9000 succeeded")
	}
	body := []byte("%PDF-1.4 observer")
	if _, err := c.UploadTemplateFile(context.Background(), nxcloud.UploadInput{
		BusinessPhone: testPhone, Type: "application/pdf", FileName: "a.pdf", Size: int64(len(body)), Body: bytes.NewReader(body),
	}); err != nil {
		t.Fatalf("UploadTemplateFile: %v", err)
	}
	srv.Inject(nxcloud.ActionUploadMedia, nxcloudtest.Fault{HTTPStatus: 502})
	if _, err := c.UploadMedia(context.Background(), nxcloud.UploadInput{
		BusinessPhone: testPhone, Type: "application/pdf", FileName: "a.pdf", Size: int64(len(body)), Body: bytes.NewReader(body),
	}); err == nil {
		t.Fatal("UploadMedia answered HTTP 502 succeeded")
	}

	want := []nxcloud.Call{
		{Action: nxcloud.ActionGetMedia, HTTPStatus: 503},
		{Action: nxcloud.ActionGetMedia},
		{Action: nxcloud.ActionGetMedia, HTTPStatus: 200, Answered: true},
		{Action: nxcloud.ActionDeleteMedia, HTTPStatus: 200, Answered: true, Code: 9000},
		{Action: nxcloud.ActionUploadTemplateFile, HTTPStatus: 200, Answered: true},
		{Action: nxcloud.ActionUploadMedia, HTTPStatus: 502},
	}
	if got := log.summary(); !slices.Equal(got, want) {
		t.Errorf("observed\n%+v\nwant\n%+v", got, want)
	}
}
