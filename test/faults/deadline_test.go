package faults_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/miniotest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/ledger"
)

// TestUploadDeadlines gives the upload function a short timeout and a
// dependency too slow to finish in it. Every outbound call is bounded by the
// Lambda deadline minus a margin, so the function returns its own error
// before Lambda would kill it: the result is the function's error (not
// Sandbox.Timedout), the process lives on (no new cold start), the claim is
// released and the object is not tagged. Once the dependency is healthy the
// retry uploads the object once, on the same warm process.
func TestUploadDeadlines(t *testing.T) {
	t.Parallel()
	const timeout = 4 * time.Second
	tests := []struct {
		name    string
		setup   func(t *testing.T, b *bucketWorld) (uploadOpts, func())
		wantErr string // part of the function's error
	}{
		{name: "NXCloud reads the file slower than the deadline allows", setup: func(t *testing.T, b *bucketWorld) (uploadOpts, func()) {
			p := newTCPProxy(t, b.nx.URL())
			p.set(proxyFault{mode: modeDripRequest, chunk: 1024, interval: 100 * time.Millisecond})
			return uploadOpts{nxURL: p.URL()}, func() { p.set(proxyFault{}) }
		}, wantErr: "no answer in time"},
		{name: "NXCloud never answers", setup: func(t *testing.T, b *bucketWorld) (uploadOpts, func()) {
			p := newTCPProxy(t, b.nx.URL())
			p.set(proxyFault{mode: modeBlackHole})
			return uploadOpts{nxURL: p.URL()}, func() { p.set(proxyFault{}) }
		}, wantErr: "no answer in time"},
		{name: "Secrets Manager slower than the deadline", setup: func(t *testing.T, b *bucketWorld) (uploadOpts, func()) {
			// The fetch is shared and detached from the caller (bounded
			// by its own 30s): a retry joins it until it ends. A 6s delay
			// outlasts the attempt; the heal waits for the fetch to end.
			b.sm.SetDelay(6 * time.Second)
			return uploadOpts{}, func() {
				b.sm.SetDelay(0)
				time.Sleep(3 * time.Second)
			}
		}, wantErr: "secrets manager unavailable"},
		{name: "S3 slower than the deadline", setup: func(t *testing.T, b *bucketWorld) (uploadOpts, func()) {
			p := newSlowDownProxy(t, b.minio.Endpoint, 0)
			p.delay.Store(int64(30 * time.Second))
			return uploadOpts{s3URL: p.url}, func() { p.delay.Store(0) }
		}, wantErr: "deadline exceeded"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newBucketWorld(t)
			obj := b.put("deadline-"+randomHex(3)+".pdf", 512<<10)
			o, heal := tc.setup(t, b)
			o.timeout = timeout
			rt := b.startUpload(o)

			first := invoke(t, rt, obj.event, timeout)
			if !first.failed() {
				t.Fatalf("the first attempt succeeded in %v; the fault did not bite", first.elapsed)
			}
			fe := first.res.Error
			if fe.Type == lambdart.ErrorTypeTimeout || !strings.Contains(fe.Message, tc.wantErr) {
				t.Errorf("error %s: %q, want the function's own error mentioning %q", fe.Type, fe.Message, tc.wantErr)
			}
			if first.elapsed > timeout-300*time.Millisecond {
				t.Errorf("the function returned after %v: too close to its %v timeout", first.elapsed, timeout)
			}
			if c := miniotest.Keys(b.t, b.s3, b.bucket, claimPrefix); len(c) > 0 {
				t.Errorf("claim not released after the aborted attempt: %v", c)
			}
			if st := miniotest.Tags(b.t, b.s3, b.bucket, obj.key, obj.version)[ledger.TagStatus]; st != "" {
				t.Errorf("tagged %s=%q after the aborted attempt", ledger.TagStatus, st)
			}
			if n := b.uploadsOf(obj); n != 0 {
				t.Errorf("NXCloud stored %d copies after the aborted attempt", n)
			}

			heal()
			second := invoke(t, rt, obj.event, timeout)
			if second.failed() {
				t.Fatalf("the retry failed: %s", second.res.Error.Message)
			}
			if n := rt.ColdStarts(); n != 1 {
				t.Errorf("%d cold starts: the process was killed at the deadline", n)
			}
			tags := b.checkInvariants(obj, []attempt{first, second})
			if tags[ledger.TagStatus] != uploaded || b.uploadsOf(obj) != 1 {
				t.Errorf("after the retry: tags %v, %d uploads; want uploaded once", tags, b.uploadsOf(obj))
			}
			recordOutcome("Upload (deadline 4s)", tc.name, deadlineSummary(first, second, tags, b.uploadsOf(obj)))
		})
	}
}

func deadlineSummary(first, second attempt, tags map[string]string, uploads int) string {
	return "attempt 1: " + first.res.Error.Type + " in " + first.elapsed.Round(10*time.Millisecond).String() +
		" (claim released, untagged, process kept); " + summary([]attempt{second}, tags, uploads)
}
