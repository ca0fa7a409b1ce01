package nxcloud_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
)

// onlyReader hides every method but Read, so that neither the client nor
// net/http can learn the length from the reader's type.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestUploadTemplateFile(t *testing.T) {
	t.Parallel()
	sizes := []int{1, 4095, 100_000, 3<<20 + 7}
	for _, size := range sizes {
		t.Run(strings.ReplaceAll(time.Duration(size).String(), "ns", "B"), func(t *testing.T) {
			t.Parallel()
			srv := nxcloudtest.NewTestServer(t)
			content := randomBytes(size, uint64(size))
			id, err := newTestClient(t, srv).UploadTemplateFile(context.Background(), nxcloud.UploadInput{
				BusinessPhone: testPhone, Type: "video/mp4", FileName: "clip.mp4",
				Size: int64(size), Body: onlyReader{bytes.NewReader(content)},
			})
			if err != nil {
				t.Fatalf("UploadTemplateFile: %v", err)
			}
			m, ok := srv.Media(id)
			if !ok {
				t.Fatalf("id %q not stored by the server", id)
			}
			if m.Size != int64(size) || m.SHA256 != sha256Hex(content) || m.FileName != "clip.mp4" || m.MimeType != "video/mp4" || m.BusinessPhone != testPhone {
				t.Errorf("stored media = %+v", m)
			}
			calls := srv.Calls(nxcloud.ActionUploadTemplateFile)
			if len(calls) != 1 {
				t.Fatalf("server saw %d calls, want 1", len(calls))
			}
			c := calls[0]
			if c.ContentLength <= int64(size) || c.ContentLength != c.BodyBytes {
				t.Errorf("Content-Length %d, body bytes received %d: want them equal and above the file size", c.ContentLength, c.BodyBytes)
			}
			if len(c.TransferEncoding) != 0 {
				t.Errorf("Transfer-Encoding %v, want none (exact Content-Length)", c.TransferEncoding)
			}
			if !c.Verified || c.Header.Get("action") != nxcloud.ActionUploadTemplateFile || c.Header.Get("bizType") != "2" {
				t.Errorf("call verified=%v headers=%v", c.Verified, c.Header)
			}
			if !strings.HasPrefix(c.Header.Get("Content-Type"), "multipart/form-data; boundary=") {
				t.Errorf("Content-Type = %q", c.Header.Get("Content-Type"))
			}
			wantFields := map[string]string{"messaging_product": "whatsapp", "business_phone": testPhone, "type": "video/mp4"}
			for k, v := range wantFields {
				if c.Fields[k] != v {
					t.Errorf("field %s = %q, want %q", k, c.Fields[k], v)
				}
			}
			if c.FileType != "video/mp4" || c.FileSHA256 != sha256Hex(content) {
				t.Errorf("file part type %q sha256 %s", c.FileType, c.FileSHA256)
			}
		})
	}
}

func TestUploadFileNames(t *testing.T) {
	t.Parallel()
	names := []string{
		"menu.pdf",
		`quote"d.pdf`,
		`back\slash.pdf`,
		"line\r\nbreak.pdf",
		"Content-Type: text/html\r\n\r\n.pdf",
		"tab\there.pdf",
		"中文菜单.pdf",
		"emoji 😀 name.png",
		"semi;colon=equals.pdf",
		"percent%41%zz.pdf",
		"it's *starry*.pdf",
		"dir/like/path.pdf",
		"  spaces  .pdf",
		"\xff\xfe invalid utf8.pdf",
		strings.Repeat("long", 200) + ".pdf",
	}
	srv := nxcloudtest.NewTestServer(t)
	c := newTestClient(t, srv)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			id, err := c.UploadTemplateFile(context.Background(), nxcloud.UploadInput{
				BusinessPhone: testPhone, Type: "application/pdf", FileName: name, Size: 3, Body: strings.NewReader("pdf"),
			})
			if err != nil {
				t.Fatalf("UploadTemplateFile: %v", err)
			}
			m, _ := srv.Media(id)
			if m.FileName != name {
				t.Errorf("server parsed file name %q, want %q", m.FileName, name)
			}
			if !utf8.ValidString(name) {
				return // JSON cannot carry it back unchanged
			}
			got, err := c.GetMedia(context.Background(), testPhone, id)
			if err != nil || got.FileName != name {
				t.Errorf("GetMedia file name = %q (%v), want %q", got.FileName, err, name)
			}
		})
	}
}

func TestUploadBodySizeMismatch(t *testing.T) {
	t.Parallel()
	content := randomBytes(100_000, 7)
	tests := []struct {
		name    string
		size    int64
		body    io.Reader
		wantEOF bool
	}{
		{"short body", 150_000, onlyReader{bytes.NewReader(content)}, true},
		{"empty body", 10, onlyReader{bytes.NewReader(nil)}, true},
		{"long body", 50_000, onlyReader{bytes.NewReader(content)}, false},
		{"one byte too many", 99_999, bytes.NewReader(content), false},
		{"failing reader", 100_000, io.MultiReader(bytes.NewReader(content[:500]), iotestErrReader{}), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := nxcloudtest.NewTestServer(t)
			id, err := newTestClient(t, srv).UploadTemplateFile(context.Background(), nxcloud.UploadInput{
				BusinessPhone: testPhone, Type: "image/jpeg", FileName: "a.jpg", Size: tc.size, Body: tc.body,
			})
			if err == nil || id != "" {
				t.Fatalf("UploadTemplateFile = %q, %v; want an error", id, err)
			}
			if tc.wantEOF != errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("err = %v; io.ErrUnexpectedEOF in chain: want %v", err, tc.wantEOF)
			}
			if !strings.Contains(err.Error(), "file body") {
				t.Errorf("error %q does not say the file body is at fault", err)
			}
			if ups := srv.Uploads(); len(ups) != 0 {
				t.Errorf("server stored %d uploads, want none", len(ups))
			}
		})
	}
}

var errRead = errors.New("s3 stream reset")

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errRead }

func TestUploadAuthRetry(t *testing.T) {
	t.Parallel()
	content := randomBytes(300_000, 11)
	tests := []struct {
		name      string
		getBody   bool
		rotated   bool // the refresh brings the new credentials
		wantOK    bool
		wantCalls int
	}{
		{"with GetBody", true, true, true, 2},
		{"without GetBody", false, true, false, 1},
		{"secret unchanged by the refresh", true, false, false, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := nxcloudtest.NewTestServer(t)
			old := srv.Credentials()
			rotated := nxcloud.Credentials{AccessKey: "new-key", AccessSecret: "new-secret"}
			srv.SetCredentials(rotated.AccessKey, rotated.AccessSecret)
			p := &fakeProvider{current: old, next: &rotated}
			if !tc.rotated {
				p.next = &old
			}
			in := nxcloud.UploadInput{
				BusinessPhone: testPhone, Type: "image/png", FileName: "a.png", Size: int64(len(content)), Body: onlyReader{bytes.NewReader(content)},
			}
			opened := 0
			if tc.getBody {
				in.GetBody = func(context.Context) (io.ReadCloser, error) {
					opened++
					return io.NopCloser(bytes.NewReader(content)), nil
				}
			}
			id, err := newTestClient(t, srv, nxcloud.WithCredentials(p)).UploadTemplateFile(context.Background(), in)
			if tc.wantOK {
				if err != nil {
					t.Fatalf("UploadTemplateFile: %v", err)
				}
				if m, _ := srv.Media(id); m.SHA256 != sha256Hex(content) {
					t.Errorf("stored sha256 %s, want %s", m.SHA256, sha256Hex(content))
				}
				if opened != 1 {
					t.Errorf("GetBody called %d times, want 1", opened)
				}
			} else if !isCode(err, nxcloudtest.CodeUnknownAccessKey) {
				t.Fatalf("err = %v; want the 1001 authentication error", err)
			} else if opened != 0 {
				t.Errorf("GetBody called %d times: the file must not be sent again", opened)
			}
			calls := srv.Calls(nxcloud.ActionUploadTemplateFile)
			if len(calls) != tc.wantCalls {
				t.Fatalf("server saw %d calls, want %d", len(calls), tc.wantCalls)
			}
			if last := calls[len(calls)-1]; tc.wantOK && last.Header.Get("accessKey") != rotated.AccessKey {
				t.Errorf("retry sent the old access key")
			}
			if _, refreshes := p.counts(); refreshes != 1 {
				t.Errorf("Refresh called %d times, want 1", refreshes)
			}
		})
	}
}

func TestUploadNotRetried(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		fault nxcloudtest.Fault
		check func(error) bool
	}{
		{"503", nxcloudtest.Fault{HTTPStatus: 503}, func(err error) bool {
			var re *nxcloud.ResponseError
			return errors.As(err, &re) && re.Temporary()
		}},
		{"dropped connection", nxcloudtest.Fault{DropConnection: true}, func(err error) bool { return err != nil && !errors.Is(err, nxcloud.ErrTimeout) }},
		{"9001", nxcloudtest.Fault{Code: 9001}, func(err error) bool { return isCode(err, 9001) }},
		{"no id", nxcloudtest.Fault{Body: `{"code":0,"data":{},"message":"Request successful"}`}, func(err error) bool {
			var re *nxcloud.ResponseError
			return errors.As(err, &re) && strings.Contains(re.Reason, "data.id")
		}},
		{"empty id", nxcloudtest.Fault{Body: `{"code":0,"data":{"id":""},"message":"Request successful"}`}, func(err error) bool {
			var re *nxcloud.ResponseError
			return errors.As(err, &re)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := nxcloudtest.NewTestServer(t)
			srv.Inject(nxcloud.ActionUploadTemplateFile, tc.fault)
			content := randomBytes(200_000, 3)
			_, err := newTestClient(t, srv).UploadTemplateFile(context.Background(), nxcloud.UploadInput{
				BusinessPhone: testPhone, Type: "image/png", FileName: "a.png", Size: int64(len(content)), Body: bytes.NewReader(content),
				GetBody: func(context.Context) (io.ReadCloser, error) {
					t.Error("GetBody called for a non-authentication failure")
					return nil, errors.New("unexpected")
				},
			})
			if !tc.check(err) {
				t.Errorf("err = %v", err)
			}
			if got := len(srv.Calls(nxcloud.ActionUploadTemplateFile)); got != 1 {
				t.Errorf("server saw %d calls, want 1 (uploads are not retried)", got)
			}
		})
	}
}

func TestUploadRejections(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		in    nxcloud.UploadInput
		code  int
		perm  bool
		phone []string
	}{
		{"unsupported type", nxcloud.UploadInput{BusinessPhone: testPhone, Type: "image/gif", FileName: "a.gif", Size: 1, Body: strings.NewReader("x")}, 9000, true, nil},
		{"empty file", nxcloud.UploadInput{BusinessPhone: testPhone, Type: "image/png", FileName: "a.png", Size: 0, Body: strings.NewReader("")}, 9000, true, nil},
		{"unbound phone", nxcloud.UploadInput{BusinessPhone: "4915112345678", Type: "image/png", FileName: "a.png", Size: 1, Body: strings.NewReader("x")}, 9006, true, []string{"4915112345678"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := nxcloudtest.NewTestServer(t, nxcloudtest.WithUnboundPhones(tc.phone...))
			_, err := newTestClient(t, srv).UploadTemplateFile(context.Background(), tc.in)
			e, ok := nxcloud.AsAPIError(err)
			if !ok || e.Code != tc.code || e.IsPermanent() != tc.perm {
				t.Errorf("err = %v; want APIError %d", err, tc.code)
			}
		})
	}
}

func TestUploadTimeout(t *testing.T) {
	t.Parallel()
	srv := nxcloudtest.NewTestServer(t)
	srv.Inject(nxcloud.ActionUploadTemplateFile, nxcloudtest.Fault{Delay: 3 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := newTestClient(t, srv).UploadTemplateFile(ctx, nxcloud.UploadInput{
		BusinessPhone: testPhone, Type: "image/png", FileName: "a.png", Size: 3, Body: strings.NewReader("png"),
	})
	if !errors.Is(err, nxcloud.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v; want ErrTimeout and context.DeadlineExceeded", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("UploadTemplateFile took %v past its deadline", time.Since(start))
	}
}
