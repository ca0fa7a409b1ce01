package upload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Where the pipeline keeps its objects, outside any upload prefix.
const (
	// RecordPrefix holds one record per object version with a verdict:
	// RecordPrefix + <key> + "/" + <version id>.
	RecordPrefix = "nxcloud-records/"
	// ClaimPrefix holds one claim per object version being sent:
	// ClaimPrefix + <key> + "/" + <version id>.
	ClaimPrefix = "nxcloud-claims/"
)

// Record is the verdict made for one object version, stored as JSON at
// RecordKey(Key, VersionID) in the object's bucket. It is what decides
// whether a version is sent: a version with a record is never sent again,
// and a verdict made for another version (the tags a copy carries over)
// counts for nothing. The media id is kept whole here even when the tag can
// only hold its S3-safe form.
type Record struct {
	Status        Outcome   `json:"status"` // Uploaded, Rejected or Superseded
	Bucket        string    `json:"bucket"`
	Key           string    `json:"key"`
	VersionID     string    `json:"version_id"`
	MediaID       string    `json:"media_id,omitempty"`
	Error         string    `json:"error,omitempty"` // why it was rejected or superseded
	BusinessPhone string    `json:"business_phone,omitempty"`
	Type          string    `json:"type,omitempty"`
	Size          int64     `json:"size,omitempty"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// RecordKey is the key of the record of one version of the object key.
func RecordKey(key, versionID string) string { return versionKey(RecordPrefix, key, versionID) }

// ClaimKey is the key of the claim of one version of the object key.
func ClaimKey(key, versionID string) string { return versionKey(ClaimPrefix, key, versionID) }

// maxKeyLen is the longest S3 object key, in bytes.
const maxKeyLen = 1024

// versionKey is prefix + key + "/" + version, or, when that is longer than
// S3 allows, prefix + "sha256/" + the hex SHA-256 of key and version.
func versionKey(prefix, key, versionID string) string {
	if k := prefix + key + "/" + versionID; len(k) <= maxKeyLen {
		return k
	}
	sum := sha256.Sum256([]byte(key + "\x00" + versionID))
	return prefix + "sha256/" + hex.EncodeToString(sum[:])
}

// ObjectGetter is the one S3 call ReadRecord needs; *s3.Client satisfies it.
type ObjectGetter interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// maxRecordBytes bounds what is read of a record.
const maxRecordBytes = 64 << 10

// ReadRecord returns the record of one object version, or nil when the
// version has no verdict yet.
func ReadRecord(ctx context.Context, api ObjectGetter, bucket, key, versionID string) (*Record, error) {
	rk := RecordKey(key, versionID)
	out, err := api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(rk)})
	if err != nil {
		if IsNotFound(err) {
			return nil, nil
		}
		return nil, s3Error("read record "+rk, "s3:GetObject on "+RecordPrefix+"*", err)
	}
	defer out.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(out.Body, maxRecordBytes))
	if err != nil {
		return nil, fmt.Errorf("read record %s: %w", rk, err)
	}
	var rec Record
	if err := json.Unmarshal(raw, &rec); err != nil || rec.Status == "" {
		return nil, fmt.Errorf("record %s is not a verdict written by this function: delete it to have the version sent", rk)
	}
	return &rec, nil
}

func (h *Handler) readRecord(ctx context.Context, v *version) (*Record, error) {
	return ReadRecord(ctx, h.s3, v.bucket, v.key, v.id)
}

// writeRecord stores rec as the verdict of v; createOnly keeps a verdict
// that is already there (the write then fails with 412).
func (h *Handler) writeRecord(ctx context.Context, v *version, rec Record, createOnly bool) error {
	rec.Bucket, rec.Key, rec.VersionID, rec.UpdatedAt = v.bucket, v.key, v.id, h.now().UTC()
	body, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode record: %w", err)
	}
	in := &s3.PutObjectInput{
		Bucket:        aws.String(v.bucket),
		Key:           aws.String(RecordKey(v.key, v.id)),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String("application/json"),
	}
	if createOnly {
		in.IfNoneMatch = aws.String("*")
	}
	if _, err := h.s3.PutObject(ctx, in); err != nil {
		if createOnly && isPreconditionFailed(err) {
			return err
		}
		return s3Error("write record "+aws.ToString(in.Key), "s3:PutObject on "+RecordPrefix+"*", err)
	}
	return nil
}

// conclude records the verdict on v and tags v with it: uploaded with
// r.MediaID when verdict is nil, rejected when verdict is a rejection. It
// runs on the post budget, which outlives the send. The record comes first:
// once it is written, no retry sends the version again, whatever becomes of
// the tags.
func (h *Handler) conclude(b budget, v *version, verdict error, r *Result) error {
	rec := Record{Status: Uploaded, MediaID: r.MediaID}
	var e *ending
	if errors.As(verdict, &e) {
		if e.outcome != Rejected {
			return verdict
		}
		rec = Record{Status: Rejected, Error: e.reason}
	}
	rec.BusinessPhone, rec.Type, rec.Size = v.phone, v.typ, v.size
	if err := h.writeRecord(b.post, v, rec, false); err != nil {
		if rec.Status == Uploaded {
			return fmt.Errorf("uploaded as media id %s, but recording the id failed: %w", rec.MediaID, err)
		}
		return fmt.Errorf("rejected (%s), but recording the rejection failed: %w", rec.Error, err)
	}
	if err := h.writeTags(b.post, v, false, tagsFor(rec)...); err != nil {
		return fmt.Errorf("%s (recorded in %s), but tagging failed; the retry tags it: %w", rec.Status, RecordKey(v.key, v.id), err)
	}
	return verdict
}

// confirm ends a record whose version already has a verdict: it makes the
// version's tags say that verdict (an earlier delivery may have recorded it
// and died before tagging) and skips the record.
func (h *Handler) confirm(ctx context.Context, v *version, rec *Record, r *Result) error {
	r.MediaID, r.BusinessPhone, r.Type = rec.MediaID, rec.BusinessPhone, rec.Type
	if want := tagsFor(*rec); len(want) > 0 {
		if err := h.writeTags(ctx, v, true, want...); err != nil {
			return fmt.Errorf("already %s (recorded in %s), but tagging failed: %w", rec.Status, RecordKey(v.key, v.id), err)
		}
	}
	return end(Skipped, "already %s", rec.Status)
}

// tagsFor returns the tags that say the verdict rec.
func tagsFor(rec Record) []types.Tag {
	switch rec.Status {
	case Uploaded:
		return []types.Tag{tag(TagMediaID, MediaIDTagValue(rec.MediaID)), tag(TagStatus, string(Uploaded))}
	case Rejected:
		return []types.Tag{tag(TagStatus, string(Rejected)), tag(TagError, tagSafe(rec.Error))}
	}
	return nil
}
