package ledger

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// The claim protocol.
//
// Before the first byte of a version goes to NXCloud, the sender creates the
// version's claim object ClaimKey(key, version) with If-None-Match: *, so
// that exactly one of several concurrent deliveries wins. A claim is a
// lease: others count it live until its last write (S3's LastModified) plus
// its lease plus StaleGrace. Its holder counts it proven only until the
// start of its last successful write plus the lease, so the holder always
// gives up before anyone else may take over.
//
//   - While it sends, the holder renews the claim (If-Match on its ETag)
//     every third of the lease (Hold). Each renewal is bounded by the end of
//     the lease it extends: a stalled S3 connection is a lost lease, not a
//     wait. When a renewal is refused (412: the claim was taken over) or the
//     lease ends before a renewal succeeds, the send is cancelled at once.
//   - From NXCloud's answer until the verdict is recorded the holder keeps
//     the lease too (Claim.Decide): every record attempt is bounded by the
//     lease, and when one fails the answer is written into the claim (which
//     renews it), where the next holder finds it and records it instead of
//     sending. A holder whose claim was taken over writes nothing more.
//   - A delivery that finds a claim reads it. A stale claim is replaced
//     (If-Match on its ETag: of two deliveries replacing it, one wins), with
//     the answer it carries; then the version's record is read, since the
//     dead holder may have recorded a verdict before dying. For a live claim
//     the delivery waits, polling the record and the claim, until the record
//     appears, the claim is released or goes stale, or its wait ends
//     (ErrClaimHeld: transient, the retry finds the verdict).
//   - After a failure before any answer the holder deletes its claim
//     (Release), so that a retry need not wait for it to go stale; after an
//     answer the claim is kept (the record, or the answer the claim carries,
//     decides) and expires with the bucket's lifecycle rule.

// ErrClaimHeld reports a live claim held by another delivery: transient.
// The holder decides the version; a retry after it finds the verdict.
var ErrClaimHeld = errors.New("another delivery is sending this version (its claim is live): retry later")

// ErrLeaseLost reports a claim that was taken over, or whose lease ended
// before a renewal succeeded: the holder stops sending and writes nothing.
var ErrLeaseLost = errors.New("the claim on this version was lost (taken over, or not renewed within its lease): sending stopped")

// The two ways a lease is lost.
var (
	errTakenOver = fmt.Errorf("%w: the claim was taken over by another delivery", ErrLeaseLost)
	errLapsed    = fmt.Errorf("%w: the lease ended before a renewal succeeded", ErrLeaseLost)
)

// claimDoc is the JSON body of a claim object.
type claimDoc struct {
	Bucket    string `json:"bucket"`
	Key       string `json:"key"`
	VersionID string `json:"version_id"`
	Owner     string `json:"owner"`
	LeaseMS   int64  `json:"lease_ms"`
	// Answer is the verdict NXCloud's answer made (the media id, or a
	// rejection), kept here while it is not recorded.
	Answer *Record `json:"answer,omitempty"`
}

// Claim is a claim this process holds on one object version.
type Claim struct {
	l   *Ledger
	o   Object
	key string

	mu       sync.Mutex
	doc      claimDoc
	etag     string    // of our last write
	versions []string  // the S3 versions of the claim object we wrote, oldest first
	until    time.Time // the lease is proven until then
	kept     bool      // our last write carried the answer
}

// Claim claims o for sending. It returns our claim, or the verdict another
// delivery recorded for o. When a live claim is held elsewhere it waits for
// that holder's verdict for at most wait (zero: until ctx ends), then
// returns ErrClaimHeld.
func (l *Ledger) Claim(ctx context.Context, o Object, wait time.Duration) (*Claim, *Record, error) {
	c := &Claim{l: l, o: o, key: ClaimKey(o.Key, o.VersionID), doc: claimDoc{
		Bucket: o.Bucket, Key: o.Key, VersionID: o.VersionID, Owner: newOwner(), LeaseMS: l.lease.Milliseconds(),
	}}
	var waitUntil time.Time
	if wait > 0 {
		waitUntil = l.now().Add(wait)
	}
	perm := "s3:PutObject on " + ClaimPrefix + "*"
	for delay := 200 * time.Millisecond; ; delay = min(delay*3/2, 5*time.Second) {
		err := c.write(ctx, "")
		switch {
		case err == nil:
			return c, nil, nil
		case IsPreconditionFailed(err):
			held, err := l.readClaim(ctx, o.Bucket, c.key)
			switch {
			case IsNotFound(err):
				continue // released meanwhile: compete again
			case err != nil:
				return nil, nil, s3Err("read claim "+c.key, "s3:GetObject on "+ClaimPrefix+"*", err)
			case held.stale(l.now()):
				if a := held.doc.Answer; a != nil && a.verdict() && a.Key == o.Key && a.VersionID == o.VersionID {
					c.doc.Answer = a
				}
				if err := c.write(ctx, held.etag); err != nil {
					if IsPreconditionFailed(err) || IsConflict(err) {
						continue // another delivery replaced it first
					}
					return nil, nil, s3Err("take over claim "+c.key, perm, err)
				}
				l.log.InfoContext(ctx, "took over a stale claim: its holder stopped renewing it",
					"bucket", o.Bucket, "claim", c.key, "last_renewed", held.modified, "answer_kept", held.doc.Answer != nil)
				rec, err := l.Record(ctx, o)
				if err != nil || rec != nil {
					return nil, rec, err
				}
				return c, nil, nil
			default:
				rec, err := l.Record(ctx, o)
				if err != nil || rec != nil {
					return nil, rec, err
				}
			}
		case !IsConflict(err):
			return nil, nil, s3Err("write claim "+c.key, perm, err)
		}
		if !waitUntil.IsZero() && l.now().Add(delay).After(waitUntil) {
			return nil, nil, ErrClaimHeld
		}
		if err := sleep(ctx, delay); err != nil {
			return nil, nil, fmt.Errorf("%w (%w)", ErrClaimHeld, err)
		}
	}
}

// Answer is the verdict an earlier holder kept in the claim because it
// could not record it, nil when none: record it instead of sending.
func (c *Claim) Answer() *Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.doc.Answer
}

// write writes our claim: created (If-None-Match: *) when ifMatch is empty,
// else replacing the claim object whose ETag is ifMatch. On success the
// lease is proven until the write's start plus the lease.
func (c *Claim) write(ctx context.Context, ifMatch string) error {
	c.mu.Lock()
	doc := c.doc
	c.mu.Unlock()
	start := c.l.now()
	out, err := c.l.put(ctx, c.o.Bucket, c.key, doc, ifMatch)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.etag, c.until = aws.ToString(out.ETag), start.Add(c.l.lease)
	c.versions = append(c.versions, aws.ToString(out.VersionId))
	c.kept = doc.Answer != nil
	return nil
}

// renew rewrites our claim (If-Match on our last ETag) within what is left
// of the lease. A refusal (412: taken over) is ErrLeaseLost.
func (c *Claim) renew(ctx context.Context) error {
	c.mu.Lock()
	etag, left := c.etag, c.until.Sub(c.l.now())
	c.mu.Unlock()
	if left <= 0 {
		return errLapsed
	}
	ctx, cancel := context.WithTimeout(ctx, left)
	defer cancel()
	err := c.write(ctx, etag)
	if IsPreconditionFailed(err) {
		return errTakenOver
	}
	return err
}

// left is how long the lease is still proven.
func (c *Claim) left() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.until.Sub(c.l.now())
}

// Hold keeps the lease while the returned context is used: it renews the
// claim every third of the lease (sooner after a failed renewal), and
// cancels the context with an error wrapping ErrLeaseLost (context.Cause)
// when the claim was taken over or the lease ended before a renewal
// succeeded. stop ends the renewals.
func (c *Claim) Hold(ctx context.Context) (held context.Context, stop func()) {
	held, cancel := context.WithCancelCause(ctx)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		failed := false
		for {
			wait := c.left() - 2*c.l.lease/3 // a third of the lease after the last write
			if failed {
				wait = min(max(c.l.lease/10, 100*time.Millisecond), c.left())
			}
			t := time.NewTimer(max(wait, 0))
			select {
			case <-quit:
				t.Stop()
				return
			case <-held.Done():
				t.Stop()
				return
			case <-t.C:
			}
			err := c.renew(held)
			switch {
			case errors.Is(err, ErrLeaseLost):
				cancel(err)
				return
			case err != nil && held.Err() == nil:
				failed = true
				c.l.log.WarnContext(ctx, "claim not renewed: trying again within its lease",
					"bucket", c.o.Bucket, "claim", c.key, "lease_left_ms", c.left().Milliseconds(), "error", err)
			default:
				failed = false
			}
		}
	}()
	return held, func() {
		close(quit)
		<-done
		cancel(nil)
	}
}

// noRetries turns off the SDK's retries of a write Claim.Decide repeats
// itself within the lease: each attempt answers S3's own error (a 503
// SlowDown, say), not a backoff cut short by the lease.
func noRetries(o *s3.Options) { o.RetryMaxAttempts = 1 }

// attemptTimeout bounds one write of the verdict after NXCloud answered, so
// that a stalled connection leaves time to keep the answer in the claim.
const attemptTimeout = 5 * time.Second

// Decide records rec, the verdict NXCloud's answer made, for the claimed
// version, and returns the verdict that stands (another holder's, when one
// was recorded first). The lease is held meanwhile, renewed as while
// sending, and every renewal from now on carries the answer, so that the
// next holder records it instead of sending again. Each attempt is bounded
// by the lease and by attemptTimeout; after a failed one the answer is
// written into the claim at once (a conditional write that also proves the
// claim is still ours after renewals failed). It goes on until ctx ends.
// Once the claim was taken over it writes nothing and returns an error
// wrapping ErrLeaseLost.
func (c *Claim) Decide(ctx context.Context, rec Record) (Record, error) {
	rec.Bucket, rec.Key, rec.VersionID = c.o.Bucket, c.o.Key, c.o.VersionID
	c.mu.Lock()
	if c.doc.Answer == nil || !c.doc.Answer.same(rec) {
		c.doc.Answer, c.kept = &rec, false
	}
	c.mu.Unlock()
	var last error
	for pause := 100 * time.Millisecond; ; pause = min(2*pause, 2*time.Second) {
		if c.left() <= 0 || last != nil && !c.answerKept() {
			if err := c.keep(ctx); errors.Is(err, errTakenOver) {
				return Record{}, err
			} else if err != nil {
				last = err
			}
		}
		if c.left() > 0 {
			held, stop := c.Hold(ctx)
			actx, cancel := context.WithTimeout(held, attemptTimeout)
			got, err := c.l.decide(actx, c.o, rec, noRetries)
			cancel()
			stop()
			if err == nil {
				return got, nil
			}
			if cause := context.Cause(held); errors.Is(cause, errTakenOver) {
				return Record{}, cause
			}
			last = err
		}
		if sleep(ctx, pause) != nil {
			where := "NOT kept anywhere (S3 refused every write): a retry may send the version again"
			if c.answerKept() {
				where = "kept in its claim " + c.key + ": the retry or the sweep records it without sending"
			}
			return Record{}, fmt.Errorf("the verdict (%s) could not be recorded and is %s: %w", describe(rec), where, last)
		}
	}
}

// answerKept reports whether a write of the claim carried its answer.
func (c *Claim) answerKept() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.kept
}

// keep writes the claim with the answer it carries (If-Match on our last
// ETag), within attemptTimeout whatever is left of the lease: a success
// proves the claim is still ours and renews it.
func (c *Claim) keep(ctx context.Context) error {
	c.mu.Lock()
	etag := c.etag
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	err := c.write(ctx, etag)
	if IsPreconditionFailed(err) {
		return errTakenOver
	}
	return err
}

func describe(rec Record) string {
	if rec.Status == Uploaded {
		return "uploaded as media id " + rec.MediaID
	}
	return string(rec.Status) + ": " + rec.Error
}

// Release deletes our claim after a failure before NXCloud answered, so
// that a retry need not wait for it to go stale: every S3 version of it we
// wrote, oldest first, so that none of them becomes current again. A claim
// taken over since is left to its new holder's version. A failure is logged:
// the claim then goes stale at the end of its lease.
func (c *Claim) Release(ctx context.Context) {
	c.mu.Lock()
	versions := c.versions
	c.mu.Unlock()
	for _, ver := range versions {
		_, err := c.l.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(c.o.Bucket), Key: aws.String(c.key), VersionId: aws.String(ver)})
		if err != nil && !IsNotFound(err) {
			c.l.log.WarnContext(ctx, "claim not released: it goes stale at the end of its lease",
				"bucket", c.o.Bucket, "claim", c.key, "error", err)
			return
		}
	}
}

// heldClaim is a claim as read back: whoever holds it.
type heldClaim struct {
	doc      claimDoc
	etag     string
	modified time.Time
	lease    time.Duration
}

// stale reports whether the holder's lease has ended for everyone.
func (h heldClaim) stale(now time.Time) bool { return now.After(h.modified.Add(h.lease + StaleGrace)) }

// readClaim reads the claim object key, whoever holds it. A body that is not
// a claim counts with the longest lease, so that it cannot block a version
// for longer than a real claim could.
func (l *Ledger) readClaim(ctx context.Context, bucket, key string) (heldClaim, error) {
	out, err := l.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return heldClaim{}, err
	}
	held := heldClaim{etag: aws.ToString(out.ETag), modified: aws.ToTime(out.LastModified), lease: MaxLease}
	defer func() { _ = out.Body.Close() }()
	if raw, err := io.ReadAll(io.LimitReader(out.Body, maxRecordBytes)); err == nil && json.Unmarshal(raw, &held.doc) == nil {
		if d := time.Duration(held.doc.LeaseMS) * time.Millisecond; d > 0 && d < held.lease {
			held.lease = d
		}
	}
	return held, nil
}

func newOwner() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
