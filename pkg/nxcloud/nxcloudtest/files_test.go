package nxcloudtest_test

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
)

// TestMediaURL: getMedia answers the server's own /files/{id} (the id
// escaped as one segment), which serves the file's bytes, or the URL a
// Media names.
func TestMediaURL(t *testing.T) {
	t.Parallel()
	srv := nxcloudtest.NewTestServer(t)
	client, err := nxcloud.NewClient(nxcloud.WithBaseURL(srv.URL()), nxcloud.WithCredentials(nxcloud.StaticCredentials(srv.Credentials())))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		id, url string
	}{
		{"4:a/b?c#d", ""},
		{"inbound-1", "https://files.example/inbound-1.jpg?Signature=x"},
	} {
		srv.AddMedia(nxcloudtest.Media{ID: tc.id, MimeType: "image/jpeg", FileName: "p.jpg", Content: []byte("jpeg bytes"), URL: tc.url})
		m, err := client.GetMedia(ctx, "8615812341795", tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if tc.url != "" {
			if m.URL != tc.url {
				t.Errorf("%s: url %q, want the Media's %q", tc.id, m.URL, tc.url)
			}
			continue
		}
		resp, err := http.Get(m.URL)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != "jpeg bytes" {
			t.Errorf("%s: %s answered %d %q, want the file", tc.id, m.URL, resp.StatusCode, b)
		}
	}
}
