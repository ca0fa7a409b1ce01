package reconcile_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/miniotest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/ledger"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/reconcile"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/upload"
)

// One MinIO serves every test of the package; each test has its own bucket.
func TestMain(m *testing.M) { os.Exit(miniotest.Main(m)) }

const (
	prefix = "templates/"
	media  = "media/"
)

// world is a versioned bucket on the shared MinIO.
type world struct {
	t      testing.TB
	s3     *s3.Client
	bucket string
	ledger *ledger.Ledger
}

func newWorld(t testing.TB) *world {
	t.Helper()
	mc := miniotest.Shared(t)
	w := &world{t: t, s3: mc.Client(), bucket: mc.NewBucket(t, true)}
	w.ledger = ledger.New(w.s3, ledger.Config{})
	return w
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

func (w *world) obj(key, version string) upload.Object {
	return upload.Object{Bucket: w.bucket, Key: key, VersionID: version}
}

// record writes the verdict of a version, as the pipeline does.
func (w *world) record(key, version string) {
	w.t.Helper()
	if _, err := w.ledger.Decide(context.Background(), w.obj(key, version), ledger.Record{Status: ledger.Uploaded, MediaID: "m-" + version}); err != nil {
		w.t.Fatal(err)
	}
}

// claim takes a live claim on a version, as a delivery sending it does.
func (w *world) claim(key, version string) {
	w.t.Helper()
	if _, _, err := w.ledger.Claim(context.Background(), w.obj(key, version), time.Nanosecond); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) remove(key, version string) {
	w.t.Helper()
	in := &s3.DeleteObjectInput{Bucket: aws.String(w.bucket), Key: aws.String(key)}
	if version != "" {
		in.VersionId = aws.String(version)
	}
	if _, err := w.s3.DeleteObject(context.Background(), in); err != nil {
		w.t.Fatal(err)
	}
}

// sweeper is a Sweeper of the world's bucket over api (default the
// world's client) with up.
func (w *world) sweeper(cfg reconcile.Config, api *countingS3, up reconcile.Uploader) *reconcile.Sweeper {
	cfg.Bucket = w.bucket
	if cfg.Prefixes == nil {
		cfg.Prefixes = []string{prefix}
	}
	if api == nil {
		api = &countingS3{Client: w.s3}
	}
	return reconcile.New(cfg, api, ledger.New(api, ledger.Config{Clock: cfg.Clock}), up, nil)
}

// countingS3 counts the listing requests.
type countingS3 struct {
	*s3.Client
	versions, objects atomic.Int64
}

func (c *countingS3) ListObjectVersions(ctx context.Context, in *s3.ListObjectVersionsInput, optFns ...func(*s3.Options)) (*s3.ListObjectVersionsOutput, error) {
	c.versions.Add(1)
	return c.Client.ListObjectVersions(ctx, in, optFns...)
}

func (c *countingS3) ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	c.objects.Add(1)
	return c.Client.ListObjectsV2(ctx, in, optFns...)
}

// fakeUploader records the versions it is given and answers outcome.
type fakeUploader struct {
	mu      sync.Mutex
	got     []string // key@version
	delay   time.Duration
	outcome upload.Outcome
}

func (p *fakeUploader) Upload(ctx context.Context, obj upload.Object) upload.Result {
	if p.delay > 0 {
		select {
		case <-time.After(p.delay):
		case <-ctx.Done():
			return upload.Result{Outcome: upload.Failed, Err: ctx.Err()}
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, obj.Key+"@"+obj.VersionID)
	r := upload.Result{Outcome: p.outcome}
	switch p.outcome {
	case "":
		r.Outcome = upload.Uploaded
	case upload.Failed:
		r.Err = errors.New("nxcloud unavailable")
	}
	return r
}

func (p *fakeUploader) sent() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := slices.Clone(p.got)
	slices.Sort(out)
	return out
}

// The join: exactly the current versions under the prefixes without verdict
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
	for _, k := range []string{prefix + "8615812341795/a b+c%.pdf", prefix + "recorded.pdf", prefix + "claimed.pdf", prefix + "copied.pdf", long, long + "x", media + "photo.jpg"} {
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
	w.remove(prefix+"deleted.pdf", "")
	w.put("elsewhere/x.pdf", body)

	time.Sleep(4 * time.Second) // what follows is younger than the settle time
	young := w.put(prefix+"young.pdf", body)
	w.claim(prefix+"claimed.pdf", old[prefix+"claimed.pdf"])

	api := &countingS3{Client: w.s3}
	up := &fakeUploader{}
	now := time.Now()
	clock := func() time.Time { return now }
	cfg := reconcile.Config{Prefixes: []string{prefix, media}, Settle: 3 * time.Second, Clock: clock}
	sum, err := w.sweeper(cfg, api, up).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		prefix + "8615812341795/a b+c%.pdf@" + old[prefix+"8615812341795/a b+c%.pdf"],
		prefix + "copied.pdf@" + old[prefix+"copied.pdf"],
		long + "x@" + old[long+"x"],
		media + "photo.jpg@" + old[media+"photo.jpg"],
	}
	slices.Sort(want)
	if got := up.sent(); !slices.Equal(got, want) {
		t.Errorf("sent\n%q\nwant\n%q", got, want)
	}
	// Current versions under the prefixes: 7 old files, the empty one, the
	// folder marker and the young one; the photo.
	if want := (reconcile.Summary{Examined: 11, Pending: 4, Uploaded: 4}); sum != want {
		t.Errorf("summary = %+v, want %+v", sum, want)
	}
	// A page of each prefix's versions; per prefix, a page of records and
	// one of claims (hashed keys included: they stay under the prefix).
	if v, o := api.versions.Load(), api.objects.Load(); v != 2 || o != 4 {
		t.Errorf("%d ListObjectVersions and %d ListObjectsV2 requests, want 2 and 4", v, o)
	}

	// Later: the claim's holder died (no renewal for longer than any lease),
	// the young version has settled; what was sent has its verdict now.
	for _, v := range want {
		key, version, _ := strings.Cut(v, "@")
		w.record(key, version)
	}
	now = now.Add(70 * time.Second)
	up2 := &fakeUploader{}
	if _, err := w.sweeper(cfg, nil, up2).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	want = []string{prefix + "claimed.pdf@" + old[prefix+"claimed.pdf"], prefix + "young.pdf@" + young}
	if got := up2.sent(); !slices.Equal(got, want) {
		t.Errorf("the later run sent\n%q\nwant\n%q", got, want)
	}
}

// Keys S3 can hold but XML cannot carry raw (control characters) and keys
// whose record keys sort in another order than the keys themselves (a key
// that is a prefix of another, followed by a byte below '/') are swept like
// the rest, over several pages of each listing. (MinIO cannot hold a.pdf
// and a.pdf/x.pdf at once, which S3 can; the order of such keys is that of
// a.pdf.bak.)
func TestOddKeysAndOrders(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	keys := []string{
		"a.pdf", "a.pdf.bak", "a.pdf-1.pdf", "a.pdf 2.pdf", "b\x01c.pdf", "tab\tname.pdf", "del\x7f.pdf",
		"percent%2F.pdf", "plus+sign.pdf", "question?.pdf", "菜单.pdf", "z.pdf",
	}
	version := map[string]string{}
	for _, k := range keys {
		version[k] = w.put(prefix+k, []byte("x"))
	}
	// Every other key has its verdict.
	var want []string
	for i, k := range keys {
		if i%2 == 0 {
			w.record(prefix+k, version[k])
		} else {
			want = append(want, prefix+k+"@"+version[k])
		}
	}
	slices.Sort(want)
	up := &fakeUploader{}
	api := &countingS3{Client: w.s3}
	sum, err := w.sweeper(reconcile.Config{Settle: time.Nanosecond, PageSize: 3}, api, up).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := up.sent(); !slices.Equal(got, want) {
		t.Errorf("sent\n%q\nwant\n%q", got, want)
	}
	if sum.Examined != len(keys) || sum.Failed != 0 {
		t.Errorf("summary = %+v; want %d examined, none failed", sum, len(keys))
	}
	if v := api.versions.Load(); v > int64(len(keys)/3+1) {
		t.Errorf("%d ListObjectVersions requests for %d keys in pages of 3", v, len(keys))
	}
}

// An undo: v1's event was superseded by v2 (a note on v1, not a verdict);
// v2 is deleted by version id, v1 is current again without a verdict: the
// sweep sends it.
func TestSupersededMadeCurrentAgainIsPending(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	v1 := w.put(prefix+"menu.pdf", []byte("v1"))
	v2 := w.put(prefix+"menu.pdf", []byte("v2"))
	w.record(prefix+"menu.pdf", v2)
	if err := w.ledger.MarkSuperseded(context.Background(), w.obj(prefix+"menu.pdf", v1), "overwritten"); err != nil {
		t.Fatal(err)
	}
	w.remove(prefix+"menu.pdf", v2)
	up := &fakeUploader{}
	if _, err := w.sweeper(reconcile.Config{Settle: time.Nanosecond}, nil, up).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := up.sent(); !slices.Equal(got, []string{prefix + "menu.pdf@" + v1}) {
		t.Errorf("sent %q; want v1", got)
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
	api := &countingS3{Client: w.s3}
	up := &fakeUploader{}
	sum, err := w.sweeper(reconcile.Config{Settle: time.Nanosecond}, api, up).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := (reconcile.Summary{Examined: 3}); sum != want {
		t.Errorf("summary = %+v, want %+v", sum, want)
	}
	if v, o := api.versions.Load(), api.objects.Load(); v != 1 || o != 1 {
		t.Errorf("%d ListObjectVersions and %d ListObjectsV2 requests, want 1 and 1", v, o)
	}
	if len(up.sent()) != 0 {
		t.Errorf("sent %v, want nothing", up.sent())
	}
}

// A run that cannot finish answers before its deadline: it starts a version
// only while the time left covers it, keeps its position, and the next run
// goes on from there, so that every version is sent once in turn.
func TestPositionKeptAcrossRuns(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	var all []string
	for i := range 12 {
		k := prefix + string(rune('a'+i)) + ".pdf"
		all = append(all, k+"@"+w.put(k, []byte("x")))
	}
	up := &fakeUploader{delay: 300 * time.Millisecond, outcome: upload.Rejected}
	cfg := reconcile.Config{Settle: time.Nanosecond, Concurrency: 2, MinSend: 400 * time.Millisecond, Reserve: 100 * time.Millisecond}
	var runs int
	for ; len(up.sent()) < len(all) && runs < 10; runs++ {
		before := len(up.sent())
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		dl, _ := ctx.Deadline()
		sum, err := w.sweeper(cfg, nil, up).Run(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if late := time.Since(dl); late > 0 {
			t.Errorf("run %d answered %s after its deadline", runs, late)
		}
		if sum.Rejected != len(up.sent())-before || sum.Rejected == 0 {
			t.Fatalf("run %d: summary %+v, %d sent; want some sent, each counted", runs, sum, len(up.sent())-before)
		}
		// What the fake uploader answered is now a verdict.
		for _, s := range up.sent()[before:] {
			k, v, _ := strings.Cut(s, "@")
			w.record(k, v)
		}
	}
	if got := up.sent(); !slices.Equal(got, all) || runs < 2 {
		t.Fatalf("after %d runs sent %q; want each of %q once, over several runs", runs, got, all)
	}
}

// A run in which sends failed logs its summary and ends with an error, so
// that the function's errors alarm fires; the others are still sent.
func TestFailuresEndTheRunInError(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.put(prefix+"a.pdf", []byte("x"))
	w.put(prefix+"b.pdf", []byte("x"))
	sum, err := w.sweeper(reconcile.Config{Settle: time.Nanosecond}, nil, &fakeUploader{outcome: upload.Failed}).Run(context.Background())
	var ie messages.InvokeResponse_Error
	if !errors.As(err, &ie) || ie.Type != "SweepFailures" || !strings.Contains(ie.Message, "2 of 2") {
		t.Fatalf("Run = %v; want a SweepFailures error counting 2 of 2", err)
	}
	if sum.Failed != 2 || sum.Pending != 2 {
		t.Errorf("summary = %+v; want 2 pending, 2 failed", sum)
	}
}

// Failing to list is an error that names the permission.
func TestListFailure(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	cfg := reconcile.Config{Bucket: w.bucket + "-missing", Prefixes: []string{prefix}}
	_, err := reconcile.New(cfg, w.s3, ledger.New(w.s3, ledger.Config{}), &fakeUploader{}, nil).Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "s3:") {
		t.Errorf("Run on a missing bucket = %v, want an error naming the permission", err)
	}
}
