package faults_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
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
)

// The tests of this file drive the built upload functions and the sweep
// through the fault boundaries of the exactly-once pipeline (SPEC.md,
// "Upload": the lease, the answer never lost to a failed write, superseded
// is not a verdict; "Operations": the sweep handles every key).

// leaseEnv is a short claim lease: a dead or blocked holder's claim is
// stale after 1s + the 5s grace, so a retry goes ahead within seconds.
const leaseEnv = "UPLOAD_CLAIM_LEASE=1s"

// putKey stores body at key with contentType and builds its event.
func (b *bucketWorld) putKey(key string, body []byte, contentType string) object {
	b.t.Helper()
	out, err := b.s3.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(b.bucket), Key: aws.String(key), Body: bytes.NewReader(body), ContentType: aws.String(contentType),
	})
	if err != nil {
		b.t.Fatalf("put %s: %v", key, err)
	}
	o := object{key: key, version: aws.ToString(out.VersionId), etag: strings.Trim(aws.ToString(out.ETag), `"`),
		size: int64(len(body)), sha: fmt.Sprintf("%x", sha256.Sum256(body))}
	if o.event, err = json.Marshal(localstack.S3EventForObject(b.bucket, key, o.size, o.etag, o.version)); err != nil {
		b.t.Fatal(err)
	}
	return o
}

// waitStale waits until the claim of o, if any, is stale for everyone.
func (b *bucketWorld) waitStale(o object) {
	b.t.Helper()
	head, err := b.s3.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(ledger.ClaimKey(o.key, o.version))})
	if err != nil {
		return
	}
	time.Sleep(time.Until(aws.ToTime(head.LastModified).Add(time.Second + ledger.StaleGrace + 500*time.Millisecond)))
}

// sweepNow invokes ReconcileFunction of the world's bucket once.
func (b *bucketWorld) sweepNow(o uploadOpts) *lambdart.Result {
	b.t.Helper()
	o.fn, o.timeout = "ReconcileFunction", cmp.Or(o.timeout, 20*time.Second)
	o.env = append(o.env, "RECONCILE_SETTLE=1ms")
	res, err := b.startUpload(o).Invoke(b.t.Context(), []byte(`{}`))
	if err != nil {
		b.t.Fatalf("invoke the sweep: %v", err)
	}
	return res
}

// recordsThrottled throttles every write of a record, past all the SDK's
// attempts, while on is true.
func recordsThrottled(on *atomic.Bool) func(r *http.Request) s3Fault {
	return func(r *http.Request) s3Fault {
		return s3Fault{throttle: on.Load() && r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/"+ledger.RecordPrefix)}
	}
}

// TestRecordWriteFailureKeepsTheAnswer: NXCloud answers an id, then S3
// throttles every write of the record for the rest of the invocation. The
// id is kept in the claim: Lambda's retry, or the sweep, records it and tags
// the version, and NXCloud receives the file once.
func TestRecordWriteFailureKeepsTheAnswer(t *testing.T) {
	t.Parallel()
	for _, by := range []string{"Lambda's retry", "the sweep"} {
		t.Run(by, func(t *testing.T) {
			t.Parallel()
			b := newBucketWorld(t)
			p := newSlowDownProxy(t, b.minio.Endpoint, 0)
			var throttling atomic.Bool
			throttling.Store(true)
			p.setRule(recordsThrottled(&throttling))
			o := uploadOpts{s3URL: p.url, timeout: 15 * time.Second, env: []string{leaseEnv}}
			rt := b.startUpload(o)
			obj := b.put("menu-"+randomHex(3)+".pdf", 3000)

			first := invoke(t, rt, obj.event, o.timeout)
			if !first.failed() || first.res.Error.Type != "S3Throttled" || !strings.Contains(first.res.Error.Message, "kept in its claim") {
				t.Fatalf("first attempt = %+v; want an S3Throttled error with the answer kept in the claim", first.res.Error)
			}
			if n := len(b.nx.Uploads()); n != 1 {
				t.Fatalf("NXCloud stored %d files; want 1", n)
			}
			p.setRule(nil)
			var attempts []attempt
			if by == "the sweep" {
				b.waitStale(obj)
				res := b.sweepNow(uploadOpts{s3URL: p.url})
				if res.Error != nil || !strings.Contains(string(res.Payload), `"uploaded":1`) {
					t.Fatalf("the sweep answered %s (%+v); want the version uploaded", res.Payload, res.Error)
				}
				attempts = []attempt{first}
			} else {
				attempts = []attempt{first, invoke(t, rt, obj.event, o.timeout)}
				if attempts[1].failed() {
					t.Fatalf("the retry failed: %s", attempts[1].res.Error.Message)
				}
			}
			tags := miniotest.Tags(t, b.s3, b.bucket, obj.key, obj.version)
			if tags[ledger.TagStatus] != uploaded || tags[ledger.TagMediaID] != b.nx.Uploads()[0].ID {
				t.Errorf("tags = %v; want uploaded with the first (only) id %s", tags, b.nx.Uploads()[0].ID)
			}
			if n := len(b.nx.Calls(nxcloud.ActionUploadTemplateFile)); n != 1 {
				t.Errorf("NXCloud got %d uploads; want 1", n)
			}
			recordOutcome("Exactly once", "record write throttled for a whole invocation, then "+by, summary(attempts, tags, len(b.nx.Uploads())))
		})
	}
}

// TestStalledRenewalStopsTheSend: while a file streams slowly to NXCloud,
// the renewal of the claim stalls (S3 holds the request). The holder stops
// sending when its lease ends, records nothing, and the retry sends the
// file once.
func TestStalledRenewalStopsTheSend(t *testing.T) {
	t.Parallel()
	b := newBucketWorld(t)
	p := newSlowDownProxy(t, b.minio.Endpoint, 0)
	p.setRule(func(r *http.Request) s3Fault {
		if r.Method == http.MethodPut && r.Header.Get("If-Match") != "" && strings.Contains(r.URL.Path, "/"+ledger.ClaimPrefix) {
			return s3Fault{hold: time.Hour}
		}
		return s3Fault{}
	})
	nx := newTCPProxy(t, b.nx.URL())
	nx.set(proxyFault{mode: modeDripRequest, chunk: 1024, interval: 100 * time.Millisecond}) // 10 KiB/s
	o := uploadOpts{s3URL: p.url, nxURL: nx.URL(), timeout: 20 * time.Second, env: []string{leaseEnv}}
	rt := b.startUpload(o)
	obj := b.put("slow-"+randomHex(3)+".pdf", 512<<10)

	first := invoke(t, rt, obj.event, o.timeout)
	if !first.failed() || first.res.Error.Type != "LeaseLost" {
		t.Fatalf("first attempt = %+v; want LeaseLost", first.res.Error)
	}
	if first.elapsed > 4*time.Second {
		t.Errorf("the send went on for %v with a lease of 1s: a stalled renewal must stop it when the lease ends", first.elapsed)
	}
	if n := b.uploadsOf(obj); n != 0 {
		t.Fatalf("NXCloud stored the file %d times from the cut send", n)
	}
	p.setRule(nil)
	nx.set(proxyFault{})
	b.waitStale(obj)
	second := invoke(t, rt, obj.event, o.timeout)
	if second.failed() {
		t.Fatalf("the retry failed: %s", second.res.Error.Message)
	}
	tags := b.checkInvariants(obj, []attempt{first, second})
	if n := b.uploadsOf(obj); n != 1 || tags[ledger.TagStatus] != uploaded {
		t.Errorf("NXCloud stored the file %d times, tags %v; want once, uploaded", n, tags)
	}
	recordOutcome("Exactly once", "claim renewal stalled while the file streams", summary([]attempt{first, second}, tags, b.uploadsOf(obj)))
}

// TestSlowRecordWriteKeepsOthersOut: after NXCloud answered, the record
// write is held three leases long. The holder keeps its claim meanwhile, so
// a duplicate delivery on another instance waits for the verdict and sends
// nothing.
func TestSlowRecordWriteKeepsOthersOut(t *testing.T) {
	t.Parallel()
	b := newBucketWorld(t)
	p := newSlowDownProxy(t, b.minio.Endpoint, 0)
	var held atomic.Bool
	p.setRule(func(r *http.Request) s3Fault {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/"+ledger.RecordPrefix) && held.CompareAndSwap(false, true) {
			return s3Fault{hold: 3 * time.Second}
		}
		return s3Fault{}
	})
	o := uploadOpts{s3URL: p.url, timeout: 20 * time.Second, env: []string{leaseEnv}}
	holder, dup := b.startUpload(o), b.startUpload(o)
	obj := b.put("menu-"+randomHex(3)+".pdf", 3000)
	done := make(chan attempt, 1)
	go func() { done <- invoke(t, holder, obj.event, o.timeout) }()
	for deadline := time.Now().Add(10 * time.Second); len(b.nx.Uploads()) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("NXCloud never got the file")
		}
	}
	time.Sleep(1500 * time.Millisecond) // past the lease the answer came in
	second := invoke(t, dup, obj.event, o.timeout)
	first := <-done
	for _, a := range []attempt{first, second} {
		if a.failed() {
			t.Fatalf("a delivery failed: %s", a.res.Error.Message)
		}
	}
	tags := b.checkInvariants(obj, []attempt{first})
	if n := len(b.nx.Calls(nxcloud.ActionUploadTemplateFile)); n != 1 || tags[ledger.TagStatus] != uploaded {
		t.Errorf("NXCloud got %d uploads, tags %v; want 1, uploaded", n, tags)
	}
	recordOutcome("Exactly once", "record write held 3 leases, a duplicate meanwhile", summary([]attempt{first, second}, tags, b.uploadsOf(obj)))
}

// TestUndoSendsTheVersionMadeCurrent: v1's event came after v2 was stored
// (superseded: a note, not a verdict); v2 is then deleted by version id, the
// usual undo. The sweep sends v1.
func TestUndoSendsTheVersionMadeCurrent(t *testing.T) {
	t.Parallel()
	b := newBucketWorld(t)
	rt := b.startUpload(uploadOpts{})
	v1 := b.put("menu.pdf", 3000)
	v2 := b.put("menu.pdf", 4000)
	if a := invoke(t, rt, v1.event, 5*time.Second); a.failed() {
		t.Fatal(a.res.Error.Message)
	}
	if tags := miniotest.Tags(t, b.s3, b.bucket, v1.key, v1.version); tags[ledger.TagStatus] != ledger.Superseded {
		t.Fatalf("v1's tags = %v; want superseded", tags)
	}
	if _, err := b.s3.DeleteObject(context.Background(), &s3.DeleteObjectInput{
		Bucket: aws.String(b.bucket), Key: aws.String(v2.key), VersionId: aws.String(v2.version)}); err != nil {
		t.Fatal(err)
	}
	if res := b.sweepNow(uploadOpts{}); res.Error != nil || !strings.Contains(string(res.Payload), `"uploaded":1`) {
		t.Fatalf("the sweep answered %s (%+v); want v1 uploaded", res.Payload, res.Error)
	}
	if n := b.uploadsOf(v1); n != 1 {
		t.Errorf("NXCloud stored v1 %d times; want once", n)
	}
	if tags := miniotest.Tags(t, b.s3, b.bucket, v1.key, v1.version); tags[ledger.TagStatus] != uploaded {
		t.Errorf("v1's tags = %v; want uploaded", tags)
	}
}

// TestOddKeysAreSent: keys with control characters and other bytes XML
// cannot carry raw are listed and sent by the sweep, each to its
// destination, and by their own events; one failing key does not stop the
// others, and the sweep then ends in an error.
func TestOddKeysAreSent(t *testing.T) {
	t.Parallel()
	b := newBucketWorld(t)
	keys := []object{
		b.putKey(prefix+phone+"/odd\x01name.pdf", []byte("%PDF odd"), "application/pdf"),
		b.putKey(prefix+phone+"/tab\tand del\x7f.pdf", []byte("%PDF tab"), "application/pdf"),
		b.putKey(mediaPrefix+phone+"/photo\x02.jpg", []byte("\xff\xd8\xff jpeg"), "image/jpeg"),
	}
	// This one has its own event: the upload function decodes the key.
	event := b.putKey(prefix+phone+"/line\nbreak & plus+.pdf", []byte("%PDF event"), "application/pdf")
	if a := invoke(t, b.startUpload(uploadOpts{}), event.event, 5*time.Second); a.failed() {
		t.Fatalf("the event of %q: %s", event.key, a.res.Error.Message)
	}
	// NXCloud fails the first send of the sweep: the others go on.
	b.nx.Inject(nxcloud.ActionUploadTemplateFile, nxcloudtest.Fault{HTTPStatus: 503})
	res := b.sweepNow(uploadOpts{})
	if res.Error == nil || res.Error.Type != "SweepFailures" {
		t.Fatalf("the sweep with a failed send answered %s (%+v); want the errorType SweepFailures", res.Payload, res.Error)
	}
	if res := b.sweepNow(uploadOpts{}); res.Error != nil {
		t.Fatalf("the next sweep failed: %s", res.Error.Message)
	}
	for _, o := range append(keys, event) {
		if tags := miniotest.Tags(t, b.s3, b.bucket, o.key, o.version); tags[ledger.TagStatus] != uploaded {
			t.Errorf("%q: tags %v; want uploaded", o.key, tags)
		}
		if n := b.uploadsOf(o); n != 1 {
			t.Errorf("%q stored %d times; want once", o.key, n)
		}
	}
	if n := len(b.nx.Calls(nxcloud.ActionUploadMedia)); n != 1 {
		t.Errorf("uploadMedia calls = %d; want 1 (the photo under %s)", n, mediaPrefix)
	}
}

// TestRejectedWithoutReadingTheBody: a file over its limit (the
// deployment's MAX_UPLOAD_BYTES, or its kind's for message media) is
// rejected from HeadObject alone: not one byte of it is read from S3.
func TestRejectedWithoutReadingTheBody(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		fn, key, contentType string
		size                 int
		env                  []string
		reason               string // "" for the control: accepted, read whole
	}{
		{"UploadTemplateFileFunction", prefix + phone + "/small.pdf", "application/pdf", 2000, nil, ""},
		{"UploadTemplateFileFunction", prefix + phone + "/big.pdf", "application/pdf", 3 << 20, []string{"MAX_UPLOAD_BYTES=1048576"}, "MAX_UPLOAD_BYTES"},
		{"UploadMediaFunction", mediaPrefix + phone + "/photo.jpg", "image/jpeg", 5<<20 + 1, nil, "image"},
		{"UploadMediaFunction", mediaPrefix + phone + "/sticker.webp", "image/webp", 100<<10 + 1, nil, "sticker"},
		{"UploadMediaFunction", mediaPrefix + phone + "/anim.gif", "image/gif", 1000, nil, "unsupported type"},
	} {
		t.Run(tc.key, func(t *testing.T) {
			t.Parallel()
			b := newBucketWorld(t)
			p := newSlowDownProxy(t, b.minio.Endpoint, 0)
			obj := b.putKey(tc.key, bytes.Repeat([]byte{0xff}, tc.size), tc.contentType)
			a := invoke(t, b.startUpload(uploadOpts{fn: tc.fn, s3URL: p.url, env: tc.env}), obj.event, 5*time.Second)
			if a.failed() {
				t.Fatal(a.res.Error.Message)
			}
			tags := miniotest.Tags(t, b.s3, b.bucket, obj.key, obj.version)
			if tc.reason == "" {
				if n := p.bytesServed(b.bucket, tc.key); tags[ledger.TagStatus] != uploaded || n != int64(tc.size) {
					t.Errorf("control: tags %v, %d bytes read; want uploaded, the %d bytes counted", tags, n, tc.size)
				}
				return
			}
			if tags[ledger.TagStatus] != rejected || !strings.Contains(tags[ledger.TagError], tc.reason) {
				t.Errorf("tags = %v; want rejected: %s", tags, tc.reason)
			}
			if n := p.bytesServed(b.bucket, tc.key); n != 0 {
				t.Errorf("%d bytes of the rejected object were read from S3; want 0", n)
			}
			if n := len(b.nx.Calls("")); n != 0 {
				t.Errorf("NXCloud was called %d times", n)
			}
		})
	}
}
