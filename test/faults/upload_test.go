package faults_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localstack"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/miniotest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/ledger"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/upload"
)

const (
	prefix      = "templates/"
	mediaPrefix = "media/"
	claimPrefix = ledger.ClaimPrefix
	uploaded    = string(upload.Uploaded)
	rejected    = string(upload.Rejected)
	// maxAttempts is one invocation plus Lambda's asynchronous retries
	// (MaximumRetryAttempts 2, the template's default and AWS's maximum).
	maxAttempts = 3
)

// bucketWorld is a world with a bucket on the shared MinIO.
type bucketWorld struct {
	*world
	minio  *miniotest.Server
	s3     *s3.Client
	bucket string
}

func newBucketWorld(t *testing.T) *bucketWorld {
	t.Helper()
	w := newWorld(t)
	m := miniotest.Shared(t)
	b := &bucketWorld{world: w, minio: m, s3: m.Client(), bucket: m.NewBucket(t, true)}
	w.grant(m, b.bucket)
	return b
}

// uploadOpts are the settings of one upload function run.
type uploadOpts struct {
	nxURL, s3URL string        // defaults: the world's NXCloud and MinIO
	timeout      time.Duration // default 5s
	env          []string
	// fn is the function: default UploadTemplateFileFunction; also
	// UploadMediaFunction and ReconcileFunction (of the world's bucket).
	fn string
}

// functionPackages are the packages of the functions the faults suite runs
// against S3.
var functionPackages = map[string]string{
	"UploadTemplateFileFunction": pkgUpload,
	"UploadMediaFunction":        module + "/functions/upload-media",
	"ReconcileFunction":          module + "/functions/reconcile",
}

func (b *bucketWorld) startUpload(o uploadOpts) *lambdart.Runtime {
	b.t.Helper()
	if o.s3URL == "" {
		o.s3URL = b.minio.Endpoint
	}
	o.fn = cmp.Or(o.fn, "UploadTemplateFileFunction")
	env := []string{
		"UPLOAD_PREFIX=" + prefix,
		"MEDIA_PREFIX=" + mediaPrefix,
		"MEDIA_BUCKET=" + b.bucket,
		"AWS_ENDPOINT_URL_S3=" + o.s3URL,
	}
	return b.start(functionPackages[o.fn], fnOpts{name: o.fn, nxURL: o.nxURL, timeout: o.timeout, env: append(env, o.env...)})
}

// object is one stored object version and the event announcing it.
type object struct {
	key, version, etag, sha string
	size                    int64
	event                   []byte
}

// put stores size bytes under templates/<phone>/name and builds its event.
func (b *bucketWorld) put(name string, size int) object {
	b.t.Helper()
	body := bytes.Repeat([]byte("%PDF-1.7 fault "), size/15+1)[:size]
	key := prefix + phone + "/" + name
	out, err := b.s3.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(b.bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		ContentType: aws.String("application/pdf"),
	})
	if err != nil {
		b.t.Fatalf("put %s: %v", key, err)
	}
	o := object{key: key, version: aws.ToString(out.VersionId), etag: strings.Trim(aws.ToString(out.ETag), `"`),
		size: int64(size), sha: fmt.Sprintf("%x", sha256.Sum256(body))}
	ev, err := json.Marshal(localstack.S3EventForObject(b.bucket, key, o.size, o.etag, o.version))
	if err != nil {
		b.t.Fatal(err)
	}
	o.event = ev
	return o
}

// attempt is one invocation of the upload function.
type attempt struct {
	res     *lambdart.Result
	elapsed time.Duration
}

func (a attempt) failed() bool { return a.res.Error != nil }

// invoke delivers ev once and checks that a failure is the function's own
// error returned before its deadline, never Lambda killing it.
func invoke(t *testing.T, rt *lambdart.Runtime, ev []byte, timeout time.Duration) attempt {
	t.Helper()
	start := time.Now()
	res, err := rt.Invoke(t.Context(), ev)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	a := attempt{res: res, elapsed: time.Since(start)}
	if res.Error != nil {
		switch res.Error.Type {
		case lambdart.ErrorTypeTimeout, lambdart.ErrorTypeExit:
			t.Errorf("the invocation ended with %s after %v (%s): the function must return its error before the deadline",
				res.Error.Type, a.elapsed, res.Error.Message)
		}
		if a.elapsed >= timeout {
			t.Errorf("the failed invocation took %v, the function timeout is %v", a.elapsed, timeout)
		}
	}
	return a
}

// deliver is Lambda's asynchronous invocation: the event is retried while
// the function returns an error, up to maxAttempts invocations in all;
// between attempts heal runs (attempt number given), so that a fault can
// clear as it does in real life.
func deliver(t *testing.T, rt *lambdart.Runtime, ev []byte, timeout time.Duration, heal func(n int)) []attempt {
	t.Helper()
	var all []attempt
	for n := 1; n <= maxAttempts; n++ {
		a := invoke(t, rt, ev, timeout)
		all = append(all, a)
		if !a.failed() {
			break
		}
		if heal != nil {
			heal(n)
		}
	}
	return all
}

// uploadsOf counts the files NXCloud stored for o (same name and content).
func (b *bucketWorld) uploadsOf(o object) int {
	n := 0
	for _, m := range b.nx.Uploads() {
		if m.FileName == path.Base(o.key) && m.SHA256 == o.sha {
			n++
		}
	}
	return n
}

// answeredIDs are the media ids NXCloud answered (HTTP 200, code 0, no
// fault but a delay) and the client received.
func (b *bucketWorld) answeredIDs() map[string]bool {
	ids := map[string]bool{}
	for _, c := range b.nx.Calls(nxcloud.ActionUploadTemplateFile) {
		delayOnly := c.Fault != nil && *c.Fault == nxcloudtest.Fault{Delay: c.Fault.Delay, Times: c.Fault.Times}
		if c.HTTPStatus == 200 && c.Code == 0 && c.MediaID != "" && (c.Fault == nil || delayOnly) {
			ids[c.MediaID] = true
		}
	}
	return ids
}

// checkInvariants checks what must hold after any fault: an uploaded tag
// only with an id NXCloud answered, and the same id in the version's
// record; a failed last attempt leaves the object untagged-or-rejected; a
// claim is left only with a verdict recorded.
func (b *bucketWorld) checkInvariants(o object, attempts []attempt) map[string]string {
	b.t.Helper()
	tags := miniotest.Tags(b.t, b.s3, b.bucket, o.key, o.version)
	rec, err := ledger.New(b.s3, ledger.Config{}).Record(context.Background(), ledger.Object{Bucket: b.bucket, Key: o.key, VersionID: o.version})
	if err != nil {
		b.t.Fatalf("read record of %s: %v", o.key, err)
	}
	if tags[ledger.TagStatus] == uploaded {
		if id := tags[ledger.TagMediaID]; !b.answeredIDs()[id] {
			b.t.Errorf("tagged %s=%s with media id %q that NXCloud never answered (answered: %v)",
				ledger.TagStatus, uploaded, id, b.answeredIDs())
		}
		if rec == nil || rec.Status != ledger.Uploaded || rec.MediaID != tags[ledger.TagMediaID] {
			b.t.Errorf("tagged uploaded with %q but the record is %+v", tags[ledger.TagMediaID], rec)
		}
	}
	if last := attempts[len(attempts)-1]; last.failed() && tags[ledger.TagStatus] == uploaded {
		b.t.Errorf("the last attempt failed (%s) but the object is tagged uploaded", last.res.Error.Message)
	}
	if rec == nil && slices.Contains(miniotest.Keys(b.t, b.s3, b.bucket, claimPrefix), ledger.ClaimKey(o.key, o.version)) {
		b.t.Errorf("the claim of %s is left behind without a verdict", o.key)
	}
	return tags
}

// summary is the observed outcome of a delivery, for the report.
func summary(attempts []attempt, tags map[string]string, uploads int) string {
	var parts []string
	for i, a := range attempts {
		if a.failed() {
			parts = append(parts, fmt.Sprintf("attempt %d: error in %v", i+1, a.elapsed.Round(10*time.Millisecond)))
		} else {
			parts = append(parts, fmt.Sprintf("attempt %d: ok in %v", i+1, a.elapsed.Round(10*time.Millisecond)))
		}
	}
	status := tags[ledger.TagStatus]
	if status == "" {
		status = "untagged"
	}
	return fmt.Sprintf("%s; %s; %d upload(s)", strings.Join(parts, ", "), status, uploads)
}

// uploadCase is one fault against the upload function.
type uploadCase struct {
	name    string
	timeout time.Duration // function timeout; default 5s
	size    int           // object size; default 4 KiB
	// proxy puts a TCP proxy with this fault between the function and
	// NXCloud; heal (when proxy is set) makes it pass again.
	proxy *proxyFault
	// warm uploads another object first (credentials cached).
	warm   bool
	before func(b *bucketWorld)
	// heal runs after failed attempt n.
	heal func(b *bucketWorld, p *tcpProxy, n int)
	// want: attempts made, final status tag ("" untagged), uploads of the
	// object NXCloud stored.
	wantAttempts int
	wantStatus   string
	wantUploads  int
}

func healProxy(b *bucketWorld, p *tcpProxy, n int) { p.set(proxyFault{}) }

// TestUploadFaults delivers an S3 event to UploadTemplateFileFunction under
// each fault, retrying like Lambda while the function returns an error.
func TestUploadFaults(t *testing.T) {
	t.Parallel()
	up := nxcloud.ActionUploadTemplateFile
	inject := func(f nxcloudtest.Fault) func(*bucketWorld) {
		return func(b *bucketWorld) { b.nx.Inject(up, f) }
	}
	tests := []uploadCase{
		// NXCloud HTTP errors and bad answers: NXCloud stored nothing, the
		// retry uploads once.
		{name: "HTTP 500 once", before: inject(nxcloudtest.Fault{HTTPStatus: 500}), wantAttempts: 2, wantStatus: uploaded, wantUploads: 1},
		{name: "HTTP 429 once", before: inject(nxcloudtest.Fault{HTTPStatus: 429}), wantAttempts: 2, wantStatus: uploaded, wantUploads: 1},
		{name: "HTTP 503 twice", before: inject(nxcloudtest.Fault{HTTPStatus: 503, Times: 2}), wantAttempts: 3, wantStatus: uploaded, wantUploads: 1},
		{name: "HTTP 503 on every attempt (to the failure queue)", before: inject(nxcloudtest.Fault{HTTPStatus: 503, Times: 3}),
			wantAttempts: 3, wantStatus: "", wantUploads: 0},
		{name: "HTML instead of JSON once", before: inject(nxcloudtest.Fault{Body: "<html>busy</html>"}), wantAttempts: 2, wantStatus: uploaded, wantUploads: 1},
		{name: "truncated JSON once", before: inject(nxcloudtest.Fault{Body: `{"code":0,"data":{"id":"4:tru`}), wantAttempts: 2, wantStatus: uploaded, wantUploads: 1},
		{name: "code 0 without an id once", before: inject(nxcloudtest.Fault{Body: `{"code":0,"data":{},"message":"ok"}`}), wantAttempts: 2, wantStatus: uploaded, wantUploads: 1},
		{name: "code 9001 once", before: inject(nxcloudtest.Fault{Code: 9001}), wantAttempts: 2, wantStatus: uploaded, wantUploads: 1},
		{name: "connection dropped before the body was read", before: inject(nxcloudtest.Fault{DropConnection: true}), wantAttempts: 2, wantStatus: uploaded, wantUploads: 1},
		{name: "connection dropped after the body was read", before: inject(nxcloudtest.Fault{DropConnection: true, Delay: time.Millisecond}), wantAttempts: 2, wantStatus: uploaded, wantUploads: 1},
		{name: "code 9002 (permanent)", before: inject(nxcloudtest.Fault{Code: 9002}), wantAttempts: 1, wantStatus: rejected, wantUploads: 0},
		{name: "code 9000 (permanent)", before: inject(nxcloudtest.Fault{Code: 9000}), wantAttempts: 1, wantStatus: rejected, wantUploads: 0},

		// Below HTTP, through the proxy.
		{name: "request dripped past the deadline", proxy: &proxyFault{mode: modeDripRequest, chunk: 512, interval: 100 * time.Millisecond},
			size: 256 << 10, heal: healProxy, wantAttempts: 2, wantStatus: uploaded, wantUploads: 1},
		{name: "accepted and never read", proxy: &proxyFault{mode: modeBlackHole}, heal: healProxy,
			wantAttempts: 2, wantStatus: uploaded, wantUploads: 1},
		// NXCloud stored the file but its answer was lost: the retry cannot
		// know, and NXCloud's API has no idempotency key, so it uploads a
		// second copy. Only the id actually received is tagged.
		{name: "answer reset mid-body after NXCloud stored the file", proxy: &proxyFault{mode: modeResetResponse, n: 10, conns: 1},
			wantAttempts: 2, wantStatus: uploaded, wantUploads: 2},
		{name: "answer truncated after NXCloud stored the file", proxy: &proxyFault{mode: modeTruncateResponse, n: 10, conns: 1},
			wantAttempts: 2, wantStatus: uploaded, wantUploads: 2},
		{name: "answer later than the deadline after NXCloud stored the file", before: inject(nxcloudtest.Fault{Delay: 30 * time.Second}),
			wantAttempts: 2, wantStatus: uploaded, wantUploads: 2},

		// Credentials.
		{name: "rotated in NXCloud and in the secret", warm: true, before: func(b *bucketWorld) { b.rotate(true) },
			wantAttempts: 1, wantStatus: uploaded, wantUploads: 1},
		{name: "rotated in NXCloud only (to the failure queue)", warm: true, before: func(b *bucketWorld) { b.rotate(false) },
			wantAttempts: 3, wantStatus: "", wantUploads: 0},
		{name: "rotated in NXCloud only, then the secret updated", warm: true, before: func(b *bucketWorld) { b.rotate(false) },
			heal: func(b *bucketWorld, _ *tcpProxy, n int) {
				c := b.nx.Credentials()
				b.putSecret(c.AccessKey, c.AccessSecret)
			}, wantAttempts: 2, wantStatus: uploaded, wantUploads: 1},
		{name: "Secrets Manager down on a cold start, then back", before: func(b *bucketWorld) { b.sm.FailNext(1000, "InternalServiceError", 500) },
			heal: func(b *bucketWorld, _ *tcpProxy, n int) { b.sm.FailNext(0, "", 0) }, wantAttempts: 2, wantStatus: uploaded, wantUploads: 1},
		{name: "Secrets Manager down while the cached secret is valid", warm: true,
			before:       func(b *bucketWorld) { b.sm.FailNext(1000, "InternalServiceError", 500) },
			wantAttempts: 1, wantStatus: uploaded, wantUploads: 1},
		{name: "secret malformed, then fixed", before: func(b *bucketWorld) { b.sm.Put(secretName, `{"accessKey":"AKonly1234567"}`) },
			heal: func(b *bucketWorld, _ *tcpProxy, n int) {
				c := b.nx.Credentials()
				b.putSecret(c.AccessKey, c.AccessSecret)
			}, wantAttempts: 2, wantStatus: uploaded, wantUploads: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.run)
	}
}

func (tc uploadCase) run(t *testing.T) {
	t.Parallel()
	b := newBucketWorld(t)
	o := uploadOpts{timeout: cmp.Or(tc.timeout, 5*time.Second)}
	var p *tcpProxy
	if tc.proxy != nil {
		p = newTCPProxy(t, b.nx.URL())
		o.nxURL = p.URL()
	}
	rt := b.startUpload(o)
	if tc.warm {
		w := b.put("warm-up.pdf", 100)
		if a := invoke(t, rt, w.event, o.timeout); a.failed() {
			t.Fatalf("warm-up: %s", a.res.Error.Message)
		}
	}
	obj := b.put("menu-"+randomHex(3)+".pdf", cmp.Or(tc.size, 4<<10))
	if tc.before != nil {
		tc.before(b)
	}
	if p != nil {
		p.set(*tc.proxy)
	}
	attempts := deliver(t, rt, obj.event, o.timeout, func(n int) {
		if tc.heal != nil {
			tc.heal(b, p, n)
		}
	})

	if p != nil && p.faulted.Load() == 0 {
		t.Errorf("no connection went through the %s proxy fault", tc.proxy.mode)
	}
	if len(attempts) != tc.wantAttempts {
		var msgs []string
		for _, a := range attempts {
			if a.failed() {
				msgs = append(msgs, a.res.Error.Message)
			}
		}
		t.Errorf("%d attempts, want %d (errors: %q)", len(attempts), tc.wantAttempts, msgs)
	}
	tags := b.checkInvariants(obj, attempts)
	if got := tags[ledger.TagStatus]; got != tc.wantStatus {
		t.Errorf("tag %s = %q, want %q (tags %v)", ledger.TagStatus, got, tc.wantStatus, tags)
	}
	// A delayed upload is stored when its handler ends: wait for it.
	uploads := b.uploadsOf(obj)
	for deadline := time.Now().Add(2 * time.Second); uploads < tc.wantUploads && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		uploads = b.uploadsOf(obj)
	}
	if uploads != tc.wantUploads {
		t.Errorf("NXCloud stored the object %d times, want %d", uploads, tc.wantUploads)
	}
	recordOutcome("Upload (NXCloud, credentials)", tc.name, summary(attempts, tags, uploads))
}
