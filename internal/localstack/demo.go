package localstack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// samplePDF is a minimal, valid one-page PDF.
const samplePDF = "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n" +
	"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n" +
	"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n" +
	"trailer<</Root 1 0 R>>\n%%EOF\n"

// Demo walks through the bundle over HTTP only, as a caller of the API
// without S3 rights does: create an upload session for message media with
// the file's SHA-256, PUT a sample PDF to its presigned URL with its headers,
// poll the session until NXCloud's message media id is there, GET the media,
// follow GET /media/{id}/content to the file,
// archive it into the bucket (POST /media/{id}/archive, twice: the second
// answers from S3) and show the object in S3, DELETE it and GET it again to
// show the error. Each step prints the equivalent curl or aws command and
// what came back.
func Demo(ctx context.Context, st *Stack, w io.Writer, phone string) error {
	if phone == "" {
		phone = DefaultPhone
	}
	api := st.APIURL
	d := demo{ctx: ctx, w: w}
	var session struct {
		ID      string            `json:"upload_id"`
		URL     string            `json:"upload_url"`
		Method  string            `json:"method"`
		Headers map[string]string `json:"headers"`
	}
	sum := sha256.Sum256([]byte(samplePDF))
	req, _ := json.Marshal(map[string]any{"file_name": "menu card.pdf", "type": "application/pdf", "size": len(samplePDF), "business_phone": phone,
		"purpose": "message", "sha256": base64.StdEncoding.EncodeToString(sum[:])})
	if err := d.step("1. create an upload session for message media, bound to the file's SHA-256 (openssl dgst -sha256 -binary menu.pdf | base64)",
		fmt.Sprintf("curl -s -X POST %s/uploads -d '%s'", api, req),
		http.MethodPost, api+"/uploads", nil, req, http.StatusCreated, &session); err != nil {
		return err
	}
	var flags []string
	for _, k := range slices.Sorted(maps.Keys(session.Headers)) {
		flags = append(flags, fmt.Sprintf("-H '%s: %s'", k, session.Headers[k]))
	}
	if err := d.step("2. PUT the file to upload_url with exactly the headers given", fmt.Sprintf("curl -s -X %s %s -T menu.pdf '%s'", session.Method, strings.Join(flags, " "), session.URL),
		session.Method, session.URL, session.Headers, []byte(samplePDF), http.StatusOK, nil); err != nil {
		return err
	}

	fmt.Fprintf(w, "\n3. poll the session until the upload function has NXCloud's answer\n   $ curl -s %s/uploads/%s\n", api, session.ID)
	var status struct {
		Status  string `json:"status"`
		MediaID string `json:"media_id"`
		Error   string `json:"error"`
	}
	for last, deadline := "", time.Now().Add(time.Minute); status.Status != "uploaded" && status.Status != "rejected"; time.Sleep(200 * time.Millisecond) {
		body, _, err := d.call(http.MethodGet, api+"/uploads/"+session.ID, nil, nil, http.StatusOK, &status)
		if err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the upload did not finish in %s: see the UploadMediaFunction log lines above", time.Minute)
		}
		if status.Status != last {
			fmt.Fprintf(w, "   200 %s\n", bytes.TrimSpace(body))
			last = status.Status
		}
	}
	if status.Status != "uploaded" {
		return fmt.Errorf("the upload was rejected: %s", status.Error)
	}

	media, query := api+"/media/"+url.PathEscape(status.MediaID), "?business_phone="+phone
	if err := d.step("4. GET the media from NXCloud", fmt.Sprintf("curl -s '%s%s'", media, query), http.MethodGet, media+query, nil, nil, http.StatusOK, nil); err != nil {
		return err
	}
	if err := d.step("5. GET its content: a redirect to the url of a fresh getMedia, followed", fmt.Sprintf("curl -sL -o menu-back.pdf '%s/content%s'", media, query),
		http.MethodGet, media+"/content"+query, nil, nil, http.StatusFound, nil); err != nil {
		return err
	}
	var archived struct {
		Key string `json:"key"`
	}
	if err := d.step("6. archive it into the bucket: getMedia, then the file, streamed into S3", fmt.Sprintf("curl -s -X POST '%s/archive%s'", media, query),
		http.MethodPost, media+"/archive"+query, nil, nil, http.StatusCreated, &archived); err != nil {
		return err
	}
	if err := d.step("7. archive it again: the same document, read from the object (no NXCloud call, no download)", fmt.Sprintf("curl -s -X POST '%s/archive%s'", media, query),
		http.MethodPost, media+"/archive"+query, nil, nil, http.StatusOK, nil); err != nil {
		return err
	}
	if err := d.showObject(st, archived.Key); err != nil {
		return err
	}
	if err := d.step("9. DELETE it at NXCloud (the archive stays)", fmt.Sprintf("curl -s -X DELETE '%s%s'", media, query), http.MethodDelete, media+query, nil, nil, http.StatusOK, nil); err != nil {
		return err
	}
	if err := d.step("10. GET it again: NXCloud no longer knows it", fmt.Sprintf("curl -s '%s%s'", media, query), http.MethodGet, media+query, nil, nil, http.StatusBadRequest, nil); err != nil {
		return err
	}
	fmt.Fprintln(w, "\ndone")
	return nil
}

// showObject prints the archived object as S3 holds it and checks its bytes
// are the sample PDF.
func (d demo) showObject(st *Stack, key string) error {
	fmt.Fprintf(d.w, "\n8. the archive in S3\n   $ aws --endpoint-url %s s3api head-object --bucket %s --key '%s'\n", st.S3Endpoint, st.Bucket, key)
	out, err := st.S3Client().GetObject(d.ctx, &s3.GetObjectInput{Bucket: aws.String(st.Bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("the archive %s is not in the bucket: %w", key, err)
	}
	defer func() { _ = out.Body.Close() }()
	body, err := io.ReadAll(out.Body)
	if err != nil {
		return err
	}
	if string(body) != samplePDF {
		return fmt.Errorf("the archive %s holds %d bytes that are not the file uploaded", key, len(body))
	}
	meta, _ := json.Marshal(out.Metadata)
	fmt.Fprintf(d.w, "   ContentLength %d, ContentType %s, ContentDisposition %s, VersionId %s\n   Metadata %s\n",
		aws.ToInt64(out.ContentLength), aws.ToString(out.ContentType), aws.ToString(out.ContentDisposition), aws.ToString(out.VersionId), meta)
	return nil
}

// demo prints the steps of Demo and makes its HTTP calls.
type demo struct {
	ctx context.Context
	w   io.Writer
}

// step prints a step and its curl command, makes the call and prints the
// answer; a 302 is followed and must lead to the sample PDF.
func (d demo) step(title, curl, method, target string, headers map[string]string, body []byte, want int, out any) error {
	fmt.Fprintf(d.w, "\n%s\n   $ %s\n", title, curl)
	answer, h, err := d.call(method, target, headers, body, want, out)
	if err != nil {
		return err
	}
	if want != http.StatusFound {
		fmt.Fprintf(d.w, "   %d %s\n", want, bytes.TrimSpace(answer))
		return nil
	}
	loc := h.Get("Location")
	fmt.Fprintf(d.w, "   302 Location: %s (Cache-Control: %s)\n", loc, h.Get("Cache-Control"))
	file, h, err := d.call(http.MethodGet, loc, nil, nil, http.StatusOK, nil)
	if err != nil {
		return err
	}
	if string(file) != samplePDF {
		return fmt.Errorf("the file behind %s is not the one uploaded (%d bytes)", loc, len(file))
	}
	fmt.Fprintf(d.w, "   200 %s, %d bytes\n", h.Get("Content-Type"), len(samplePDF))
	return nil
}

// call makes one request (redirects not followed) and returns the body and
// the header of the answer; a status other than want is an error. out, when
// not nil, receives the JSON body.
func (d demo) call(method, target string, headers map[string]string, body []byte, want int, out any) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(d.ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	for k, v := range headers {
		req.Header.Set(k, v) // Content-Length is the body's, as curl sends it
	}
	cli := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := cli.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case err != nil:
		return nil, nil, err
	case resp.StatusCode != want:
		return nil, nil, fmt.Errorf("%s %s answered %d %s, want %d", method, target, resp.StatusCode, bytes.TrimSpace(b), want)
	case out != nil:
		if err := json.Unmarshal(b, out); err != nil {
			return nil, nil, fmt.Errorf("%s %s: %w", method, target, err)
		}
	}
	return b, resp.Header, nil
}
