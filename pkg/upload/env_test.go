package upload_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart/lambdarttest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/miniotest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/ledger"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/upload"
)

// One MinIO serves every test of the package; each test has its own bucket.
func TestMain(m *testing.M) { os.Exit(miniotest.Main(m)) }

// env is one test's world: a versioned bucket on the shared MinIO, a local
// NXCloud, the real nxcloud client and S3 client, and the handler under test
// with its log captured.
type env struct {
	t      *testing.T
	minio  *miniotest.Server
	s3     *s3.Client
	bucket string
	nx     *nxcloudtest.Server
	client *nxcloud.Client
	h      *upload.Pipeline
	ledger *ledger.Ledger
	cfg    upload.Config
	logs   *lambdarttest.Buffer
}

type envOptions struct {
	cfg       upload.Config
	message   bool // the message destination (uploadMedia) under media/, else template files under templates/
	wrapS3    func(upload.S3API) upload.S3API
	nxOpts    []nxcloudtest.Option
	creds     nxcloud.CredentialsProvider
	versioned *bool
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	mc := miniotest.Shared(t)
	e := &env{t: t, minio: mc}
	logger, logs := lambdarttest.Logger()
	e.logs = logs
	e.s3 = mc.Client(upload.S3Options(true))
	versioned := o.versioned == nil || *o.versioned
	e.bucket = mc.NewBucket(t, versioned)
	e.nx = nxcloudtest.NewTestServer(t, o.nxOpts...)
	creds := o.creds
	if creds == nil {
		creds = nxcloud.StaticCredentials(e.nx.Credentials())
	}
	client, err := nxcloud.NewClient(nxcloud.WithBaseURL(e.nx.URL()), nxcloud.WithCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	e.client = client
	o.cfg.Logger = logger
	e.cfg = o.cfg
	var api upload.S3API = e.s3
	if o.wrapS3 != nil {
		api = o.wrapS3(api)
	}
	dest := upload.Template("templates/", client)
	if o.message {
		dest = upload.Message("media/", client)
	}
	e.h = upload.New(o.cfg, api, dest)
	e.ledger = ledger.New(e.s3, ledger.Config{})
	return e
}

// object is a stored object version.
type object struct {
	key, version, etag string
	size               int64
	sha256             string
}

type putOpt func(*s3.PutObjectInput)

func withType(ct string) putOpt {
	return func(in *s3.PutObjectInput) { in.ContentType = aws.String(ct) }
}
func withPhone(p string) putOpt {
	return func(in *s3.PutObjectInput) { in.Metadata = map[string]string{"business-phone": p} }
}
func withTags(q string) putOpt { return func(in *s3.PutObjectInput) { in.Tagging = aws.String(q) } }

// put stores body under key and returns the version S3 created.
func (e *env) put(key string, body []byte, opts ...putOpt) object {
	e.t.Helper()
	in := &s3.PutObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(key), Body: bytes.NewReader(body)}
	for _, o := range opts {
		o(in)
	}
	out, err := e.s3.PutObject(context.Background(), in)
	if err != nil {
		e.t.Fatalf("put %s: %v", key, err)
	}
	return object{key: key, version: aws.ToString(out.VersionId), etag: strings.Trim(aws.ToString(out.ETag), `"`),
		size: int64(len(body)), sha256: fmt.Sprintf("%x", sha256.Sum256(body))}
}

// s3EscapeKey encodes a key as S3 event notifications do: URL form
// encoding (a space is '+'), slashes kept.
func s3EscapeKey(key string) string {
	return strings.ReplaceAll(url.QueryEscape(key), "%2F", "/")
}

// record is one record of an S3 event notification.
type record struct {
	name    string // default ObjectCreated:Put
	bucket  string
	rawKey  string // default s3EscapeKey(obj.key)
	obj     object
	noIdent bool // omit versionId and eTag (as sam local generate-event does)
}

// event builds the JSON S3 sends to Lambda and decodes it the way the Lambda
// runtime does, so the handler sees exactly what it gets in production.
func (e *env) event(recs ...record) events.S3Event {
	e.t.Helper()
	var parts []string
	for _, r := range recs {
		if r.name == "" {
			r.name = "ObjectCreated:Put"
		}
		if r.bucket == "" {
			r.bucket = e.bucket
		}
		if r.rawKey == "" {
			r.rawKey = s3EscapeKey(r.obj.key)
		}
		obj := map[string]any{"key": r.rawKey, "size": r.obj.size, "sequencer": "0055AED6DCD90281E5"}
		if !r.noIdent {
			obj["eTag"] = r.obj.etag
			if r.obj.version != "" {
				obj["versionId"] = r.obj.version
			}
		}
		rec := map[string]any{
			"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
			"eventTime": "2026-01-02T03:04:05.000Z", "eventName": r.name,
			"userIdentity":      map[string]any{"principalId": "EXAMPLE"},
			"requestParameters": map[string]any{"sourceIPAddress": "127.0.0.1"},
			"responseElements":  map[string]any{"x-amz-request-id": "EXAMPLE123456789"},
			"s3": map[string]any{
				"s3SchemaVersion": "1.0", "configurationId": "UploadTemplateFile",
				"bucket": map[string]any{"name": r.bucket, "ownerIdentity": map[string]any{"principalId": "EXAMPLE"}, "arn": "arn:aws:s3:::" + r.bucket},
				"object": obj,
			},
		}
		b, _ := json.Marshal(rec)
		parts = append(parts, string(b))
	}
	return decodeEvent(e.t, `{"Records":[`+strings.Join(parts, ",")+`]}`)
}

func decodeEvent(t *testing.T, raw string) events.S3Event {
	t.Helper()
	var ev events.S3Event
	if err := json.Unmarshal([]byte(raw), &ev); err != nil {
		t.Fatalf("decode event: %v", err)
	}
	return ev
}

// tags returns the tags of one version as a map.
func (e *env) tags(o object) map[string]string {
	e.t.Helper()
	return miniotest.Tags(e.t, e.s3, e.bucket, o.key, o.version)
}

// claims lists the claim objects in the bucket (current versions).
func (e *env) claims() []string {
	e.t.Helper()
	return miniotest.Keys(e.t, e.s3, e.bucket, ledger.ClaimPrefix)
}

// record returns the verdict recorded for the version o, nil when none.
func (e *env) record(o object) *ledger.Record {
	e.t.Helper()
	rec, err := e.ledger.Record(context.Background(), ledger.Object{Bucket: e.bucket, Key: o.key, VersionID: o.version})
	if err != nil {
		e.t.Fatalf("read record of %s: %v", o.key, err)
	}
	return rec
}

// wantRecord checks the verdict recorded for o.
func (e *env) wantRecord(o object, status ledger.Status, mediaID string) *ledger.Record {
	e.t.Helper()
	rec := e.record(o)
	if rec == nil || rec.Status != status || rec.MediaID != mediaID || rec.Key != o.key || rec.VersionID != o.version || rec.Bucket != e.bucket {
		e.t.Fatalf("record of %s@%s = %+v; want %s with media id %q", o.key, o.version, rec, status, mediaID)
	}
	return rec
}

// uploadCalls is the number of uploadTemplateFile calls NXCloud received.
func (e *env) uploadCalls() int { return len(e.nx.Calls(nxcloud.ActionUploadTemplateFile)) }

// line returns the last per-record log line about key.
func (e *env) line(key string) map[string]any {
	e.t.Helper()
	var last map[string]any
	for _, l := range e.logs.Lines(e.t, "upload") {
		if l["key"] == key {
			last = l
		}
	}
	if last == nil {
		e.t.Fatalf("no log line for key %q in:\n%s", key, e.logs.String())
	}
	return last
}

// wantOutcome checks the last log line of key.
func (e *env) wantOutcome(key string, outcome upload.Outcome) map[string]any {
	e.t.Helper()
	l := e.line(key)
	if l["outcome"] != string(outcome) {
		e.t.Fatalf("outcome of %q = %v (reason %v, error %v); want %s", key, l["outcome"], l["reason"], l["error"], outcome)
	}
	return l
}

// handle runs the handler on ev and fails the test on an error.
func (e *env) handle(ev events.S3Event) {
	e.t.Helper()
	if err := e.h.HandleEvent(context.Background(), ev); err != nil {
		e.t.Fatalf("Handle: %v", err)
	}
}

// spyS3 wraps the real client: it counts the calls per operation and can
// fail or delay chosen ones.
type spyS3 struct {
	upload.S3API
	mu     sync.Mutex
	calls  map[string]int
	fail   map[string]int                     // fail the next n calls of an operation
	failIf func(op, key string) bool          // nil: no failure; else fail the calls it picks
	delay  func(op, key string) time.Duration // nil: no delay
	// hang makes the bodies of the objects GetObject returns stop after
	// their bytes, as a stalled connection does, until ctx ends.
	hang bool
}

// hangingBody yields its bytes, then blocks until ctx ends or it is
// closed: a body whose connection stalled before its end.
type hangingBody struct {
	io.ReadCloser
	ctx    context.Context
	closed chan struct{}
	once   sync.Once
}

func (h *hangingBody) Read(p []byte) (int, error) {
	n, err := h.ReadCloser.Read(p)
	if err == io.EOF {
		select {
		case <-h.ctx.Done():
			return n, h.ctx.Err()
		case <-h.closed:
			return n, errors.New("read on a closed body")
		}
	}
	return n, err
}

func (h *hangingBody) Close() error {
	h.once.Do(func() { close(h.closed) })
	return h.ReadCloser.Close()
}

func (s *spyS3) before(ctx context.Context, op string, key *string) error {
	s.mu.Lock()
	if s.calls == nil {
		s.calls = map[string]int{}
	}
	s.calls[op]++
	fail := s.fail[op] > 0
	if fail {
		s.fail[op]--
	}
	fail = fail || s.failIf != nil && s.failIf(op, aws.ToString(key))
	delay := s.delay
	s.mu.Unlock()
	if fail {
		return &smithy.GenericAPIError{Code: "SlowDown", Message: "injected: " + op + " throttled"}
	}
	if delay != nil {
		if d := delay(op, aws.ToString(key)); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

// wrap is an envOptions.wrapS3 that puts the spy in front of api.
func (s *spyS3) wrap(api upload.S3API) upload.S3API {
	s.S3API = api
	return s
}

// set changes the spy's faults under its lock.
func (s *spyS3) set(fn func(s *spyS3)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s)
}

// total returns the number of calls so far, and resets the counts.
func (s *spyS3) total() (int, map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, m := 0, s.calls
	for _, c := range m {
		n += c
	}
	s.calls = nil
	return n, m
}

func (s *spyS3) HeadObject(ctx context.Context, in *s3.HeadObjectInput, o ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	if err := s.before(ctx, "HeadObject", in.Key); err != nil {
		return nil, err
	}
	return s.S3API.HeadObject(ctx, in, o...)
}

func (s *spyS3) GetObject(ctx context.Context, in *s3.GetObjectInput, o ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	if err := s.before(ctx, "GetObject", in.Key); err != nil {
		return nil, err
	}
	out, err := s.S3API.GetObject(ctx, in, o...)
	s.mu.Lock()
	hang := s.hang && !strings.HasPrefix(aws.ToString(in.Key), "nxcloud-")
	s.mu.Unlock()
	if err == nil && hang {
		out.Body = &hangingBody{ReadCloser: out.Body, ctx: ctx, closed: make(chan struct{})}
	}
	return out, err
}

// PutObject names a conditional replacement (a claim's renewal)
// "PutObject/IfMatch".
func (s *spyS3) PutObject(ctx context.Context, in *s3.PutObjectInput, o ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	op := "PutObject"
	if in.IfMatch != nil {
		op += "/IfMatch"
	}
	if err := s.before(ctx, op, in.Key); err != nil {
		return nil, err
	}
	return s.S3API.PutObject(ctx, in, o...)
}

func (s *spyS3) DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, o ...func(*s3.Options)) (*s3.DeleteObjectOutput, error) {
	if err := s.before(ctx, "DeleteObject", in.Key); err != nil {
		return nil, err
	}
	return s.S3API.DeleteObject(ctx, in, o...)
}

func (s *spyS3) GetObjectTagging(ctx context.Context, in *s3.GetObjectTaggingInput, o ...func(*s3.Options)) (*s3.GetObjectTaggingOutput, error) {
	if err := s.before(ctx, "GetObjectTagging", in.Key); err != nil {
		return nil, err
	}
	return s.S3API.GetObjectTagging(ctx, in, o...)
}

func (s *spyS3) PutObjectTagging(ctx context.Context, in *s3.PutObjectTaggingInput, o ...func(*s3.Options)) (*s3.PutObjectTaggingOutput, error) {
	if err := s.before(ctx, "PutObjectTagging", in.Key); err != nil {
		return nil, err
	}
	return s.S3API.PutObjectTagging(ctx, in, o...)
}
