package nxcloud_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"regexp"
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

// destinations are the two uploads, which share one path in the client: the
// tests that hold for both run for each.
var destinations = []struct {
	action string
	upload func(*nxcloud.Client, context.Context, nxcloud.UploadInput) (string, error)
}{
	{nxcloud.ActionUploadTemplateFile, (*nxcloud.Client).UploadTemplateFile},
	{nxcloud.ActionUploadMedia, (*nxcloud.Client).UploadMedia},
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
		body    func() io.Reader
		wantEOF bool
	}{
		{"short body", 150_000, func() io.Reader { return onlyReader{bytes.NewReader(content)} }, true},
		{"empty body", 10, func() io.Reader { return onlyReader{bytes.NewReader(nil)} }, true},
		{"long body", 50_000, func() io.Reader { return onlyReader{bytes.NewReader(content)} }, false},
		{"one byte too many", 99_999, func() io.Reader { return bytes.NewReader(content) }, false},
		{"failing reader", 100_000, func() io.Reader { return io.MultiReader(bytes.NewReader(content[:500]), iotestErrReader{}) }, false},
	}
	for _, dest := range destinations {
		for _, tc := range tests {
			t.Run(dest.action+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				srv := nxcloudtest.NewTestServer(t)
				id, err := dest.upload(newTestClient(t, srv), context.Background(), nxcloud.UploadInput{
					BusinessPhone: testPhone, Type: "image/jpeg", FileName: "a.jpg", Size: tc.size, Body: tc.body(),
				})
				if err == nil || id != "" {
					t.Fatalf("%s = %q, %v; want an error", dest.action, id, err)
				}
				if tc.wantEOF != errors.Is(err, io.ErrUnexpectedEOF) {
					t.Errorf("err = %v; io.ErrUnexpectedEOF in chain: want %v", err, tc.wantEOF)
				}
				if !strings.Contains(err.Error(), "file body") || !strings.Contains(err.Error(), dest.action) {
					t.Errorf("error %q does not say the file body of %s is at fault", err, dest.action)
				}
				if ups := srv.Uploads(); len(ups) != 0 {
					t.Errorf("server stored %d uploads, want none", len(ups))
				}
			})
		}
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
	for _, dest := range destinations {
		for _, tc := range tests {
			t.Run(dest.action+"/"+tc.name, func(t *testing.T) {
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
				id, err := dest.upload(newTestClient(t, srv, nxcloud.WithCredentials(p)), context.Background(), in)
				if tc.wantOK {
					if err != nil {
						t.Fatalf("%s: %v", dest.action, err)
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
				calls := srv.Calls(dest.action)
				if len(calls) != tc.wantCalls || len(srv.Calls("")) != tc.wantCalls {
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
	for _, dest := range destinations {
		for _, tc := range tests {
			t.Run(dest.action+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				srv := nxcloudtest.NewTestServer(t)
				srv.Inject(dest.action, tc.fault)
				content := randomBytes(200_000, 3)
				_, err := dest.upload(newTestClient(t, srv), context.Background(), nxcloud.UploadInput{
					BusinessPhone: testPhone, Type: "image/png", FileName: "a.png", Size: int64(len(content)), Body: bytes.NewReader(content),
					GetBody: func(context.Context) (io.ReadCloser, error) {
						t.Error("GetBody called for a non-authentication failure")
						return nil, errors.New("unexpected")
					},
				})
				if !tc.check(err) {
					t.Errorf("err = %v", err)
				}
				if got := len(srv.Calls(dest.action)); got != 1 {
					t.Errorf("server saw %d calls, want 1 (uploads are not retried)", got)
				}
			})
		}
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
		{"message media type", nxcloud.UploadInput{BusinessPhone: testPhone, Type: "audio/mpeg", FileName: "a.mp3", Size: 1, Body: strings.NewReader("x")}, 9000, true, nil},
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

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// An uploaded message media file is what the other actions serve: getMedia
// answers its type, name and a url with its bytes, deleteMedia removes it.
func TestUploadMedia(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typ, name string
		size      int
	}{
		{"image/png", "photo.png", 4095},
		{"image/jpeg", "largest.jpg", 5 << 20},
		{"audio/ogg", "voice.opus", 20_000},
		{"video/3gp", "clip.3gp", 100_000},
		{"application/vnd.openxmlformats-officedocument.wordprocessingml.document", "invoice.docx", 3 << 20},
		{"text/plain", "note.txt", 1},
		{"image/webp", "largest sticker.webp", 100 << 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := nxcloudtest.NewTestServer(t, nxcloudtest.WithKeepContent(true))
			c := newTestClient(t, srv)
			content := randomBytes(tc.size, uint64(tc.size))
			id, err := c.UploadMedia(context.Background(), nxcloud.UploadInput{
				BusinessPhone: testPhone, Type: tc.typ, FileName: tc.name, Size: int64(tc.size), Body: onlyReader{bytes.NewReader(content)},
			})
			if err != nil {
				t.Fatalf("UploadMedia: %v", err)
			}
			if !uuidRE.MatchString(id) {
				t.Errorf("id %q is not a UUID, the form of message media ids", id)
			}
			if m, _ := srv.Media(id); m.Action != nxcloud.ActionUploadMedia || m.Size != int64(tc.size) || m.SHA256 != sha256Hex(content) || m.MimeType != tc.typ {
				t.Errorf("stored media = action %q type %q size %d", m.Action, m.MimeType, m.Size)
			}
			if n := len(srv.Calls(nxcloud.ActionUploadTemplateFile)); n != 0 {
				t.Errorf("server saw %d uploadTemplateFile calls, want 0", n)
			}
			calls := srv.Calls(nxcloud.ActionUploadMedia)
			if len(calls) != 1 {
				t.Fatalf("server saw %d uploadMedia calls, want 1", len(calls))
			}
			call := calls[0]
			if !call.Verified || call.Path != "/api/wa/uploadMedia" || call.Header.Get("action") != nxcloud.ActionUploadMedia {
				t.Errorf("call verified=%v path=%s action=%q", call.Verified, call.Path, call.Header.Get("action"))
			}
			if call.ContentLength <= int64(tc.size) || call.ContentLength != call.BodyBytes || len(call.TransferEncoding) != 0 {
				t.Errorf("Content-Length %d, body bytes %d, Transfer-Encoding %v: want an exact length", call.ContentLength, call.BodyBytes, call.TransferEncoding)
			}
			want := map[string]string{"messaging_product": "whatsapp", "business_phone": testPhone, "type": tc.typ}
			if !maps.Equal(call.Fields, want) || call.FileName != tc.name || call.FileType != tc.typ {
				t.Errorf("fields %v file %q (%s), want %v", call.Fields, call.FileName, call.FileType, want)
			}

			m, err := c.GetMedia(context.Background(), testPhone, id)
			if err != nil || m.MimeType != tc.typ || m.FileName != tc.name {
				t.Fatalf("GetMedia = %+v, %v", m, err)
			}
			resp, err := http.Get(m.URL)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(got, content) {
				t.Errorf("GET url: HTTP %d, %d bytes (%v), want the %d bytes uploaded", resp.StatusCode, len(got), err, len(content))
			}
			if err := c.DeleteMedia(context.Background(), testPhone, id); err != nil {
				t.Fatalf("DeleteMedia: %v", err)
			}
			if _, err := c.GetMedia(context.Background(), testPhone, id); !isCode(err, 9000) {
				t.Errorf("GetMedia after DeleteMedia: %v, want code 9000", err)
			}
		})
	}
}

// NXCloud refuses with 9000 what its uploadMedia table does not take; the
// file is sent whole all the same, so callers check the table first.
func TestUploadMediaRejected(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, typ string
		size      int
	}{
		{"image over 5 MB", "image/png", 5<<20 + 1},
		{"sticker over 100 KB", "image/webp", 100<<10 + 1},
		{"type not in the table", "image/gif", 10},
		{"template-only type", "image/jpg", 10},
		{"alias not resolved", "video/3gpp", 10},
		{"upper case", "IMAGE/PNG", 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := nxcloudtest.NewTestServer(t)
			_, err := newTestClient(t, srv).UploadMedia(context.Background(), nxcloud.UploadInput{
				BusinessPhone: testPhone, Type: tc.typ, FileName: "f", Size: int64(tc.size), Body: &patternReader{n: int64(tc.size)},
			})
			if e, ok := nxcloud.AsAPIError(err); !ok || e.Code != 9000 || !e.IsPermanent() || e.Action != nxcloud.ActionUploadMedia {
				t.Errorf("err = %v; want the uploadMedia APIError 9000", err)
			}
			if ups := srv.Uploads(); len(ups) != 0 {
				t.Errorf("server stored %d uploads, want none", len(ups))
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
