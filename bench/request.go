// Package bench holds the floors the functions are measured against, built
// without the bundle's client: NewJSONRequest is the hand-signed getMedia or
// deleteMedia call a warm get or delete invocation is compared with, and
// NewUploadRequest the hand-built uploadTemplateFile request of the upload
// floors (bench/peer). Its Go benchmarks time the get and delete handler
// path in process against that plain call. cmd/bench runs them with the
// built binaries (bench/hello, bench/peer, the functions) for BENCHMARKS.md.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
)

// NewJSONRequest builds a signed getMedia or deleteMedia request by hand: the
// JSON body, the signed headers (accessKey, ts, bizType, action, sign; MD5)
// and Content-Type.
func NewJSONRequest(ctx context.Context, baseURL string, cred nxcloud.Credentials, action, phone, mediaID string) (*http.Request, error) {
	body, err := json.Marshal(map[string]string{"business_phone": phone, "messaging_product": nxcloud.MessagingProduct, "Media-ID": mediaID})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(baseURL, "/")+"/api/wa/"+action, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	sign(req.Header, cred, action, body)
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

// sign sets the signed headers under their documented spelling.
func sign(h http.Header, cred nxcloud.Credentials, action string, body []byte) {
	ts := nxcloud.Timestamp(time.Now())
	h["accessKey"] = []string{cred.AccessKey}
	h["ts"] = []string{ts}
	h["bizType"] = []string{nxcloud.BizTypeWhatsApp}
	h["action"] = []string{action}
	h["sign"] = []string{nxcloud.Sign(nxcloud.MD5, cred, action, ts, body)}
}

// StickyMedia serves a local NXCloud holding m, again after every
// deleteMedia: repeated deletes measure the successful path each time.
func StickyMedia(srv *nxcloudtest.Server, m nxcloudtest.Media) http.Handler {
	srv.AddMedia(m)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.ServeHTTP(w, r)
		if strings.HasSuffix(r.URL.Path, "/"+nxcloud.ActionDeleteMedia) {
			srv.AddMedia(m)
		}
	})
}

// Do sends req with hc, reads the whole answer and fails unless it is HTTP
// 200 with NXCloud's code 0.
func Do(hc *http.Client, req *http.Request) error {
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var ans struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&ans); err != nil {
		return fmt.Errorf("bench: nxcloud answered HTTP %d with a body that is not JSON: %w", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK || ans.Code != 0 {
		return fmt.Errorf("bench: nxcloud answered HTTP %d code %d: %s", resp.StatusCode, ans.Code, ans.Message)
	}
	return nil
}

// NewUploadRequest builds a signed uploadTemplateFile request of the file
// fileName (application/pdf) for the merchant phone whose multipart body
// streams exactly size bytes of file, with an exact Content-Length. The body
// is not signed, as the API convention says.
func NewUploadRequest(ctx context.Context, baseURL string, cred nxcloud.Credentials, phone, fileName string, file io.Reader, size int64) (*http.Request, error) {
	var head, tail bytes.Buffer
	mw := multipart.NewWriter(&head)
	for _, f := range [...][2]string{{"messaging_product", nxcloud.MessagingProduct}, {"business_phone", phone}, {"type", "application/pdf"}} {
		_ = mw.WriteField(f[0], f[1]) // writes to a bytes.Buffer do not fail
	}
	_, _ = mw.CreatePart(textproto.MIMEHeader{"Content-Disposition": {`form-data; name="file"; filename="` + fileName + `"`}, "Content-Type": {"application/pdf"}})
	contentType, prefix := mw.FormDataContentType(), head.Len()
	_ = mw.Close() // the closing boundary, after the part
	tail.Write(head.Bytes()[prefix:])
	head.Truncate(prefix)
	body := io.MultiReader(&head, io.LimitReader(file, size), &tail)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(baseURL, "/")+"/api/wa/"+nxcloud.ActionUploadTemplateFile, body)
	if err != nil {
		return nil, err
	}
	req.ContentLength = int64(head.Len()+tail.Len()) + size
	sign(req.Header, cred, nxcloud.ActionUploadTemplateFile, nil)
	req.Header.Set("Content-Type", contentType)
	return req, nil
}
