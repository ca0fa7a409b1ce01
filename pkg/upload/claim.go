package upload

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// The claim protocol.
//
// Before the first byte of a version goes to NXCloud, the handler writes the
// claim object ClaimPrefix + <key> + "/" + <version id, or ETag when the
// bucket keeps no versions> with If-None-Match: * (S3 conditional write), so
// exactly one of several concurrent deliveries of the same event wins. The
// claim is JSON: bucket, key, version, etag, expires, owner and, only after a
// failed tagging, media_id.
//
//   - The winner re-reads the object's tags (a holder that finished between
//     our first look and our claim tags before it deletes its claim), streams
//     the object, tags it, and deletes its claim. On a failure before NXCloud
//     answered an id it deletes its claim (releases it) and returns the error
//     for Lambda to retry.
//   - A loser reads the claim. If it is expired (its holder's Lambda deadline
//     has passed, plus a few seconds for clock skew: the holder was killed) it deletes exactly that claim (by its
//     version id, or If-Match on its ETag) and competes again. If it is live
//     it waits, polling the object's tags, for at most ClaimWait: when the
//     holder tags the object, the duplicate is a no-op; when the holder
//     releases the claim, the loser claims and uploads. If the claim is still
//     held after ClaimWait the loser returns a transient error: the Lambda
//     retry then finds the object tagged (no-op) or the claim gone or stale
//     (it uploads). Never returning nil for a live claim held elsewhere is
//     deliberate: if that holder failed later, the file would be lost.
//   - If NXCloud answered an id but tagging keeps failing, the holder rewrites
//     its claim with media_id and keeps it. Whoever meets a claim with a
//     media_id, expired or not, tags the object with that id and deletes the
//     claim: a retry never uploads the same version twice.
//
// Claims live outside the trigger prefix, so writing them triggers nothing.

// claimDoc is the JSON body of a claim object.
type claimDoc struct {
	Bucket  string    `json:"bucket"`
	Key     string    `json:"key"`
	Version string    `json:"version,omitempty"`
	ETag    string    `json:"etag,omitempty"`
	Expires time.Time `json:"expires"`
	Owner   string    `json:"owner"`
	MediaID string    `json:"media_id,omitempty"`
}

// claim is a claim object as stored: its key, and the version id and ETag
// that identify this very claim for a conditional delete.
type claim struct {
	key     string
	version string
	etag    string
	doc     claimDoc
}

// staleGrace is added to a claim's expiry before it counts as stale, for
// clock differences between Lambda instances.
const staleGrace = 5 * time.Second

// maxKeyLen is the longest S3 object key, in bytes.
const maxKeyLen = 1024

// claimKey names the claim object of one version of an object.
func (h *Handler) claimKey(key, version, etag string) string {
	id := version
	if id == "" {
		id = "etag-" + normalizeETag(etag)
	}
	k := h.cfg.ClaimPrefix + key + "/" + id
	if len(k) > maxKeyLen {
		sum := sha256.Sum256([]byte(key + "\x00" + id))
		k = h.cfg.ClaimPrefix + "sha256/" + hex.EncodeToString(sum[:])
	}
	return k
}

func newOwner() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// putClaim writes doc as the claim object key. With ifMatch empty it is
// If-None-Match: * (create only); else it replaces the claim with that ETag.
func (h *Handler) putClaim(ctx context.Context, bucket, key string, doc claimDoc, ifMatch string) (*claim, error) {
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode claim: %w", err)
	}
	in := &s3.PutObjectInput{
		Bucket:        aws.String(bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String("application/json"),
	}
	if ifMatch == "" {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(quoteETag(ifMatch))
	}
	out, err := h.s3.PutObject(ctx, in)
	if err != nil {
		return nil, err
	}
	return &claim{key: key, version: aws.ToString(out.VersionId), etag: normalizeETag(aws.ToString(out.ETag)), doc: doc}, nil
}

// readClaim reads the claim object key.
func (h *Handler) readClaim(ctx context.Context, bucket, key string) (*claim, error) {
	out, err := h.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(out.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("read claim %s: %w", key, err)
	}
	c := &claim{key: key, version: aws.ToString(out.VersionId), etag: normalizeETag(aws.ToString(out.ETag))}
	if err := json.Unmarshal(raw, &c.doc); err != nil {
		// Not ours or damaged: treat it as expired so it cannot block
		// uploads forever.
		c.doc = claimDoc{}
	}
	return c, nil
}

// deleteClaim deletes exactly the claim c: its version when the bucket keeps
// versions (that removes it for good and cannot touch a newer claim), else
// the key on condition of its ETag.
func (h *Handler) deleteClaim(ctx context.Context, bucket string, c *claim) error {
	in := &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(c.key)}
	if c.version != "" {
		in.VersionId = aws.String(c.version)
	} else if c.etag != "" {
		in.IfMatch = aws.String(quoteETag(c.etag))
	}
	_, err := h.s3.DeleteObject(ctx, in)
	if err != nil && (isNotFound(err) || isPreconditionFailed(err)) {
		return nil // already gone, or replaced by someone else's claim
	}
	return err
}

// release deletes our claim after a failure, on a context that outlives the
// work deadline, and logs (never returns) a failure to do so: the claim then
// expires at its deadline.
func (h *Handler) release(ctx context.Context, bucket string, c *claim) {
	if c == nil {
		return
	}
	ctx, cancel := cleanupContext(ctx)
	defer cancel()
	if err := h.deleteClaim(ctx, bucket, c); err != nil {
		h.log.WarnContext(ctx, "claim not released: it expires at its deadline",
			"bucket", bucket, "claim", c.key, "expires", c.doc.Expires, "error", err)
	}
}

// errClaimHeld reports a live claim held by another invocation: transient.
var errClaimHeld = errors.New("the object version is being uploaded by another invocation (live claim): retry later")

// acquired is the outcome of acquire: our claim, or a claim of an earlier
// attempt that recorded a media id (recovered), or the media id the object
// was tagged with while we waited (done).
type acquired struct {
	claim     *claim
	recovered bool
	doneID    string
	doneWhy   string
	done      bool
}

// acquire runs the claim protocol for the pinned version p.
func (h *Handler) acquire(ctx context.Context, p *pinned, expires time.Time) (acquired, error) {
	key := h.claimKey(p.key, p.version, p.etag)
	doc := claimDoc{Bucket: p.bucket, Key: p.key, Version: p.version, ETag: p.etag, Expires: expires.UTC(), Owner: newOwner()}
	waitUntil := h.now().Add(h.cfg.ClaimWait)
	delay := 50 * time.Millisecond
	for {
		c, err := h.putClaim(ctx, p.bucket, key, doc, "")
		if err == nil {
			return acquired{claim: c}, nil
		}
		if !isPreconditionFailed(err) && !isConflict(err) {
			return acquired{}, fmt.Errorf("write claim %s: %w", key, err)
		}
		if !isConflict(err) {
			held, err := h.readClaim(ctx, p.bucket, key)
			switch {
			case err != nil && isNotFound(err):
				// Released meanwhile: compete again (after the pause below).
			case err != nil:
				return acquired{}, fmt.Errorf("read claim %s: %w", key, err)
			case held.doc.MediaID != "":
				return acquired{claim: held, recovered: true}, nil
			case h.now().After(held.doc.Expires.Add(staleGrace)):
				h.log.InfoContext(ctx, "deleting expired claim", "bucket", p.bucket, "claim", key, "expires", held.doc.Expires)
				if err := h.deleteClaim(ctx, p.bucket, held); err != nil {
					return acquired{}, fmt.Errorf("delete expired claim %s: %w", key, err)
				}
				continue
			default:
				tags, err := h.tags(ctx, p)
				if err != nil {
					return acquired{}, err
				}
				if why, id, ok := verdict(tags); ok {
					return acquired{done: true, doneID: id, doneWhy: why}, nil
				}
			}
		}
		if h.now().Add(delay).After(waitUntil) {
			return acquired{}, errClaimHeld
		}
		if err := sleep(ctx, delay); err != nil {
			return acquired{}, fmt.Errorf("waiting for claim %s: %w", key, err)
		}
		delay = min(delay*2, time.Second)
	}
}

// recordMediaID rewrites our claim with the media id NXCloud answered, so a
// retry tags instead of uploading again, and removes the claim's previous
// version. It reports whether the id was recorded.
func (h *Handler) recordMediaID(ctx context.Context, bucket string, c *claim, mediaID string) error {
	doc := c.doc
	doc.MediaID = mediaID
	nc, err := h.putClaim(ctx, bucket, c.key, doc, c.etag)
	if err != nil {
		return fmt.Errorf("record media id in claim %s: %w", c.key, err)
	}
	if c.version != "" && c.version != nc.version {
		// Drop the old version so that deleting the new one later does not
		// bring back a claim without the media id.
		_ = h.deleteClaim(ctx, bucket, c)
	}
	*c = *nc
	return nil
}

// cleanupContext is for deleting a claim after the work: it survives the
// cancellation of ctx (the claim must not wait for its expiry needlessly) but
// is bounded.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
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
