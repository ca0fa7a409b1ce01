package nxcloud

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// UploadTemplateFile uploads a template example file and returns the id
// NXCloud gives it, the "4:..." handle createTemplate takes as header_handle
// (https://github.com/nxtele/http-api-document, WhatsApp "Upload Template
// Example File"; nxcloud-docs/uploadTemplateFile.md). in.Type is one of
// TemplateFileTypes.
//
// The body is streamed: the multipart/form-data request (fields
// messaging_product, business_phone, type, then the part "file") is sent with
// an exact Content-Length computed up front from in.Size, never chunked, and
// memory does not grow with the file. If in.Body yields fewer or more bytes
// than in.Size the call fails. UploadTemplateFile does not close in.Body, and
// it does not return while the transport may still read from it.
//
// The call is bounded by ctx only (large files take time) and is not retried
// on network errors or HTTP 5xx: the caller owns the stream and retries the
// whole call. After an authentication code (1000 to 1099) the credentials
// are refreshed and, when in.GetBody is set and the refresh brought other
// credentials (a rotated secret), the upload is sent once more with a fresh
// body; otherwise the authentication error is returned.
// Multipart calls are signed without their body, as the API call convention
// says. Errors: *APIError, *ResponseError, *CredentialsError, ErrTimeout,
// ErrInvalidInput.
func (c *Client) UploadTemplateFile(ctx context.Context, in UploadInput) (string, error) {
	return c.uploadFile(ctx, ActionUploadTemplateFile, TemplateFileTypes, in)
}

// UploadMedia uploads a media file for messages and returns the id NXCloud
// gives it, the UUID a message (mt) carries and GetMedia and DeleteMedia take
// (https://github.com/nxtele/http-api-document, WhatsApp "Upload Media File";
// nxcloud-docs/uploadMedia.md). in.Type is one of MessageMediaTypes, and the
// file is at most the MaxBytes of its row: NXCloud refuses other types and
// larger files with code 9000, so check them first (a FileType's Limit).
//
// The request, its streaming, its signature, the one resend after an
// authentication code and the errors are those of UploadTemplateFile: only
// the action (header and URL path /api/wa/uploadMedia) differs.
func (c *Client) UploadMedia(ctx context.Context, in UploadInput) (string, error) {
	return c.uploadFile(ctx, ActionUploadMedia, MessageMediaTypes, in)
}

// uploadFile runs one upload to action, whose table of types names the
// types in the message of a bad in.Type.
func (c *Client) uploadFile(ctx context.Context, action string, types FileTypes, in UploadInput) (string, error) {
	if err := in.validate(types); err != nil {
		return "", fmt.Errorf("nxcloud %s: %w: %w", action, ErrInvalidInput, err)
	}
	frame, err := newMultipartFrame(in)
	if err != nil {
		return "", fmt.Errorf("nxcloud %s: %w: %w", action, ErrInvalidInput, err)
	}
	cred, err := c.retrieve(ctx)
	if err != nil {
		return "", err
	}
	id, err := c.upload(ctx, action, cred, frame, in.Body, in.Size)
	apiErr, ok := AsAPIError(err)
	if !ok || !apiErr.IsAuth() {
		return id, err
	}

	// NXCloud refused the signature: the secret may have been rotated. Refresh
	// in any case, so that the caller's own retry uses the new secret.
	c.log.DebugContext(ctx, "nxcloud authentication refused, refreshing credentials", "action", action, "code", apiErr.Code)
	fresh, rerr := c.refresh(ctx)
	if rerr != nil && in.GetBody != nil {
		return "", rerr
	}
	if rerr != nil || in.GetBody == nil || fresh == cred {
		// Sending the whole file again with the same credentials would be
		// refused the same way: a full-body send is repeated only for a
		// secret that changed.
		if rerr != nil {
			c.log.DebugContext(ctx, "nxcloud credentials refresh failed", "action", action, "error", rerr)
		}
		return "", err
	}
	body, gerr := in.GetBody(ctx)
	if gerr != nil {
		return "", fmt.Errorf("nxcloud %s: reopening the body for the retry after an authentication code: %w (first answer: %w)", action, gerr, err)
	}
	defer body.Close()
	return c.upload(ctx, action, fresh, frame, body, in.Size)
}

func (in *UploadInput) validate(types FileTypes) error {
	switch {
	case in.BusinessPhone == "":
		return errors.New("the business phone is empty: pass the merchant phone with country code")
	case strings.ContainsAny(in.BusinessPhone, "\r\n"):
		return errors.New("the business phone contains a line break: pass digits only")
	case in.FileName == "":
		return errors.New("the file name is empty: pass the file's base name")
	case in.Size < 0:
		return fmt.Errorf("the size %d is negative: pass the exact number of bytes Body yields", in.Size)
	case in.Body == nil:
		return errors.New("the body is nil: pass the file content as an io.Reader")
	}
	if t, params, err := mime.ParseMediaType(in.Type); err != nil || len(params) != 0 || !strings.Contains(t, "/") {
		return fmt.Errorf("the type %q is not a bare media type: pass one of %s", in.Type, strings.Join(types.MediaTypes(), ", "))
	}
	return nil
}

// multipartFrame is everything of the multipart body except the file bytes:
// prefix (three fields and the file part's header), then the file, then
// suffix (the closing boundary). The same bytes that are counted for
// Content-Length are the ones sent.
type multipartFrame struct {
	prefix, suffix []byte
	contentType    string
}

func (f multipartFrame) contentLength(size int64) int64 {
	return int64(len(f.prefix)) + size + int64(len(f.suffix))
}

// newMultipartFrame writes the framing with mime/multipart into memory (a few
// hundred bytes) under one random boundary.
func newMultipartFrame(in UploadInput) (multipartFrame, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range [...][2]string{
		{"messaging_product", MessagingProduct},
		{"business_phone", in.BusinessPhone},
		{"type", in.Type},
	} {
		if err := mw.WriteField(f[0], f[1]); err != nil {
			return multipartFrame{}, err
		}
	}
	h := make(textproto.MIMEHeader, 2)
	h.Set("Content-Disposition", fileDisposition("file", in.FileName))
	h.Set("Content-Type", in.Type)
	if _, err := mw.CreatePart(h); err != nil {
		return multipartFrame{}, err
	}
	prefix := bytes.Clone(buf.Bytes())
	buf.Reset()
	if err := mw.Close(); err != nil {
		return multipartFrame{}, err
	}
	return multipartFrame{prefix: prefix, suffix: bytes.Clone(buf.Bytes()), contentType: mw.FormDataContentType()}, nil
}

// fileDisposition builds the Content-Disposition of a file part. A plain
// printable-ASCII name goes into filename="..."; any other name (quotes,
// backslashes, control characters such as CR/LF, non-ASCII) gets an ASCII
// stand-in in filename and the exact name, percent-encoded as UTF-8, in
// filename* (RFC 7578 section 4.2, RFC 5987), which parsers that know it
// (mime/multipart among them) prefer.
func fileDisposition(field, name string) string {
	plain := true
	for i := 0; i < len(name); i++ {
		if ch := name[i]; ch < 0x20 || ch > 0x7e || ch == '"' || ch == '\\' {
			plain = false
			break
		}
	}
	if plain {
		return `form-data; name="` + field + `"; filename="` + name + `"`
	}
	var b strings.Builder
	b.WriteString(`form-data; name="` + field + `"; filename="`)
	for _, r := range name {
		if r >= 0x20 && r <= 0x7e && r != '"' && r != '\\' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	b.WriteString(`"; filename*=UTF-8''`)
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(name); i++ {
		ch := name[i]
		if isAttrChar(ch) {
			b.WriteByte(ch)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[ch>>4])
		b.WriteByte(hexDigits[ch&0x0f])
	}
	return b.String()
}

// isAttrChar reports an RFC 5987 attr-char, which needs no percent-encoding.
func isAttrChar(ch byte) bool {
	switch {
	case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9':
		return true
	}
	return strings.IndexByte("!#$&+-.^_`|~", ch) >= 0
}

// upload sends one multipart request to action with body as the file
// content.
func (c *Client) upload(ctx context.Context, action string, cred Credentials, frame multipartFrame, body io.Reader, size int64) (string, error) {
	file := &exactReader{r: body, size: size}
	reqBody := &trackedBody{Reader: io.MultiReader(bytes.NewReader(frame.prefix), file, bytes.NewReader(frame.suffix)), closed: make(chan struct{})}
	// Return only once the transport let go of the body: the caller may
	// close or reuse its reader as soon as we return.
	defer reqBody.wait(ctx)

	ts := Timestamp(c.now())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint(action), reqBody)
	if err != nil {
		reqBody.Close()
		return "", fmt.Errorf("nxcloud %s: building the request: %w", action, err)
	}
	req.ContentLength = frame.contentLength(size)
	c.setHeaders(req.Header, cred, action, ts, Sign(c.alg, cred, action, ts, nil))
	req.Header.Set("Content-Type", frame.contentType)

	start := time.Now()
	resp, err := c.hc.Do(req)
	if ferr := file.failure(); ferr != nil {
		if resp != nil {
			resp.Body.Close()
		}
		c.report(ctx, action, 1, 0, start, ferr)
		return "", fmt.Errorf("nxcloud %s: %w", action, ferr)
	}
	if err != nil {
		c.report(ctx, action, 1, 0, start, err)
		if ctx.Err() != nil || isNetTimeout(err) {
			return "", interrupted(ctx, action, err)
		}
		return "", fmt.Errorf("nxcloud %s: %w", action, err)
	}
	ans, err := readAnswer(action, resp)
	c.report(ctx, action, 1, resp.StatusCode, start, err)
	if err != nil {
		if ferr := file.failure(); ferr != nil {
			return "", fmt.Errorf("nxcloud %s: %w", action, ferr)
		}
		var respErr *ResponseError
		if _, isAPI := AsAPIError(err); !isAPI && !errors.As(err, &respErr) && (ctx.Err() != nil || isNetTimeout(err)) {
			return "", interrupted(ctx, action, err)
		}
		return "", err
	}
	// A success answered before the whole file was sent is not a success.
	if !file.complete() {
		return "", fmt.Errorf("nxcloud %s: NXCloud answered before the whole file was sent (%d of %d bytes): not counted as uploaded", action, file.n.Load(), size)
	}
	var d struct {
		ID *string `json:"id"`
	}
	if !isJSONObject(ans.data) || json.Unmarshal(ans.data, &d) != nil || d.ID == nil || *d.ID == "" {
		return "", &ResponseError{Action: action, HTTPStatus: ans.status, Excerpt: excerpt(ans.raw), Reason: "code 0 but data.id is missing or empty"}
	}
	return *d.ID, nil
}

// exactReader passes through exactly size bytes of r and fails if r yields
// fewer or more. It is read by the transport's goroutine and inspected by the
// caller's, hence the atomics.
type exactReader struct {
	r    io.Reader
	size int64
	n    atomic.Int64
	done atomic.Bool // r reached EOF right after size bytes
	err  atomic.Pointer[error]
}

func (e *exactReader) Read(p []byte) (int, error) {
	if errp := e.err.Load(); errp != nil {
		return 0, *errp
	}
	if e.done.Load() {
		return 0, io.EOF
	}
	n := e.n.Load()
	if n >= e.size {
		return 0, e.probeEnd()
	}
	if rest := e.size - n; int64(len(p)) > rest {
		p = p[:rest]
	}
	k, err := e.r.Read(p)
	n = e.n.Add(int64(k))
	switch {
	case err == io.EOF && n < e.size:
		return k, e.fail(fmt.Errorf("the file body ended after %d of %d bytes: check UploadInput.Size or the source: %w", n, e.size, io.ErrUnexpectedEOF))
	case err == io.EOF:
		e.done.Store(true)
		return k, nil // EOF on the next Read
	case err != nil:
		return k, e.fail(fmt.Errorf("reading the file body after %d of %d bytes: %w", n, e.size, err))
	}
	return k, nil
}

// probeEnd checks that r has nothing left after size bytes.
func (e *exactReader) probeEnd() error {
	var one [1]byte
	for range 100 {
		k, err := e.r.Read(one[:])
		if k > 0 {
			return e.fail(fmt.Errorf("the file body yields more than %d bytes: set UploadInput.Size to its exact length", e.size))
		}
		if err == io.EOF {
			e.done.Store(true)
			return io.EOF
		}
		if err != nil {
			return e.fail(fmt.Errorf("reading the file body after %d of %d bytes: %w", e.size, e.size, err))
		}
	}
	return e.fail(io.ErrNoProgress)
}

func (e *exactReader) fail(err error) error {
	e.err.CompareAndSwap(nil, &err)
	return *e.err.Load()
}

func (e *exactReader) failure() error {
	if errp := e.err.Load(); errp != nil {
		return *errp
	}
	return nil
}

func (e *exactReader) complete() bool { return e.done.Load() && e.failure() == nil }

// trackedBody is a request body that reports when the transport closed it.
type trackedBody struct {
	io.Reader
	once   sync.Once
	closed chan struct{}
}

func (t *trackedBody) Close() error {
	t.once.Do(func() { close(t.closed) })
	return nil
}

// wait blocks until the transport closed the body or ctx ended.
func (t *trackedBody) wait(ctx context.Context) {
	select {
	case <-t.closed:
	case <-ctx.Done():
	}
}
