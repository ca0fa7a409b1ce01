package upload

import (
	"bytes"
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

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/config"
)

// The claim protocol.
//
// Before the first byte of a version goes to NXCloud, the handler writes the
// version's claim object ClaimKey(key, version) with If-None-Match: *, so
// that exactly one of several concurrent deliveries wins. A claim is a lease:
// it is live for the holder's lease after its last write (S3's LastModified)
// plus staleGrace for clocks, and the holder rewrites it (If-Match on its
// ETag) every third of the lease while it sends, however long the file takes.
// A holder that dies (crash, out of memory, SIGKILL) stops renewing, so its
// claim is stale within lease + staleGrace, before Lambda's first retry.
//
//   - The winner sends, records the verdict and tags. After a transient
//     failure it deletes its claim, every S3 version of it it wrote (oldest
//     first, so that none of them becomes current again), and returns the
//     error. After a verdict it keeps the claim: the record decides from
//     then on, and the bucket's lifecycle rule removes the claim.
//   - A delivery that finds a claim reads it. A stale claim is replaced
//     (If-Match on its ETag: of two deliveries replacing it, one wins), then
//     the version's record is read, since the dead holder may have recorded
//     a verdict before dying. For a live claim the delivery waits, polling
//     the record and the claim, until the record appears (the version is
//     decided: a no-op), the claim is released or goes stale (it competes
//     again), or ClaimWait or the work deadline passes: a transient error,
//     so Lambda retries later. A live claim held elsewhere never ends a
//     record without error: if that holder failed later, the file would be
//     lost.
//   - A holder whose renewal is refused (its ETag no longer matches: the
//     claim was taken over) or that cannot renew before its lease runs out
//     stops sending at once.
//
// Claims live outside the trigger prefix, so writing them triggers nothing.

// claimDoc is the JSON body of a claim object.
type claimDoc struct {
	Bucket    string `json:"bucket"`
	Key       string `json:"key"`
	VersionID string `json:"version_id"`
	Owner     string `json:"owner"`
	LeaseMS   int64  `json:"lease_ms"`
}

// claim is our claim on one version.
type claim struct {
	bucket, key string
	doc         claimDoc

	mu       sync.Mutex
	etag     string    // of our last write
	versions []string  // the S3 versions of the claim object we wrote, oldest first
	written  time.Time // our clock at our last write
}

// heldClaim is a claim as read back: whoever holds it.
type heldClaim struct {
	etag     string
	modified time.Time
	lease    time.Duration
}

// staleGrace is added to a claim's lease before it counts as stale, for the
// clock differences between Lambda instances and S3.
const staleGrace = 5 * time.Second

// ErrClaimHeld reports a live claim held by another delivery: transient
// (Result.Err wraps it). The holder decides the version; a retry after it
// finds the verdict.
var ErrClaimHeld = errors.New("another delivery is sending this version (its claim is live): retry later")

// errLeaseLost stops a send whose claim was taken over or lapsed.
var errLeaseLost = errors.New("the claim on this version was lost (taken over, or not renewed in time): sending stopped")

// claim runs the claim protocol for v. It returns our claim, or the verdict
// another delivery recorded (then the claim, if we hold one, is kept).
func (h *Handler) claim(ctx context.Context, v *version) (*claim, *Record, error) {
	c := &claim{bucket: v.bucket, key: ClaimKey(v.key, v.id), doc: claimDoc{
		Bucket: v.bucket, Key: v.key, VersionID: v.id, Owner: newOwner(), LeaseMS: h.cfg.Lease.Milliseconds(),
	}}
	var waitUntil time.Time
	if h.cfg.ClaimWait > 0 {
		waitUntil = h.now().Add(h.cfg.ClaimWait)
	}
	delay := 200 * time.Millisecond
	for {
		err := h.putClaim(ctx, c, "")
		if err == nil {
			return c, nil, nil
		}
		if !isPreconditionFailed(err) && !isConflict(err) {
			return nil, nil, s3Error("write claim "+c.key, "s3:PutObject on "+ClaimPrefix+"*", err)
		}
		if isPreconditionFailed(err) {
			held, err := h.readClaim(ctx, c.bucket, c.key)
			switch {
			case err != nil && IsNotFound(err):
				continue // released meanwhile: compete again
			case err != nil:
				return nil, nil, s3Error("read claim "+c.key, "s3:GetObject on "+ClaimPrefix+"*", err)
			case h.now().After(held.modified.Add(held.lease + staleGrace)):
				if err := h.putClaim(ctx, c, held.etag); err != nil {
					if isPreconditionFailed(err) || isConflict(err) {
						continue // another delivery replaced it first
					}
					return nil, nil, s3Error("take over claim "+c.key, "s3:PutObject on "+ClaimPrefix+"*", err)
				}
				h.log.InfoContext(ctx, "took over a stale claim: its holder stopped renewing it",
					"bucket", c.bucket, "claim", c.key, "last_renewed", held.modified)
				rec, err := h.readRecord(ctx, v)
				if err != nil {
					h.release(ctx, c)
					return nil, nil, err
				}
				return c, rec, nil
			default:
				rec, err := h.readRecord(ctx, v)
				if err != nil || rec != nil {
					return nil, rec, err
				}
			}
		}
		if !waitUntil.IsZero() && h.now().Add(delay).After(waitUntil) {
			return nil, nil, ErrClaimHeld
		}
		if err := sleep(ctx, delay); err != nil {
			return nil, nil, fmt.Errorf("%w (%w)", ErrClaimHeld, err)
		}
		delay = min(delay*3/2, 5*time.Second)
	}
}

// putClaim writes our claim: created (If-None-Match: *) when ifMatch is
// empty, else replacing the claim object whose ETag is ifMatch.
func (h *Handler) putClaim(ctx context.Context, c *claim, ifMatch string) error {
	body, err := json.Marshal(c.doc)
	if err != nil {
		return fmt.Errorf("encode claim: %w", err)
	}
	in := &s3.PutObjectInput{
		Bucket:        aws.String(c.bucket),
		Key:           aws.String(c.key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String("application/json"),
	}
	if ifMatch == "" {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(ifMatch)
	}
	out, err := h.s3.PutObject(ctx, in)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.etag, c.written = aws.ToString(out.ETag), h.now()
	c.versions = append(c.versions, aws.ToString(out.VersionId))
	return nil
}

// readClaim reads the claim object key, whoever holds it. A body that is not
// a claim counts with the longest lease, so that it cannot block a version
// for longer than a real claim could.
func (h *Handler) readClaim(ctx context.Context, bucket, key string) (heldClaim, error) {
	out, err := h.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return heldClaim{}, err
	}
	defer out.Body.Close()
	held := heldClaim{etag: aws.ToString(out.ETag), modified: aws.ToTime(out.LastModified), lease: config.MaxClaimLease}
	var doc claimDoc
	if raw, err := io.ReadAll(io.LimitReader(out.Body, 64<<10)); err == nil && json.Unmarshal(raw, &doc) == nil {
		if l := time.Duration(doc.LeaseMS) * time.Millisecond; l > 0 && l < held.lease {
			held.lease = l
		}
	}
	return held, nil
}

// hold keeps our lease on c while the send runs on the returned context: it
// renews the claim every third of the lease. When a renewal is refused (the
// claim was taken over) or the lease runs out before a renewal succeeds,
// the context is canceled with errLeaseLost, which stops the send. The
// returned function ends the renewals.
func (h *Handler) hold(ctx context.Context, c *claim) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(h.cfg.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			c.mu.Lock()
			etag, written := c.etag, c.written
			c.mu.Unlock()
			err := h.putClaim(ctx, c, etag)
			switch {
			case err == nil:
			case isPreconditionFailed(err) || h.now().After(written.Add(h.cfg.Lease)):
				cancel(fmt.Errorf("%w: %w", errLeaseLost, err))
				return
			default:
				h.log.WarnContext(ctx, "claim not renewed: trying again", "bucket", c.bucket, "claim", c.key, "error", err)
			}
		}
	}()
	return ctx, func() {
		close(stop)
		<-done
		cancel(nil)
	}
}

// release deletes our claim after a transient failure, so that a retry need
// not wait for it to go stale. It logs (never returns) a failure: the claim
// then goes stale at the end of its lease.
func (h *Handler) release(ctx context.Context, c *claim) {
	c.mu.Lock()
	versions := c.versions
	c.mu.Unlock()
	for _, ver := range versions {
		_, err := h.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(c.bucket), Key: aws.String(c.key), VersionId: aws.String(ver)})
		if err != nil && !IsNotFound(err) {
			h.log.WarnContext(ctx, "claim not released: it goes stale at the end of its lease",
				"bucket", c.bucket, "claim", c.key, "error", err)
			return
		}
	}
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
