package s3archive_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/miniotest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/archive"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/archive/download"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/archive/s3archive"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

func TestMain(m *testing.M) { os.Exit(miniotest.Main(m)) }

const (
	phone  = "8615812341795"
	prefix = "inbound/"
	limit  = 16 << 20 // MAX_UPLOAD_BYTES of these tests
)

// fakeMedia is a function-field fake of getMedia that counts its calls.
type fakeMedia struct {
	media func(id string) (*nxcloud.Media, error)
	calls atomic.Int32
}

func (f *fakeMedia) GetMedia(_ context.Context, _, id string) (*nxcloud.Media, error) {
	f.calls.Add(1)
	return f.media(id)
}

// fixture is an Archiver on a fresh versioned MinIO bucket, downloading
// from a local file server whose handler a test sets.
type fixture struct {
	bucket string
	cli    *s3.Client
	arch   *s3archive.Archiver
	media  *fakeMedia
	files  *httptest.Server
	serve  func(w http.ResponseWriter, r *http.Request)
	gets   atomic.Int32
	mu     sync.Mutex
	mime   string
	name   string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := miniotest.Shared(t)
	f := &fixture{bucket: srv.NewBucket(t, true), mime: "image/jpeg", name: "photo.jpg"}
	f.cli = srv.Client(s3archive.S3Options(true, true))
	f.files = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.gets.Add(1)
		f.mu.Lock()
		serve := f.serve
		f.mu.Unlock()
		serve(w, r)
	}))
	t.Cleanup(f.files.Close)
	f.media = &fakeMedia{media: func(id string) (*nxcloud.Media, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		return &nxcloud.Media{MimeType: f.mime, FileName: f.name, URL: f.files.URL + "/files/" + url.PathEscape(id) + "?Signature=sig"}, nil
	}}
	hc := download.NewClient(download.Config{Policy: download.PolicyFor(f.files.URL), Timeout: 5 * time.Second})
	f.arch = s3archive.New(s3archive.Config{Bucket: f.bucket, Prefix: prefix, MaxBytes: limit}, f.media, f.cli, hc)
	return f
}

// handle sets the file server's handler.
func (f *fixture) handle(h func(w http.ResponseWriter, r *http.Request)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.serve = h
}

// serveFile serves content: with its Content-Length, or chunked.
func (f *fixture) serveFile(content []byte, chunked bool) {
	f.handle(func(w http.ResponseWriter, _ *http.Request) {
		if !chunked {
			w.Header().Set("Content-Length", strconv.Itoa(len(content)))
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		for b := content; len(b) > 0; b = b[min(len(b), 64<<10):] {
			_, _ = w.Write(b[:min(len(b), 64<<10)])
			if chunked {
				w.(http.Flusher).Flush()
			}
		}
	})
}

func (f *fixture) archive(t *testing.T, ctx context.Context, id string) (*archive.Object, bool, error) {
	t.Helper()
	if ctx == nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
	}
	return f.arch.Archive(ctx, phone, id)
}

// stored returns the bytes and head of the current object at key, or nil.
func (f *fixture) stored(t *testing.T, key string) ([]byte, *s3.GetObjectOutput) {
	t.Helper()
	out, err := f.cli.GetObject(t.Context(), &s3.GetObjectInput{Bucket: &f.bucket, Key: &key})
	if err != nil {
		return nil, nil
	}
	defer func() { _ = out.Body.Close() }()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b, out
}

// nothingStored fails unless the bucket holds no object version and no
// multipart upload.
func (f *fixture) nothingStored(t *testing.T) {
	t.Helper()
	v, err := f.cli.ListObjectVersions(t.Context(), &s3.ListObjectVersionsInput{Bucket: &f.bucket})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Versions) != 0 || len(v.DeleteMarkers) != 0 {
		t.Errorf("%d versions stored, want none", len(v.Versions))
	}
	u, err := f.cli.ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: &f.bucket})
	if err != nil {
		t.Fatal(err)
	}
	if len(u.Uploads) != 0 {
		t.Errorf("%d multipart uploads left behind, want none", len(u.Uploads))
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func TestArchiveThenAgain(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, id, mime, fileName, wantKey, wantType, wantCD string
		size                                                int
		chunked                                             bool
	}{
		{name: "jpeg with its length", id: "wamid-1", mime: "image/jpeg", fileName: "photo.jpg", size: 200 << 10,
			wantKey: prefix + phone + "/wamid-1", wantType: "image/jpeg", wantCD: "attachment; filename=photo.jpg"},
		{name: "id with a slash, unicode name", id: "4:ab/cd é", mime: "application/PDF; charset=binary", fileName: "menú «1».pdf", size: 3000,
			wantKey: prefix + phone + "/4:ab%2Fcd%20%C3%A9", wantType: "application/pdf; charset=binary",
			wantCD: `attachment; filename="men_ _1_.pdf"; filename*=UTF-8''men%C3%BA%20%C2%AB1%C2%BB.pdf`},
		{name: "spaces around the id", id: " sp ", mime: "image/png", fileName: "a.png", size: 10,
			wantKey: prefix + phone + "/%20sp%20", wantType: "image/png", wantCD: "attachment; filename=a.png"},
		{name: "not a media type", id: "m-2", mime: "jpeg", fileName: "", size: 10,
			wantKey: prefix + phone + "/m-2", wantType: "application/octet-stream", wantCD: "attachment"},
		{name: "chunked, one part", id: "m-3", mime: "audio/ogg; codecs=opus", fileName: "voice.ogg", size: 100 << 10, chunked: true,
			wantKey: prefix + phone + "/m-3", wantType: "audio/ogg; codecs=opus", wantCD: "attachment; filename=voice.ogg"},
		{name: "chunked, multipart", id: "m-4", mime: "video/mp4", fileName: `clip "x".mp4`, size: int(s3archive.PartSize)*2 + 12345, chunked: true,
			wantKey: prefix + phone + "/m-4", wantType: "video/mp4", wantCD: `attachment; filename="clip \"x\".mp4"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.mime, f.name = tc.mime, tc.fileName
			content := randomBytes(tc.size)
			f.serveFile(content, tc.chunked)
			before := time.Now().UTC().Truncate(time.Second)
			obj, created, err := f.archive(t, nil, tc.id)
			if err != nil || !created {
				t.Fatalf("first archive: created %v, %v", created, err)
			}
			want := archive.Object{MediaID: tc.id, BusinessPhone: phone, Bucket: f.bucket, Key: tc.wantKey, VersionID: obj.VersionID,
				Size: int64(tc.size), Type: tc.wantType, FileName: tc.fileName, ArchivedAt: obj.ArchivedAt}
			if *obj != want || obj.VersionID == "" || obj.ArchivedAt.Before(before) || obj.ArchivedAt.After(time.Now()) {
				t.Errorf("document = %+v\nwant %+v", *obj, want)
			}
			body, out := f.stored(t, tc.wantKey)
			if !bytes.Equal(body, content) {
				t.Fatalf("stored %d bytes, not the %d downloaded", len(body), len(content))
			}
			if got := aws.ToString(out.ContentType); got != tc.wantType {
				t.Errorf("Content-Type = %q, want %q", got, tc.wantType)
			}
			cd := aws.ToString(out.ContentDisposition)
			if cd != tc.wantCD {
				t.Errorf("Content-Disposition = %q, want %q", cd, tc.wantCD)
			}
			if _, params, err := mime.ParseMediaType(cd); tc.fileName != "" && (err != nil || params["filename"] != tc.fileName) {
				t.Errorf("Content-Disposition %q reads back as %q (%v), want %q", cd, params["filename"], err, tc.fileName)
			}
			if got := out.Metadata[s3archive.MetaBusinessPhone]; got != phone {
				t.Errorf("metadata business-phone = %q", got)
			}
			dec := new(mime.WordDecoder)
			id, _ := dec.DecodeHeader(out.Metadata[s3archive.MetaMediaID])
			name, _ := dec.DecodeHeader(out.Metadata[s3archive.MetaFileName])
			if id != tc.id || name != tc.fileName {
				t.Errorf("metadata media-id %q, file-name %q: want %q, %q", id, name, tc.id, tc.fileName)
			}

			// Again: the same document, read from the object, without
			// NXCloud or a download.
			calls, gets := f.media.calls.Load(), f.gets.Load()
			again, created, err := f.archive(t, nil, tc.id)
			if err != nil || created || *again != *obj {
				t.Fatalf("second archive: created %v, %v, %+v\nwant %+v", created, err, again, obj)
			}
			if f.media.calls.Load() != calls || f.gets.Load() != gets {
				t.Errorf("the second archive called getMedia or downloaded")
			}
		})
	}
}

func TestArchiveStoresNothingPartial(t *testing.T) {
	t.Parallel()
	content := randomBytes(300 << 10)
	tests := []struct {
		name     string
		serve    func(w http.ResponseWriter, r *http.Request)
		kind     archive.Kind
		wantMsg  string
		deadline time.Duration
	}{
		{name: "404", serve: func(w http.ResponseWriter, _ *http.Request) { http.NotFound(w, nil) },
			kind: archive.Download, wantMsg: "gave HTTP 404 Not Found instead of the file"},
		{name: "500", serve: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) },
			kind: archive.Download, wantMsg: "HTTP 500"},
		{name: "206 partial", serve: func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusPartialContent)
			_, _ = w.Write(content[:10])
		},
			kind: archive.Download, wantMsg: "HTTP 206"},
		{name: "empty", serve: func(w http.ResponseWriter, _ *http.Request) { w.Header().Set("Content-Length", "0") },
			kind: archive.Download, wantMsg: "an empty file"},
		{name: "empty, chunked", serve: func(w http.ResponseWriter, _ *http.Request) { w.(http.Flusher).Flush() },
			kind: archive.Download, wantMsg: "an empty file"},
		{name: "short body", serve: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(content)))
			_, _ = w.Write(content[:100<<10])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}, kind: archive.Download, wantMsg: fmt.Sprintf("ended the file after 102400 of its %d bytes", len(content))},
		{name: "chunked, broken off", serve: func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write(content[:100<<10])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}, kind: archive.Download, wantMsg: "broke off the file after 102400 bytes"},
		{name: "over the limit by Content-Length", serve: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(limit+1))
			_, _ = w.Write(make([]byte, 1<<10))
		}, kind: archive.TooLarge, wantMsg: fmt.Sprintf("has %d bytes (its Content-Length), more than MAX_UPLOAD_BYTES (%d)", limit+1, limit)},
		{name: "over the limit while counting, multipart aborted", serve: func(w http.ResponseWriter, _ *http.Request) {
			for range limit/(1<<20) + 1 {
				_, _ = w.Write(make([]byte, 1<<20))
				w.(http.Flusher).Flush()
			}
		}, kind: archive.TooLarge, wantMsg: fmt.Sprintf("passed MAX_UPLOAD_BYTES (%d bytes) while it downloaded", limit)},
		{name: "redirect to link-local", serve: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://[fe80::1%25lo]:9/latest/meta-data/", http.StatusFound)
		}, kind: archive.Download, wantMsg: "leads to fe80::1, a link-local address"},
		{name: "redirect loop", serve: func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, r.URL.Path, http.StatusFound) },
			kind: archive.Download, wantMsg: "more than 5 redirects"},
		{name: "past the time budget", deadline: 4 * time.Second, serve: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(content)))
			for i := 0; r.Context().Err() == nil && i < len(content); i += 1024 {
				_, _ = w.Write(content[i : i+1024])
				w.(http.Flusher).Flush()
				time.Sleep(100 * time.Millisecond)
			}
		}, kind: archive.Timeout, wantMsg: "did not download within the function's time budget"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.handle(tc.serve)
			ctx, cancel := context.WithTimeout(context.Background(), cmp(tc.deadline, 30*time.Second))
			defer cancel()
			start := time.Now()
			obj, _, err := f.arch.Archive(ctx, phone, "m-"+strings.ReplaceAll(tc.name, " ", "-"))
			e, ok := archive.AsError(err)
			if !ok || e.Kind != tc.kind || !strings.Contains(e.Message, tc.wantMsg) || !strings.Contains(e.Message, "nothing was stored") {
				t.Fatalf("Archive = %+v, %v; want an archive.Error of kind %d saying %q", obj, err, tc.kind, tc.wantMsg)
			}
			if strings.Contains(e.Message, "Signature=") || strings.Contains(e.Message, f.files.URL) {
				t.Errorf("the message leaks the URL: %s", e.Message)
			}
			if tc.deadline > 0 && time.Since(start) > tc.deadline {
				t.Errorf("answered after %s, past the %s deadline", time.Since(start), tc.deadline)
			}
			f.nothingStored(t)
		})
	}
}

func cmp(a, b time.Duration) time.Duration {
	if a > 0 {
		return a
	}
	return b
}

// TestConcurrentArchives: archives of one id at once store one version, and
// every one answers the same document.
func TestConcurrentArchives(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	content := randomBytes(1 << 20)
	f.serveFile(content, false)
	const n = 6
	var wg sync.WaitGroup
	objs, created, errs := make([]*archive.Object, n), make([]bool, n), make([]error, n)
	for i := range n {
		wg.Go(func() { objs[i], created[i], errs[i] = f.archive(t, nil, "race-1") })
	}
	wg.Wait()
	made := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("archive %d: %v", i, errs[i])
		}
		if created[i] {
			made++
		}
		if *objs[i] != *objs[0] {
			t.Errorf("archive %d answered %+v, archive 0 %+v", i, *objs[i], *objs[0])
		}
	}
	if made != 1 {
		t.Errorf("%d archives say they stored the file, want 1", made)
	}
	v, err := f.cli.ListObjectVersions(t.Context(), &s3.ListObjectVersionsInput{Bucket: &f.bucket})
	if err != nil || len(v.Versions) != 1 {
		t.Fatalf("versions: %d, %v; want exactly one", len(v.Versions), err)
	}
}

func TestArchiveRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.serveFile([]byte("x"), false)
	long := strings.Repeat("é", 200) // 400 bytes, 1200 escaped
	if _, _, err := f.archive(t, nil, long); !isKind(err, archive.Input) || !strings.Contains(err.Error(), "S3 keys have at most 1024") {
		t.Errorf("an id too long for a key: %v", err)
	}
	if f.media.calls.Load() != 0 {
		t.Error("getMedia was called for an id that cannot be archived")
	}
	f.media.media = func(string) (*nxcloud.Media, error) {
		return &nxcloud.Media{MimeType: "image/png", URL: "file:///etc/passwd"}, nil
	}
	var re *nxcloud.ResponseError
	if _, _, err := f.archive(t, nil, "m-file"); !errors.As(err, &re) {
		t.Errorf("a file: url from getMedia: %v, want an *nxcloud.ResponseError", err)
	}
	f.media.media = func(string) (*nxcloud.Media, error) {
		return nil, &nxcloud.APIError{Action: nxcloud.ActionGetMedia, Code: 9000, Message: "Parameter exception"}
	}
	if _, _, err := f.archive(t, nil, "m-unknown"); func() bool { _, ok := nxcloud.AsAPIError(err); return !ok }() {
		t.Errorf("NXCloud's 9000: %v, want the APIError as is", err)
	}
	f.nothingStored(t)
	if f.gets.Load() != 0 {
		t.Errorf("%d downloads for refused archives", f.gets.Load())
	}
}

// stallingS3 holds the second UploadPart until its context ends.
type stallingS3 struct {
	s3archive.S3API
	parts atomic.Int32
}

func (s *stallingS3) UploadPart(ctx context.Context, in *s3.UploadPartInput, optFns ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	if s.parts.Add(1) == 2 {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.S3API.UploadPart(ctx, in, optFns...)
}

// TestArchiveSlowS3AbortsItsUpload: a multipart upload that S3 holds until
// the time budget ends is aborted all the same (the upload ends before the
// invocation, and the abort has time of its own), and the answer says S3
// was slow.
func TestArchiveSlowS3AbortsItsUpload(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.serveFile(randomBytes(int(s3archive.PartSize)*2+1), true)
	a := s3archive.New(s3archive.Config{Bucket: f.bucket, Prefix: prefix, MaxBytes: limit}, f.media, &stallingS3{S3API: f.cli},
		download.NewClient(download.Config{Policy: download.PolicyFor(f.files.URL)}))
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	if obj, _, err := a.Archive(ctx, phone, "m-slow"); !isKind(err, archive.Timeout) {
		t.Fatalf("Archive = %+v, %v; want a Timeout error", obj, err)
	}
	f.nothingStored(t)
}

// TestArchiveStorageFailure: a bucket S3 refuses is a Storage error, and
// nothing is left behind.
func TestArchiveStorageFailure(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.serveFile([]byte("file"), false)
	a := s3archive.New(s3archive.Config{Bucket: "no-such-bucket-archive", Prefix: prefix, MaxBytes: limit}, f.media, f.cli,
		download.NewClient(download.Config{Policy: download.Policy{Loopback: true}}))
	if _, _, err := a.Archive(t.Context(), phone, "m-1"); !isKind(err, archive.Storage) {
		t.Errorf("Archive into a missing bucket: %v, want a Storage error", err)
	}
}

func isKind(err error, k archive.Kind) bool {
	e, ok := archive.AsError(err)
	return ok && e.Kind == k
}
