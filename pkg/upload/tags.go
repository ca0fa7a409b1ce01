package upload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Tag keys the pipeline writes on the object versions it decides.
const (
	TagMediaID = "nxcloud-media-id"
	TagStatus  = "nxcloud-status" // the verdict: uploaded or rejected
	TagError   = "nxcloud-error"  // why it was rejected
)

// ourTags are the keys the pipeline owns; merging replaces all of them, so
// that a copy's carried-over media id or error never survives a new verdict.
var ourTags = []string{TagMediaID, TagStatus, TagError}

// maxTags is the number of tags S3 allows on one object.
const maxTags = 10

// maxTagValue is the longest tag value S3 accepts, in characters.
const maxTagValue = 256

// writeTags writes ours on the version v, merged into its other tags. The current
// tags are read only when HeadObject counted some; with check, they are
// always read and nothing is written when they already say ours.
func (h *Handler) writeTags(ctx context.Context, v *version, check bool, ours ...types.Tag) error {
	var existing []types.Tag
	if check || v.tagCount > 0 {
		out, err := h.s3.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{
			Bucket: aws.String(v.bucket), Key: aws.String(v.key), VersionId: aws.String(v.id),
		})
		if err != nil {
			return s3Error("get object tagging", "s3:GetObjectTagging and s3:GetObjectVersionTagging", err)
		}
		existing = out.TagSet
	}
	merged, dropped := mergeTags(existing, ours...)
	if check && sameTags(existing, merged) {
		return nil
	}
	if len(dropped) > 0 {
		h.log.WarnContext(ctx, "object has too many tags: dropped some to record the upload status",
			"bucket", v.bucket, "key", v.key, "dropped", dropped)
	}
	_, err := h.s3.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{
		Bucket: aws.String(v.bucket), Key: aws.String(v.key), VersionId: aws.String(v.id),
		Tagging: &types.Tagging{TagSet: merged},
	})
	if err != nil {
		return s3Error("put object tagging", "s3:PutObjectTagging and s3:PutObjectVersionTagging", err)
	}
	return nil
}

// MediaIDTagValue is the value of the nxcloud-media-id tag for id: the id
// itself when S3 can hold it as a tag value (at most 256 characters of
// letters, digits, spaces and + - = . _ : / @), else "sha256:" and the hex
// SHA-256 of the id. The record of the version keeps the id whole.
func MediaIDTagValue(id string) string {
	if utf8.RuneCountInString(id) <= maxTagValue && !strings.ContainsFunc(id, notTagRune) {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// notTagRune reports a character outside the conservative tag alphabet:
// ASCII letters and digits, space and + - = . _ : / @.
func notTagRune(r rune) bool {
	return (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && !strings.ContainsRune(" +-=._:/@", r)
}

// tagSafe turns s into a valid S3 tag value: runs of characters outside the
// tag alphabet replaced by one space, at most 256 characters.
func tagSafe(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		if r == ' ' || notTagRune(r) {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	out := b.String()
	if len(out) > maxTagValue {
		out = strings.TrimSpace(out[:maxTagValue])
	}
	return out
}

// mergeTags returns existing with the pipeline's tags (in the order given)
// replacing every tag the pipeline owns. S3 allows 10 tags per object: when
// existing plus ours exceed that, the last existing tags are dropped and
// their keys returned, so that the verdict is always recorded.
func mergeTags(existing []types.Tag, ours ...types.Tag) (merged []types.Tag, dropped []string) {
	keep := make([]types.Tag, 0, len(existing)+len(ours))
	for _, t := range existing {
		if !slices.Contains(ourTags, aws.ToString(t.Key)) {
			keep = append(keep, t)
		}
	}
	if room := maxTags - len(ours); len(keep) > room {
		for _, t := range keep[room:] {
			dropped = append(dropped, aws.ToString(t.Key))
		}
		keep = keep[:room]
	}
	return append(keep, ours...), dropped
}

// sameTags reports whether a and b hold the same keys and values.
func sameTags(a, b []types.Tag) bool {
	if len(a) != len(b) {
		return false
	}
	for _, t := range b {
		if v, ok := tagValue(a, aws.ToString(t.Key)); !ok || v != aws.ToString(t.Value) {
			return false
		}
	}
	return true
}

// tag builds one S3 tag.
func tag(k, v string) types.Tag { return types.Tag{Key: aws.String(k), Value: aws.String(v)} }

// tagValue returns the value of key in tags.
func tagValue(tags []types.Tag, key string) (string, bool) {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value), true
		}
	}
	return "", false
}
