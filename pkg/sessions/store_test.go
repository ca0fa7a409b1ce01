package sessions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/miniotest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/ledger"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/mediaapi"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/sessions"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/upload"
)

func TestMain(m *testing.M) { os.Exit(miniotest.Main(m)) }

const (
	prefix = "templates/"
	phone  = "8615812341795"
)

// countingS3 counts the S3 requests the store makes.
type countingS3 struct {
	sessions.S3API
	n atomic.Int32
}

func (c *countingS3) PutObject(ctx context.Context, in *s3.PutObjectInput, o ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	c.n.Add(1)
	return c.S3API.PutObject(ctx, in, o...)
}

func (c *countingS3) GetObject(ctx context.Context, in *s3.GetObjectInput, o ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	c.n.Add(1)
	return c.S3API.GetObject(ctx, in, o...)
}

func (c *countingS3) HeadObject(ctx context.Context, in *s3.HeadObjectInput, o ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	c.n.Add(1)
	return c.S3API.HeadObject(ctx, in, o...)
}

// requests returns the requests counted since the last call.
func (c *countingS3) requests() int { return int(c.n.Swap(0)) }

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type fixture struct {
	store  *sessions.Store
	s3     *countingS3
	client *s3.Client
	bucket string
	clock  *clock
}

func newFixture(t *testing.T, ttl time.Duration) *fixture {
	t.Helper()
	m := miniotest.Shared(t)
	f := &fixture{client: m.Client(), bucket: m.NewBucket(t, true), clock: &clock{t: time.Now()}}
	f.s3 = &countingS3{S3API: f.client}
	f.store = sessions.NewStore(sessions.Config{Bucket: f.bucket, Prefix: prefix, TTL: ttl, Clock: f.clock.now},
		f.s3, s3.NewPresignClient(f.client))
	return f
}

func (f *fixture) create(t *testing.T, in mediaapi.NewUpload) *mediaapi.Upload {
	t.Helper()
	up, err := f.store.CreateUpload(context.Background(), in)
	if err != nil {
		t.Fatalf("CreateUpload: %v", err)
	}
	return up
}

func (f *fixture) status(t *testing.T, id string) *mediaapi.UploadStatus {
	t.Helper()
	st, err := f.store.Upload(context.Background(), id)
	if err != nil {
		t.Fatalf("Upload(%s): %v", id, err)
	}
	return st
}

// put sends body to the upload URL with headers, as a caller would.
func put(t *testing.T, up *mediaapi.Upload, body []byte, headers map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(up.Method, up.URL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		if strings.EqualFold(k, "Content-Length") {
			continue // set from the body, as every HTTP client does
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// with returns the headers changed: "" deletes a header.
func with(h map[string]string, changes map[string]string) map[string]string {
	out := maps.Clone(h)
	maps.Copy(out, changes)
	maps.DeleteFunc(out, func(_, v string) bool { return v == "" })
	return out
}

var pdf = []byte("%PDF-1.4 a small file\n")

func TestCreateUpload(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 10*time.Minute)
	in := mediaapi.NewUpload{FileName: "menu card (été) #1?.pdf", Type: "application/pdf", Size: int64(len(pdf)), BusinessPhone: phone}
	up := f.create(t, in)
	if n := f.s3.requests(); n != 1 {
		t.Errorf("CreateUpload made %d S3 requests, want 1 (the session document; presigning is local)", n)
	}
	if len(up.ID) != 32 || strings.Trim(up.ID, "0123456789abcdef") != "" {
		t.Errorf("upload_id %q is not 32 hex digits (128 bits)", up.ID)
	}
	if up.Method != http.MethodPut {
		t.Errorf("method = %s, want PUT", up.Method)
	}
	if want := f.clock.now().UTC().Truncate(time.Second).Add(10 * time.Minute); !up.ExpiresAt.Equal(want) {
		t.Errorf("expires_at = %v, want %v", up.ExpiresAt, want)
	}
	u, err := url.Parse(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" || q.Get("X-Amz-Expires") != "600" || q.Get("X-Amz-Signature") == "" {
		t.Errorf("upload_url %s is not a SigV4 presigned URL valid 600 s", up.URL)
	}
	if got, want := q.Get("X-Amz-SignedHeaders"), "content-length;content-type;host;if-none-match;x-amz-meta-business-phone"; got != want {
		t.Errorf("signed headers = %q, want %q", got, want)
	}
	wantHeaders := map[string]string{
		"Content-Type": "application/pdf", "Content-Length": "22", "If-None-Match": "*", "X-Amz-Meta-Business-Phone": phone,
	}
	if len(up.Headers) != len(wantHeaders) {
		t.Errorf("headers = %v, want %v", up.Headers, wantHeaders)
	}
	for k, v := range wantHeaders {
		if up.Headers[k] != v {
			t.Errorf("headers[%s] = %q, want %q", k, up.Headers[k], v)
		}
	}

	// Before the file: awaiting_file, from the document and a HEAD.
	st := f.status(t, up.ID)
	want := mediaapi.UploadStatus{ID: up.ID, Status: mediaapi.StatusAwaitingFile, FileName: in.FileName, Type: in.Type, Size: in.Size,
		BusinessPhone: phone, UpdatedAt: up.ExpiresAt.Add(-10 * time.Minute)}
	if *st != want {
		t.Errorf("status = %+v, want %+v", *st, want)
	}
	if n := f.s3.requests(); n != 2 {
		t.Errorf("status before the file: %d S3 requests, want 2", n)
	}

	if code, body := put(t, up, pdf, up.Headers); code != http.StatusOK {
		t.Fatalf("PUT with the given headers = %d %s", code, body)
	}
	key := sessions.FileKey(prefix, up.ID, in.FileName)
	head, err := f.client.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(f.bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("the file is not at %s: %v", key, err)
	}
	if aws.ToString(head.ContentType) != "application/pdf" || head.Metadata[upload.MetadataBusinessPhone] != phone || aws.ToInt64(head.ContentLength) != in.Size {
		t.Errorf("object: type %q, metadata %v, size %d", aws.ToString(head.ContentType), head.Metadata, aws.ToInt64(head.ContentLength))
	}

	// The file is there, no verdict yet: processing, three requests.
	if st := f.status(t, up.ID); st.Status != mediaapi.StatusProcessing || !st.UpdatedAt.Equal(aws.ToTime(head.LastModified)) {
		t.Errorf("status after the PUT = %+v, want processing since the object's LastModified", st)
	}
	if n := f.s3.requests(); n != 3 {
		t.Errorf("status with the file: %d S3 requests, want 3", n)
	}

	// The upload function's verdict for that version decides.
	verdictAt := time.Date(2026, 1, 12, 10, 16, 2, 0, time.UTC)
	writeRecord(t, f, key, aws.ToString(head.VersionId), ledger.Record{Status: ledger.Uploaded, MediaID: "4:media-id", UpdatedAt: verdictAt})
	f.s3.requests()
	st = f.status(t, up.ID)
	want = mediaapi.UploadStatus{ID: up.ID, Status: mediaapi.StatusUploaded, FileName: in.FileName, Type: in.Type, Size: in.Size,
		BusinessPhone: phone, MediaID: "4:media-id", UpdatedAt: verdictAt}
	if *st != want {
		t.Errorf("status = %+v, want %+v", *st, want)
	}
	if n := f.s3.requests(); n != 3 {
		t.Errorf("status of an uploaded file: %d S3 requests, want at most 3", n)
	}

	// A record for another version counts for nothing.
	writeRecord(t, f, key, "another-version", ledger.Record{Status: ledger.Rejected, Error: "x"})
	if st := f.status(t, up.ID); st.Status != mediaapi.StatusUploaded {
		t.Errorf("status = %s after a record for another version, want uploaded", st.Status)
	}
}

// writeRecord stores a verdict as the upload function does.
func writeRecord(t *testing.T, f *fixture, key, version string, rec ledger.Record) {
	t.Helper()
	rec.Bucket, rec.Key, rec.VersionID = f.bucket, key, version
	b, _ := json.Marshal(rec)
	if _, err := f.client.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(f.bucket), Key: aws.String(ledger.RecordKey(key, version)), Body: bytes.NewReader(b),
	}); err != nil {
		t.Fatal(err)
	}
}

// S3 refuses every PUT but the announced one, and takes the file once.
func TestPresignedPutRefusesOtherFiles(t *testing.T) {
	t.Parallel()
	f := newFixture(t, time.Minute)
	up := f.create(t, mediaapi.NewUpload{FileName: "menu.pdf", Type: "application/pdf", Size: int64(len(pdf)), BusinessPhone: phone})
	for _, tc := range []struct {
		name    string
		body    []byte
		headers map[string]string
	}{
		{"another Content-Type", pdf, with(up.Headers, map[string]string{"Content-Type": "image/png"})},
		{"another phone", pdf, with(up.Headers, map[string]string{"X-Amz-Meta-Business-Phone": "4915112345678"})},
		{"other metadata", pdf, with(up.Headers, map[string]string{"X-Amz-Meta-Note": "x"})},
		{"no phone metadata", pdf, with(up.Headers, map[string]string{"X-Amz-Meta-Business-Phone": ""})},
		{"no If-None-Match", pdf, with(up.Headers, map[string]string{"If-None-Match": ""})},
		{"a larger file", append(pdf, 'x'), up.Headers},
		{"a smaller file", pdf[:len(pdf)-1], up.Headers},
	} {
		if code, body := put(t, up, tc.body, tc.headers); code < 400 {
			t.Errorf("%s: PUT = %d %s, want S3 to refuse it", tc.name, code, body)
		}
	}
	if st := f.status(t, up.ID); st.Status != mediaapi.StatusAwaitingFile {
		t.Fatalf("status = %s after refused PUTs, want awaiting_file", st.Status)
	}
	if code, body := put(t, up, pdf, up.Headers); code != http.StatusOK {
		t.Fatalf("PUT = %d %s", code, body)
	}
	if code, _ := put(t, up, pdf, up.Headers); code != http.StatusPreconditionFailed {
		t.Errorf("a second PUT of the file = %d, want 412: a session takes its file once", code)
	}
}

func TestUploadStatus(t *testing.T) {
	t.Parallel()
	f := newFixture(t, time.Minute)
	ctx := context.Background()

	for _, id := range []string{"", "abc", strings.Repeat("a", 31), strings.Repeat("a", 33), strings.Repeat("A", 32),
		"../../nxcloud-records/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", strings.Repeat("g", 32)} {
		if _, err := f.store.Upload(ctx, id); !errors.Is(err, mediaapi.ErrUploadNotFound) {
			t.Errorf("Upload(%q) = %v, want ErrUploadNotFound", id, err)
		}
	}
	if n := f.s3.requests(); n != 0 {
		t.Errorf("malformed ids cost %d S3 requests, want 0", n)
	}
	if _, err := f.store.Upload(ctx, strings.Repeat("ab", 16)); !errors.Is(err, mediaapi.ErrUploadNotFound) {
		t.Errorf("an unknown id: %v, want ErrUploadNotFound", err)
	}
	if n := f.s3.requests(); n != 1 {
		t.Errorf("an unknown id cost %d S3 requests, want 1", n)
	}

	// Expired: no file and past expires_at, whatever is asked later.
	up := f.create(t, mediaapi.NewUpload{FileName: "late.pdf", Type: "application/pdf", Size: 3, BusinessPhone: phone})
	f.clock.add(time.Minute + time.Second)
	if st := f.status(t, up.ID); st.Status != mediaapi.StatusExpired || !st.UpdatedAt.Equal(up.ExpiresAt) {
		t.Errorf("status = %+v, want expired at %v", st, up.ExpiresAt)
	}

	// Rejected carries the reason.
	up = f.create(t, mediaapi.NewUpload{FileName: "x.pdf", Type: "application/pdf", Size: int64(len(pdf)), BusinessPhone: phone})
	if code, body := put(t, up, pdf, up.Headers); code != http.StatusOK {
		t.Fatalf("PUT = %d %s", code, body)
	}
	key := sessions.FileKey(prefix, up.ID, "x.pdf")
	head, err := f.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(f.bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	const reason = "NXCloud 9002: Merchant phone number error"
	writeRecord(t, f, key, aws.ToString(head.VersionId), ledger.Record{Status: ledger.Rejected, Error: reason, UpdatedAt: time.Now()})
	if st := f.status(t, up.ID); st.Status != mediaapi.StatusRejected || st.Error != reason || st.MediaID != "" {
		t.Errorf("status = %+v, want rejected with %q", st, reason)
	}
	// A file with a verdict is not expired, even past expires_at.
	f.clock.add(time.Hour)
	if st := f.status(t, up.ID); st.Status != mediaapi.StatusRejected {
		t.Errorf("status = %s past expires_at, want rejected", st.Status)
	}

	// A document that is not ours is a storage error, not a 404.
	bad := strings.Repeat("cd", 16)
	if _, err := f.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(f.bucket), Key: aws.String(sessions.SessionKey(prefix, bad)),
		Body: strings.NewReader("not json")}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Upload(ctx, bad); err == nil || errors.Is(err, mediaapi.ErrUploadNotFound) {
		t.Errorf("a corrupt session document: %v, want a storage error", err)
	}
}

// Whatever the file name, the file goes to its session's folder under the
// prefix, and the document sits at a key the upload function skips.
func TestKeysStayInTheSessionFolder(t *testing.T) {
	t.Parallel()
	f := newFixture(t, time.Minute)
	for _, name := range []string{"a b.pdf", "100%.pdf", "x?y=1&z#2.pdf", "+.pdf", "é✓.png", "..a", ".hidden", " lead and trail ", "%2F..%2Fx.pdf"} {
		up := f.create(t, mediaapi.NewUpload{FileName: name, Type: "application/pdf", Size: int64(len(pdf)), BusinessPhone: phone})
		folder := prefix + sessions.Folder + up.ID + "/"
		if sessions.SessionKey(prefix, up.ID) != folder || !strings.HasSuffix(folder, "/") {
			t.Errorf("session key %q", sessions.SessionKey(prefix, up.ID))
		}
		if code, body := put(t, up, pdf, up.Headers); code != http.StatusOK {
			t.Errorf("%q: PUT = %d %s", name, code, body)
			continue
		}
		out, err := f.client.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(f.bucket), Prefix: aws.String(folder)})
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
		if len(keys) != 2 || keys[0] != folder || keys[1] != folder+name {
			t.Errorf("%q: keys under %s = %q, want the document and %q", name, folder, keys, folder+name)
		}
	}
}
