package upload_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/ledger"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/upload"
)

// The tests of this file put the pipeline at its fault boundaries: what if
// an S3 call after NXCloud answered fails or stalls, a renewal hangs, a
// version is superseded then made current again.

func (e *env) obj(o object) upload.Object {
	return upload.Object{Bucket: e.bucket, Key: o.key, VersionID: o.version}
}

// retry is Lambda's retry a minute later: the same pipeline with a clock
// two minutes ahead, so that a claim left by the first attempt is stale.
func (e *env) retry(cfg upload.Config) *upload.Pipeline {
	cfg.Clock = later(2 * time.Minute)
	return upload.New(cfg, e.s3, upload.Template("templates/", e.client))
}

// TestAnswerKeptWhenRecordCannotBeWritten: NXCloud answers an id, then
// every write of the record fails (S3 throttling past the SDK's retries)
// for the whole invocation. The id is kept in the claim; Lambda's retry
// records it and tags the version without sending again.
func TestAnswerKeptWhenRecordCannotBeWritten(t *testing.T) {
	t.Parallel()
	spy := &spyS3{failIf: func(op, key string) bool { return op == "PutObject" && strings.HasPrefix(key, ledger.RecordPrefix) }}
	cfg := upload.Config{DefaultBusinessPhone: phone, Margin: 2 * time.Second}
	e := newEnv(t, envOptions{cfg: cfg, wrapS3: spy.wrap})
	o := e.put("templates/menu.pdf", pdf)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	r := e.h.Upload(ctx, e.obj(o))
	if r.Outcome != upload.Failed || !strings.Contains(r.Err.Error(), "kept in its claim") {
		t.Fatalf("Upload = %s (%v); want failed with the answer kept in the claim", r.Outcome, r.Err)
	}
	if ctx.Err() != nil {
		t.Fatal("the upload outlived its invocation")
	}
	ups := e.nx.Uploads()
	if len(ups) != 1 || e.record(o) != nil {
		t.Fatalf("uploads %d, record %+v; want one upload and no record yet", len(ups), e.record(o))
	}
	if c := e.claims(); len(c) != 1 {
		t.Fatalf("claims = %v; the claim holding the answer must stay", c)
	}

	// S3 works again; Lambda's retry (or the sweep) comes after the lease.
	r = e.retry(cfg).Upload(context.Background(), e.obj(o))
	if r.Outcome != upload.Uploaded || r.MediaID != ups[0].ID {
		t.Fatalf("retry = %s %q (%v); want uploaded with the kept id %s", r.Outcome, r.MediaID, r.Err, ups[0].ID)
	}
	if n := e.uploadCalls(); n != 1 {
		t.Fatalf("NXCloud calls = %d; want 1: the retry must record the kept answer, not send again", n)
	}
	e.wantRecord(o, ledger.Uploaded, ups[0].ID)
	if tags := e.tags(o); tags[ledger.TagMediaID] != ups[0].ID {
		t.Fatalf("tags = %v; want the kept id", tags)
	}
}

// TestRejectionKeptWhenRecordCannotBeWritten: the same for a verdict of
// NXCloud that is a rejection: the retry records it, nothing is sent again.
func TestRejectionKeptWhenRecordCannotBeWritten(t *testing.T) {
	t.Parallel()
	spy := &spyS3{failIf: func(op, key string) bool { return op == "PutObject" && strings.HasPrefix(key, ledger.RecordPrefix) }}
	cfg := upload.Config{DefaultBusinessPhone: phone, Margin: 2 * time.Second}
	e := newEnv(t, envOptions{cfg: cfg, wrapS3: spy.wrap})
	o := e.put("templates/menu.pdf", pdf)
	e.nx.Inject(nxcloud.ActionUploadTemplateFile, nxcloudtest.Fault{Code: 9002})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	if r := e.h.Upload(ctx, e.obj(o)); r.Outcome != upload.Failed {
		t.Fatalf("Upload = %s; want failed while the rejection cannot be recorded", r.Outcome)
	}
	if r := e.retry(cfg).Upload(context.Background(), e.obj(o)); r.Outcome != upload.Rejected || !strings.Contains(r.Reason, "9002") {
		t.Fatalf("retry = %s (%s); want the kept rejection", r.Outcome, r.Reason)
	}
	if n := e.uploadCalls(); n != 1 {
		t.Fatalf("NXCloud calls = %d; want 1", n)
	}
}

// TestStalledRenewalStopsSending: a renewal whose connection stalls is a
// lost lease: the send is cancelled when the lease ends, not when S3 gives
// up, and the holder records nothing. A delivery after that takes over and
// sends the file once.
func TestStalledRenewalStopsSending(t *testing.T) {
	t.Parallel()
	const lease = 1500 * time.Millisecond
	// The file streams slowly (its body stalls before its end), so the
	// send is still going when the renewal stalls.
	spy := &spyS3{hang: true, delay: func(op, key string) time.Duration {
		if op == "PutObject/IfMatch" && strings.HasPrefix(key, ledger.ClaimPrefix) {
			return time.Hour
		}
		return 0
	}}
	cfg := upload.Config{DefaultBusinessPhone: phone, Lease: lease}
	e := newEnv(t, envOptions{cfg: cfg, wrapS3: spy.wrap})
	o := e.put("templates/menu.pdf", pdf)
	start := time.Now()
	r := e.h.Upload(context.Background(), e.obj(o))
	took := time.Since(start)
	if r.Outcome != upload.Failed || !errors.Is(r.Err, ledger.ErrLeaseLost) || upload.FailureType(r.Err) != "LeaseLost" {
		t.Fatalf("Upload = %s (%v); want failed: lease lost", r.Outcome, r.Err)
	}
	if took > lease+time.Second {
		t.Errorf("the send went on for %v with a lease of %v: it must stop when the lease ends", took, lease)
	}
	if e.record(o) != nil || len(e.nx.Uploads()) != 0 {
		t.Fatalf("record %+v, uploads %d; want nothing recorded or stored", e.record(o), len(e.nx.Uploads()))
	}
	spy.set(func(s *spyS3) { s.delay, s.hang = nil, false })
	if r := e.retry(cfg).Upload(context.Background(), e.obj(o)); r.Outcome != upload.Uploaded {
		t.Fatalf("retry = %s (%v); want uploaded", r.Outcome, r.Err)
	}
	if n := len(e.nx.Uploads()); n != 1 {
		t.Fatalf("uploads = %d; want 1", n)
	}
}

// TestSlowRecordWriteKeepsClaim: after NXCloud answered, the record write
// is slower than the lease. The lease is renewed meanwhile, so a duplicate
// whose clock runs 5s ahead (the staleness grace used up) still finds the
// claim live and sends nothing.
func TestSlowRecordWriteKeepsClaim(t *testing.T) {
	t.Parallel()
	const lease = 1500 * time.Millisecond
	spy := &spyS3{}
	cfg := upload.Config{DefaultBusinessPhone: phone, Lease: lease}
	e := newEnv(t, envOptions{cfg: cfg, wrapS3: spy.wrap})
	o := e.put("templates/menu.pdf", pdf)
	slow := 2
	spy.set(func(s *spyS3) {
		s.delay = func(op, key string) time.Duration {
			if op == "PutObject" && strings.HasPrefix(key, ledger.RecordPrefix) && slow > 0 {
				slow--
				return 3 * lease
			}
			return 0
		}
	})
	done := make(chan upload.Result, 1)
	go func() { done <- e.h.Upload(context.Background(), e.obj(o)) }()
	// The duplicate arrives while the record write is stalled.
	waitFor(t, func() bool { return len(e.nx.Uploads()) == 1 })
	time.Sleep(lease)
	dupCfg := cfg
	dupCfg.Clock, dupCfg.ClaimWait = later(5*time.Second), lease
	dup := upload.New(dupCfg, e.s3, upload.Template("templates/", e.client)).Upload(context.Background(), e.obj(o))
	r := <-done
	if r.Outcome != upload.Uploaded {
		t.Fatalf("holder = %s (%v); want uploaded", r.Outcome, r.Err)
	}
	if dup.Outcome == upload.Uploaded || e.uploadCalls() != 1 {
		t.Fatalf("duplicate = %s, NXCloud calls %d; want the duplicate kept out and one call", dup.Outcome, e.uploadCalls())
	}
	e.wantRecord(o, ledger.Uploaded, r.MediaID)
}

// TestRejectedFromMetadataOnly: a type or size the destination does not
// take is rejected from HeadObject alone: the object's body is never
// opened, whatever its size.
func TestRejectedFromMetadataOnly(t *testing.T) {
	t.Parallel()
	spy := &spyS3{}
	e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone, MaxUploadBytes: 1 << 20}, wrapS3: spy.wrap})
	big := e.put("templates/big.pdf", bytes.Repeat([]byte("x"), 1<<20+1))
	gif := e.put("templates/anim.gif", []byte("GIF89a"), withType("image/gif"))
	var opened []string
	spy.set(func(s *spyS3) {
		s.delay = func(op, key string) time.Duration {
			if op == "GetObject" && strings.HasPrefix(key, "templates/") {
				opened = append(opened, key)
			}
			return 0
		}
	})
	for _, o := range []object{big, gif} {
		if r := e.h.Upload(context.Background(), e.obj(o)); r.Outcome != upload.Rejected {
			t.Fatalf("%s: %s (%s); want rejected", o.key, r.Outcome, r.Reason)
		}
	}
	if len(opened) != 0 || e.uploadCalls() != 0 {
		t.Fatalf("bodies opened %v, NXCloud calls %d; want none", opened, e.uploadCalls())
	}
}

// TestSupersededThenUndo: v1's event comes after v2 was stored: v1 is
// superseded, a note and not a verdict. Deleting v2 by version id (the
// usual undo) makes v1 current again, and a redelivery of v1's event (or
// the sweep) sends it.
func TestSupersededThenUndo(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone}})
	v1 := e.put("templates/menu.pdf", pdf)
	v2 := e.put("templates/menu.pdf", []byte("%PDF v2"))
	if r := e.h.Upload(context.Background(), e.obj(v1)); r.Outcome != upload.Superseded {
		t.Fatalf("v1 = %s; want superseded", r.Outcome)
	}
	if _, err := e.s3.DeleteObject(context.Background(), &s3.DeleteObjectInput{
		Bucket: aws.String(e.bucket), Key: aws.String(v2.key), VersionId: aws.String(v2.version)}); err != nil {
		t.Fatal(err)
	}
	r := e.h.Upload(context.Background(), e.obj(v1))
	if r.Outcome != upload.Uploaded {
		t.Fatalf("v1 after the undo = %s (%s %v); want uploaded", r.Outcome, r.Reason, r.Err)
	}
	ups := e.nx.Uploads()
	if len(ups) != 1 || ups[0].SHA256 != v1.sha256 {
		t.Fatalf("uploads = %+v; want v1's bytes", ups)
	}
	if tags := e.tags(v1); tags[ledger.TagStatus] != string(ledger.Uploaded) || tags[ledger.TagError] != "" {
		t.Fatalf("v1's tags = %v; want uploaded, the superseded note gone", tags)
	}
}

// TestSessionFileIsOneFile: the first version stored under an upload
// session's key decides the session; a later version (a second PUT after a
// delete) is rejected as already used and never sent.
func TestSessionFileIsOneFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone}})
	key := "templates/" + upload.SessionFolder + "0123456789abcdef0123456789abcdef/menu.pdf"
	first := e.put(key, pdf)
	if r := e.h.Upload(context.Background(), e.obj(first)); r.Outcome != upload.Uploaded {
		t.Fatalf("first file = %s (%v)", r.Outcome, r.Err)
	}
	if _, err := e.s3.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(key)}); err != nil {
		t.Fatal(err)
	}
	second := e.put(key, []byte("%PDF another file"))
	r := e.h.Upload(context.Background(), e.obj(second))
	if r.Outcome != upload.Rejected || !strings.Contains(r.Reason, "session already used") {
		t.Fatalf("second file = %s (%s); want rejected: session already used", r.Outcome, r.Reason)
	}
	if n := e.uploadCalls(); n != 1 {
		t.Fatalf("NXCloud calls = %d; want 1", n)
	}
	if tags := e.tags(second); tags[ledger.TagStatus] != string(ledger.Rejected) || !strings.Contains(tags[ledger.TagError], "session already used") {
		t.Fatalf("second file's tags = %v", tags)
	}
	// The first version keeps its verdict, and a retry of it is a no-op.
	e.wantRecord(first, ledger.Uploaded, e.nx.Uploads()[0].ID)
}

// TestFailureTypes: the errorType of a failed invocation names the class
// of the failure, for the failure queue's records and the alarms.
func TestFailureTypes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want string
	}{
		{ledger.ErrClaimHeld, "ClaimHeld"},
		{&nxcloud.CredentialsError{Err: errors.New("secrets manager down")}, "SecretUnavailable"},
		{&nxcloud.CredentialsError{Err: nxcloud.ErrNotConfigured}, "SecretNotConfigured"},
		{&nxcloud.APIError{Code: 1001, Action: "uploadTemplateFile"}, "NXCloudAuthFailed"},
		{&nxcloud.APIError{Code: 9001, Action: "uploadTemplateFile"}, "NXCloudFailed"},
		{errors.New("connection refused"), "NXCloudUnavailable"},
		{&ledger.S3Error{Op: "head object", Err: errors.New("connection reset")}, "S3Unavailable"},
	} {
		if got := upload.FailureType(tc.err); got != tc.want {
			t.Errorf("FailureType(%v) = %s; want %s", tc.err, got, tc.want)
		}
	}
}

// waitFor polls cond until it holds, failing the test after 20s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 20s")
		}
	}
}
