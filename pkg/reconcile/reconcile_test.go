package reconcile_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/miniotest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/reconcile"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/upload"
)

// One MinIO serves every test of the package; each test has its own bucket.
func TestMain(m *testing.M) { os.Exit(miniotest.Main(m)) }

const prefix = "templates/"

// world is a versioned bucket on the shared MinIO.
type world struct {
	t      testing.TB
	s3     *s3.Client
	bucket string
}

func newWorld(t testing.TB) *world {
	t.Helper()
	mc := miniotest.Shared(t)
	return &world{t: t, s3: mc.Client(), bucket: mc.NewBucket(t, true)}
}

// put stores an object and returns its version id.
func (w *world) put(key string, body []byte) string {
	w.t.Helper()
	out, err := w.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(w.bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
	if err != nil {
		w.t.Fatalf("put %s: %v", key, err)
	}
	return aws.ToString(out.VersionId)
}

// record writes the verdict of a version, as the pipeline does.
func (w *world) record(key, version string) {
	w.t.Helper()
	b, _ := json.Marshal(upload.Record{Status: upload.Uploaded, Bucket: w.bucket, Key: key, VersionID: version, MediaID: "m-" + version})
	w.put(upload.RecordKey(key, version), b)
}

// claim writes a claim on a version, as a delivery sending it does.
func (w *world) claim(key, version string) {
	w.t.Helper()
	b, _ := json.Marshal(map[string]any{"bucket": w.bucket, "key": key, "version_id": version, "owner": "test", "lease_ms": 30000})
	w.put(upload.ClaimKey(key, version), b)
}

func (w *world) remove(key string) {
	w.t.Helper()
	if _, err := w.s3.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(w.bucket), Key: aws.String(key)}); err != nil {
		w.t.Fatal(err)
	}
}

// countingS3 counts the listing requests.
type countingS3 struct {
	reconcile.S3API
	versions, objects atomic.Int64
}

func (c *countingS3) ListObjectVersions(ctx context.Context, in *s3.ListObjectVersionsInput, optFns ...func(*s3.Options)) (*s3.ListObjectVersionsOutput, error) {
	c.versions.Add(1)
	return c.S3API.ListObjectVersions(ctx, in, optFns...)
}

func (c *countingS3) ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	c.objects.Add(1)
	return c.S3API.ListObjectsV2(ctx, in, optFns...)
}

// fakeProcessor records the versions it is given and answers outcome.
type fakeProcessor struct {
	mu      sync.Mutex
	got     []string // key@version, key decoded as the pipeline decodes it
	delay   time.Duration
	outcome upload.Outcome
}

func (p *fakeProcessor) Process(ctx context.Context, rec *events.S3EventRecord) upload.Result {
	key, err := upload.DecodeKey(rec.S3.Object.Key)
	if err != nil {
		return upload.Result{Outcome: upload.Failed, Err: err}
	}
	if p.delay > 0 {
		select {
		case <-time.After(p.delay):
		case <-ctx.Done():
			return upload.Result{Outcome: upload.Failed, Err: ctx.Err()}
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, key+"@"+rec.S3.Object.VersionID)
	out := p.outcome
	if out == "" {
		out = upload.Uploaded
	}
	return upload.Result{Outcome: out}
}

func (p *fakeProcessor) sent() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := slices.Clone(p.got)
	slices.Sort(out)
	return out
}

// The join: exactly the current versions under the prefix without verdict
// and without live claim, older than the settle time, are sent; folder
// markers, empty objects, deleted objects, older versions and other
// prefixes are not. A claim whose holder stopped renewing it, and a version
// that has aged past the settle time, are sent by a later run.
func TestPendingVersions(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	body := []byte("%PDF-1.4 reconcile")
	// Record and claim keys of this key are too long for S3: they are hashed.
	long := prefix + strings.Repeat(strings.Repeat("l", 190)+"/", 5) + "long.pdf"

	old := map[string]string{} // key -> current version
	for _, k := range []string{prefix + "8615812341795/a b+c%.pdf", prefix + "recorded.pdf", prefix + "claimed.pdf", prefix + "copied.pdf", long, long + "x"} {
		old[k] = w.put(k, body)
	}
	w.record(prefix+"recorded.pdf", old[prefix+"recorded.pdf"])
	w.record(long, old[long])
	// A verdict for an older version counts for nothing (a copy carries the
	// tags of the old version, not its record).
	w.record(prefix+"copied.pdf", old[prefix+"copied.pdf"])
	old[prefix+"copied.pdf"] = w.put(prefix+"copied.pdf", body)
	// An older version without a verdict whose current version has one.
	w.put(prefix+"superseded.pdf", body)
	old[prefix+"superseded.pdf"] = w.put(prefix+"superseded.pdf", body)
	w.record(prefix+"superseded.pdf", old[prefix+"superseded.pdf"])
	w.put(prefix+"empty.pdf", nil)
	w.put(prefix+"folder/", nil)
	w.put(prefix+"deleted.pdf", body)
	w.remove(prefix + "deleted.pdf")
	w.put("elsewhere/x.pdf", body)

	time.Sleep(4 * time.Second) // what follows is younger than the settle time
	young := w.put(prefix+"young.pdf", body)
	w.claim(prefix+"claimed.pdf", old[prefix+"claimed.pdf"])

	api := &countingS3{S3API: w.s3}
	proc := &fakeProcessor{}
	now := time.Now()
	clock := func() time.Time { return now }
	sw := reconcile.New(reconcile.Config{Bucket: w.bucket, Prefix: prefix, Settle: 3 * time.Second, Clock: clock}, api, proc, nil)
	sum, err := sw.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		prefix + "8615812341795/a b+c%.pdf@" + old[prefix+"8615812341795/a b+c%.pdf"],
		prefix + "copied.pdf@" + old[prefix+"copied.pdf"],
		long + "x@" + old[long+"x"],
	}
	slices.Sort(want)
	if got := proc.sent(); !slices.Equal(got, want) {
		t.Errorf("sent\n%q\nwant\n%q", got, want)
	}
	// Current versions under the prefix: 7 old files, the empty one, the
	// folder marker and the young one.
	if want := (reconcile.Summary{Examined: 10, Pending: 3, Uploaded: 3}); sum != want {
		t.Errorf("summary = %+v, want %+v", sum, want)
	}
	// One page each: versions, records and records of hashed keys, claims
	// and claims of hashed keys.
	if v, o := api.versions.Load(), api.objects.Load(); v != 1 || o != 4 {
		t.Errorf("%d ListObjectVersions and %d ListObjectsV2 requests, want 1 and 4", v, o)
	}

	// Later: the claim's holder died (no renewal for longer than any lease),
	// the young version has settled; what was sent has its verdict now.
	for _, v := range want {
		key, version, _ := strings.Cut(v, "@")
		w.record(key, version)
	}
	now = now.Add(70 * time.Second)
	proc2 := &fakeProcessor{}
	sw = reconcile.New(reconcile.Config{Bucket: w.bucket, Prefix: prefix, Settle: 3 * time.Second, Clock: clock}, w.s3, proc2, nil)
	if _, err := sw.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	want = []string{prefix + "claimed.pdf@" + old[prefix+"claimed.pdf"], prefix + "young.pdf@" + young}
	if got := proc2.sent(); !slices.Equal(got, want) {
		t.Errorf("the later run sent\n%q\nwant\n%q", got, want)
	}
}

// Where nothing is pending, a run makes list requests only, one per page of
// each listing, and never lists the claims.
func TestNothingPendingListsOnly(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	for _, k := range []string{"a.pdf", "b.pdf", "c/d.pdf"} {
		w.record(prefix+k, w.put(prefix+k, []byte("x")))
	}
	api := &countingS3{S3API: w.s3}
	proc := &fakeProcessor{}
	sum, err := reconcile.New(reconcile.Config{Bucket: w.bucket, Prefix: prefix, Settle: time.Nanosecond}, api, proc, nil).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := (reconcile.Summary{Examined: 3}); sum != want {
		t.Errorf("summary = %+v, want %+v", sum, want)
	}
	if v, o := api.versions.Load(), api.objects.Load(); v != 1 || o != 1 {
		t.Errorf("%d ListObjectVersions and %d ListObjectsV2 requests, want 1 and 1", v, o)
	}
	if len(proc.sent()) != 0 {
		t.Errorf("sent %v, want nothing", proc.sent())
	}
}

// A run that cannot finish answers before its deadline: it starts a version
// only while the time left covers it, and leaves the rest to the next run.
func TestStopsBeforeDeadline(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	for i := range 12 {
		w.put(prefix+string(rune('a'+i))+".pdf", []byte("x"))
	}
	proc := &fakeProcessor{delay: 300 * time.Millisecond, outcome: upload.Rejected}
	sw := reconcile.New(reconcile.Config{Bucket: w.bucket, Prefix: prefix, Settle: time.Nanosecond, Concurrency: 2,
		MinSend: 400 * time.Millisecond, Reserve: 100 * time.Millisecond}, w.s3, proc, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	dl, _ := ctx.Deadline()
	sum, err := sw.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if late := time.Since(dl); late > 0 {
		t.Errorf("the run answered %s after its deadline", late)
	}
	if sum.Pending != 12 || sum.Rejected == 0 || sum.Rejected >= 12 || sum.Rejected != len(proc.sent()) {
		t.Errorf("summary = %+v (sent %d): want 12 pending, some but not all sent", sum, len(proc.sent()))
	}
}

// Failing to list is an error that names the permission.
func TestListFailure(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	_, err := reconcile.New(reconcile.Config{Bucket: w.bucket + "-missing", Prefix: prefix}, w.s3, &fakeProcessor{}, nil).Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "s3:ListBucketVersions") {
		t.Errorf("Run on a missing bucket = %v, want an error naming s3:ListBucketVersions", err)
	}
}
