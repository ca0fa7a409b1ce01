package localstack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/miniotest"
)

// EnsureMinIO builds the pinned MinIO server with `make minio` when it is not
// installed yet, printing a progress line while the build runs.
func EnsureMinIO(ctx context.Context, w io.Writer) error {
	if _, err := miniotest.FindBinary(); err == nil {
		return nil
	}
	root, err := FindRepoRoot()
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "local: MinIO is not installed: building the pinned version once with `make minio` (about 4 minutes)")
	cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "minio")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = w, w
	done := make(chan error, 1)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("make minio: %w", err)
			}
			fmt.Fprintf(w, "local: MinIO built in %s\n", time.Since(start).Round(time.Second))
			_, err = miniotest.FindBinary()
			return err
		case <-tick.C:
			fmt.Fprintf(w, "local: still building MinIO (%s)\n", time.Since(start).Round(time.Second))
		}
	}
}

// samplePDF is a minimal, valid one-page PDF.
const samplePDF = "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n" +
	"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n" +
	"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n" +
	"trailer<</Root 1 0 R>>\n%%EOF\n"

// Demo walks through the bundle over HTTP only, as a caller of the API
// without S3 rights does: create an upload session, PUT a sample PDF to its
// presigned URL with its headers, poll the session until NXCloud's media id
// is there, GET the media, follow GET /media/{id}/content to the file, DELETE
// it and GET it again to show the error. Each step prints the equivalent curl
// command and what came back.
func Demo(ctx context.Context, st *Stack, w io.Writer, phone string) error {
	if phone == "" {
		phone = DefaultPhone
	}
	api := st.APIURL
	d := demo{ctx: ctx, w: w}

	d.step("1. create an upload session")
	req, _ := json.Marshal(map[string]any{"file_name": "menu card.pdf", "type": "application/pdf", "size": len(samplePDF), "business_phone": phone})
	d.curl("curl -s -X POST %s/uploads -d '%s'", api, req)
	var session struct {
		ID      string            `json:"upload_id"`
		URL     string            `json:"upload_url"`
		Method  string            `json:"method"`
		Headers map[string]string `json:"headers"`
	}
	if err := d.call(http.MethodPost, api+"/uploads", nil, req, http.StatusCreated, &session); err != nil {
		return err
	}

	d.step("2. PUT the file to upload_url with exactly the headers given")
	var flags []string
	for _, k := range slices.Sorted(maps.Keys(session.Headers)) {
		flags = append(flags, fmt.Sprintf("-H '%s: %s'", k, session.Headers[k]))
	}
	d.curl("curl -s -X %s %s -T menu.pdf '%s'", session.Method, strings.Join(flags, " "), session.URL)
	if err := d.call(session.Method, session.URL, session.Headers, []byte(samplePDF), http.StatusOK, nil); err != nil {
		return err
	}

	d.step("3. poll the session until the upload function has NXCloud's answer")
	d.curl("curl -s %s/uploads/%s", api, session.ID)
	var status struct {
		Status  string `json:"status"`
		MediaID string `json:"media_id"`
		Error   string `json:"error"`
	}
	poll, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for last := ""; ; {
		body, err := d.fetch(poll, http.MethodGet, api+"/uploads/"+session.ID, nil, nil, http.StatusOK, &status)
		if err != nil {
			return fmt.Errorf("%w (see the UploadTemplateFileFunction log lines above)", err)
		}
		if status.Status != last {
			fmt.Fprintf(w, "   %s\n", body)
			last = status.Status
		}
		if status.Status == "uploaded" || status.Status == "rejected" {
			break
		}
		select {
		case <-poll.Done():
			return errors.New("the upload did not finish in time: see the UploadTemplateFileFunction log lines above")
		case <-time.After(200 * time.Millisecond):
		}
	}
	if status.Status != "uploaded" {
		return fmt.Errorf("the upload was rejected: %s", status.Error)
	}

	media := api + "/media/" + url.PathEscape(status.MediaID)
	query := "?business_phone=" + phone
	d.step("4. GET the media from NXCloud")
	d.curl("curl -s '%s%s'", media, query)
	if err := d.call(http.MethodGet, media+query, nil, nil, http.StatusOK, nil); err != nil {
		return err
	}

	d.step("5. GET its content: a redirect to the url of a fresh getMedia, followed")
	d.curl("curl -sL -o menu-back.pdf '%s/content%s'", media, query)
	if err := d.redirect(media+"/content"+query, []byte(samplePDF)); err != nil {
		return err
	}

	d.step("6. DELETE it")
	d.curl("curl -s -X DELETE '%s%s'", media, query)
	if err := d.call(http.MethodDelete, media+query, nil, nil, http.StatusOK, nil); err != nil {
		return err
	}

	d.step("7. GET it again: NXCloud no longer knows it")
	d.curl("curl -s '%s%s'", media, query)
	if err := d.call(http.MethodGet, media+query, nil, nil, http.StatusBadRequest, nil); err != nil {
		return err
	}
	fmt.Fprintln(w, "\ndone")
	return nil
}

// demo prints the steps of Demo and makes its HTTP calls.
type demo struct {
	ctx context.Context
	w   io.Writer
}

func (d demo) step(title string) { fmt.Fprintf(d.w, "\n%s\n", title) }

func (d demo) curl(format string, a ...any) { fmt.Fprintf(d.w, "   $ "+format+"\n", a...) }

// call makes one request, prints the answer and decodes it into out (when
// not nil); a status other than want is an error.
func (d demo) call(method, target string, headers map[string]string, body []byte, want int, out any) error {
	answer, err := d.fetch(d.ctx, method, target, headers, body, want, out)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.w, "   %s\n", answer)
	return nil
}

// fetch makes one request and returns its status and body as one line.
func (d demo) fetch(ctx context.Context, method, target string, headers map[string]string, body []byte, want int, out any) (string, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	for k, v := range headers {
		req.Header.Set(k, v) // Content-Length is the body's, as curl sends it
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	answer := fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(b))
	if resp.StatusCode != want {
		return "", fmt.Errorf("%s %s answered %s, want %d", method, target, answer, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return "", fmt.Errorf("%s %s: %w", method, target, err)
		}
	}
	return answer, nil
}

// redirect GETs target, shows its 302, follows Location and checks that the
// file that comes back is want.
func (d demo) redirect(target string, want []byte) error {
	cli := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(d.ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	resp, err := cli.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	loc := resp.Header.Get("Location")
	fmt.Fprintf(d.w, "   %d Location: %s (Cache-Control: %s)\n", resp.StatusCode, loc, resp.Header.Get("Cache-Control"))
	if resp.StatusCode != http.StatusFound || loc == "" {
		return fmt.Errorf("GET %s answered %d, want 302 with a Location", target, resp.StatusCode)
	}
	req, err = http.NewRequestWithContext(d.ctx, http.MethodGet, loc, nil)
	if err != nil {
		return err
	}
	if resp, err = http.DefaultClient.Do(req); err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	got, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	fmt.Fprintf(d.w, "   %d %s, %d bytes\n", resp.StatusCode, resp.Header.Get("Content-Type"), len(got))
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, want) {
		return fmt.Errorf("the file behind %s is not the one uploaded (%d, %d bytes)", loc, resp.StatusCode, len(got))
	}
	return nil
}
