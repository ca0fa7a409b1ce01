package faults_test

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/miniotest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
)

// TestUploadKilledMidUpload: the instance sending a file is killed
// (SIGKILL, as an out-of-memory kill or a crash) 3s into the upload. Lambda
// retries the event about 1 and 3 minutes later, here with the template's
// 300s timeout and the default claim lease: the dead instance's claim is
// stale by then, and a retry uploads the file, once. It waits Lambda's real
// retry schedule, about a minute: skipped with -short.
func TestUploadKilledMidUpload(t *testing.T) {
	if testing.Short() {
		t.Skip("waits Lambda's real retry schedule (about a minute): skipped with -short")
	}
	t.Parallel()
	const timeout = 300 * time.Second
	b := newBucketWorld(t)
	p := newTCPProxy(t, b.nx.URL())
	// NXCloud reads the file at 10 KiB/s: the upload is under way for long.
	p.set(proxyFault{mode: modeDripRequest, chunk: 1024, interval: 100 * time.Millisecond})
	rt := b.startUpload(uploadOpts{nxURL: p.URL(), timeout: timeout})
	// Larger than the kernel buffers of a loopback connection: on Linux a
	// killed process's socket still delivers what it had buffered, which a
	// killed Lambda sandbox does not.
	obj := b.put("killed-"+randomHex(3)+".pdf", 16<<20)

	killed := make(chan *lambdart.Result, 1)
	go func() {
		res, err := rt.Invoke(t.Context(), obj.event)
		if err != nil {
			t.Errorf("invoke: %v", err)
		}
		killed <- res
	}()
	time.Sleep(3 * time.Second)
	if c := miniotest.Keys(b.t, b.s3, b.bucket, claimPrefix); len(c) != 1 {
		t.Fatalf("claims 3s into the upload: %v; want the holder's one", c)
	}
	if err := syscall.Kill(rt.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	res := <-killed
	failedAt := time.Now()
	if res == nil || res.Error == nil || res.Error.Type != lambdart.ErrorTypeExit {
		t.Fatalf("the killed invocation ended with %+v; want %s", res, lambdart.ErrorTypeExit)
	}
	p.set(proxyFault{})

	var retries []attempt
	for _, after := range []time.Duration{time.Minute, 3 * time.Minute} {
		time.Sleep(time.Until(failedAt.Add(after)))
		a := invoke(t, rt, obj.event, timeout)
		retries = append(retries, a)
		if !a.failed() {
			break
		}
		if !strings.Contains(a.res.Error.Message, "claim") {
			t.Errorf("retry after %v failed: %s", after, a.res.Error.Message)
		}
	}
	if len(retries) != 1 {
		t.Errorf("%d retries; want the first one, a minute later, to upload", len(retries))
	}
	tags := b.checkInvariants(obj, retries)
	if tags["nxcloud-status"] != uploaded || b.uploadsOf(obj) != 1 {
		t.Fatalf("after the retries: tags %v, %d uploads; want uploaded once", tags, b.uploadsOf(obj))
	}
	recordOutcome("Upload (crash)", "SIGKILL 3s into the upload, retries at 1 and 3 min (300s timeout)",
		"killed: "+res.Error.Type+"; "+summary(retries, tags, b.uploadsOf(obj)))
}

// TestUploadPlaceholderSecret: the stack's secret still holds the
// template's placeholders. Nothing is sent to NXCloud, every attempt fails
// with the put-secret-value fix, and once the secret is set the event (from
// the failure queue, or the sweep) uploads.
func TestUploadPlaceholderSecret(t *testing.T) {
	t.Parallel()
	b := newBucketWorld(t)
	b.sm.Put(secretName, `{"accessKey":"REPLACE_ME","accessSecret":"REPLACE_ME"}`)
	rt := b.startUpload(uploadOpts{})
	obj := b.put("placeholder-"+randomHex(3)+".pdf", 64<<10)
	attempts := deliver(t, rt, obj.event, 5*time.Second, nil)
	for i, a := range attempts {
		if !a.failed() || !strings.Contains(a.res.Error.Message, "aws secretsmanager put-secret-value") {
			t.Errorf("attempt %d: %+v; want an error giving the put-secret-value fix", i+1, a.res.Error)
		}
	}
	if len(attempts) != maxAttempts {
		t.Errorf("%d attempts; want all %d to fail", len(attempts), maxAttempts)
	}
	if n := len(b.nx.Calls("")); n != 0 {
		t.Fatalf("NXCloud received %d calls with the placeholder credentials; want none", n)
	}
	b.checkInvariants(obj, attempts)

	c := b.nx.Credentials()
	b.putSecret(c.AccessKey, c.AccessSecret)
	if a := invoke(t, rt, obj.event, 5*time.Second); a.failed() {
		t.Fatalf("after the secret was set: %s", a.res.Error.Message)
	}
	if n := b.uploadsOf(obj); n != 1 {
		t.Fatalf("NXCloud stored %d copies; want 1", n)
	}
	recordOutcome("Upload (NXCloud, credentials)", "secret still holds the template's REPLACE_ME",
		summary(attempts, miniotest.Tags(b.t, b.s3, b.bucket, obj.key, obj.version), 0)+"; 0 calls to NXCloud; uploaded once the secret was set")
}

// TestUploadSlowS3AfterAnswer: NXCloud answers late in the invocation and
// S3 turns slow right then. The id is recorded and the object tagged before
// the deadline: one attempt, one upload.
func TestUploadSlowS3AfterAnswer(t *testing.T) {
	t.Parallel()
	const timeout = 5 * time.Second
	b := newBucketWorld(t)
	s3p := newSlowDownProxy(t, b.minio.Endpoint, 0)
	rt := b.startUpload(uploadOpts{s3URL: s3p.url, timeout: timeout})
	obj := b.put("slow-s3-"+randomHex(3)+".pdf", 8<<10)
	// The send must end 1s before the deadline (a fifth of 5s); NXCloud
	// answers about 3s in, and from 2.5s on every S3 request takes 500ms.
	b.nx.Inject(nxcloud.ActionUploadTemplateFile, nxcloudtest.Fault{Delay: 3 * time.Second})
	slow := time.AfterFunc(2500*time.Millisecond, func() { s3p.delay.Store(int64(500 * time.Millisecond)) })
	defer slow.Stop()
	a := invoke(t, rt, obj.event, timeout)
	s3p.delay.Store(0)
	if a.failed() {
		t.Fatalf("the attempt failed after %v: %s", a.elapsed, a.res.Error.Message)
	}
	tags := b.checkInvariants(obj, []attempt{a})
	if tags["nxcloud-status"] != uploaded || b.uploadsOf(obj) != 1 {
		t.Fatalf("tags %v, %d uploads; want uploaded once", tags, b.uploadsOf(obj))
	}
	recordOutcome("Upload (S3)", "S3 slow (500 ms a request) right after NXCloud answered, 3s into a 5s timeout", summary([]attempt{a}, tags, 1))
}
