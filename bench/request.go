package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

// NewJSONRequest builds a signed getMedia or deleteMedia request by hand, the
// way a caller without the bundle's client would: the JSON body, the signed
// headers (accessKey, ts, bizType, action, sign and, unless MD5, algorithm)
// and Content-Type. now is the signing time. It is the floor a warm get or
// delete invocation is compared with.
func NewJSONRequest(ctx context.Context, baseURL string, cred nxcloud.Credentials, alg nxcloud.Algorithm,
	action, phone, mediaID string, now time.Time) (*http.Request, error) {
	if action != nxcloud.ActionGetMedia && action != nxcloud.ActionDeleteMedia {
		return nil, fmt.Errorf("bench: action %q is not a JSON call: use %s or %s", action, nxcloud.ActionGetMedia, nxcloud.ActionDeleteMedia)
	}
	body, err := json.Marshal(struct {
		BusinessPhone    string `json:"business_phone"`
		MessagingProduct string `json:"messaging_product"`
		MediaID          string `json:"Media-ID"`
	}{phone, nxcloud.MessagingProduct, mediaID})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(baseURL, "/")+"/api/wa/"+action, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("bench: build the %s request (check the base url %q): %w", action, baseURL, err)
	}
	ts := nxcloud.Timestamp(now)
	setSigned(req.Header, cred, alg, action, ts, nxcloud.Sign(alg, cred, action, ts, body))
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

// setSigned sets the signed headers under their documented spelling.
func setSigned(h http.Header, cred nxcloud.Credentials, alg nxcloud.Algorithm, action, ts, sign string) {
	h["accessKey"] = []string{cred.AccessKey}
	h["ts"] = []string{ts}
	h["bizType"] = []string{nxcloud.BizTypeWhatsApp}
	h["action"] = []string{action}
	h["sign"] = []string{sign}
	if alg != "" && alg != nxcloud.MD5 {
		h["algorithm"] = []string{string(alg)}
	}
}

// Answer is the envelope NXCloud answers with.
type Answer struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

// Do sends req with hc, reads the whole answer and fails unless it is HTTP 200
// with code 0.
func Do(hc *http.Client, req *http.Request) (Answer, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Answer{}, err
	}
	var ans Answer
	if err := json.Unmarshal(b, &ans); err != nil {
		return Answer{}, fmt.Errorf("bench: nxcloud answered HTTP %d with a body that is not JSON: %.200q", resp.StatusCode, b)
	}
	if resp.StatusCode != http.StatusOK || ans.Code != 0 {
		return ans, fmt.Errorf("bench: nxcloud answered HTTP %d code %d: %s", resp.StatusCode, ans.Code, ans.Message)
	}
	return ans, nil
}

// UploadFrame is the multipart framing of an uploadTemplateFile request: the
// fields and the file part's header before the file, the closing boundary
// after it.
type UploadFrame struct {
	Prefix, Suffix []byte
	ContentType    string
}

// NewUploadFrame writes the framing of an upload of the file fileName of
// media type typ for the merchant phone.
func NewUploadFrame(phone, typ, fileName string) (UploadFrame, error) {
	if phone == "" || typ == "" || fileName == "" {
		return UploadFrame{}, errors.New("bench: an upload frame needs the business phone, the type and the file name")
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range [...][2]string{{"messaging_product", nxcloud.MessagingProduct}, {"business_phone", phone}, {"type", typ}} {
		if err := mw.WriteField(f[0], f[1]); err != nil {
			return UploadFrame{}, err
		}
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="`+strings.NewReplacer(`"`, "_", `\`, "_", "\r", "_", "\n", "_").Replace(fileName)+`"`)
	h.Set("Content-Type", typ)
	if _, err := mw.CreatePart(h); err != nil {
		return UploadFrame{}, err
	}
	prefix := bytes.Clone(buf.Bytes())
	buf.Reset()
	if err := mw.Close(); err != nil {
		return UploadFrame{}, err
	}
	return UploadFrame{Prefix: prefix, Suffix: bytes.Clone(buf.Bytes()), ContentType: mw.FormDataContentType()}, nil
}

// ContentLength is the length of the whole body around a file of size bytes.
func (f UploadFrame) ContentLength(size int64) int64 {
	return int64(len(f.Prefix)) + size + int64(len(f.Suffix))
}

// NewUploadRequest builds a signed uploadTemplateFile request whose body
// streams file (exactly size bytes) inside the frame, with an exact
// Content-Length. The multipart body is not signed, as the API convention
// says.
func NewUploadRequest(ctx context.Context, baseURL string, cred nxcloud.Credentials, alg nxcloud.Algorithm,
	frame UploadFrame, file io.Reader, size int64, now time.Time) (*http.Request, error) {
	body := io.MultiReader(bytes.NewReader(frame.Prefix), io.LimitReader(file, size), bytes.NewReader(frame.Suffix))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(baseURL, "/")+"/api/wa/"+nxcloud.ActionUploadTemplateFile, body)
	if err != nil {
		return nil, fmt.Errorf("bench: build the upload request (check the base url %q): %w", baseURL, err)
	}
	req.ContentLength = frame.ContentLength(size)
	ts := nxcloud.Timestamp(now)
	setSigned(req.Header, cred, alg, nxcloud.ActionUploadTemplateFile, ts, nxcloud.Sign(alg, cred, nxcloud.ActionUploadTemplateFile, ts, nil))
	req.Header.Set("Content-Type", frame.ContentType)
	return req, nil
}
