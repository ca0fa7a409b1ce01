package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Tag keys the ledger writes on the object versions it decides.
const (
	TagMediaID = "nxcloud-media-id"
	TagStatus  = "nxcloud-status" // uploaded, rejected, or superseded (a note, not a verdict)
	TagError   = "nxcloud-error"  // why it was rejected or superseded
)

// Superseded is the nxcloud-status of a version whose event came after a
// newer version was stored. It is not a verdict: it decides nothing.
const Superseded = "superseded"

// ourTags are the keys the ledger owns; a new set replaces all of them, so
// that a copy's carried-over media id or error never survives a new verdict.
var ourTags = []string{TagMediaID, TagStatus, TagError}

// maxTags is the number of tags S3 allows on one object.
const maxTags = 10

// maxTagValue is the longest tag value S3 accepts, in characters.
const maxTagValue = 256

// Tag makes the tags of version o say the verdict rec, the object's other
// tags kept. tagCount is how many tags o has (HeadObject's TagCount): they
// are read, to be kept, only when there are some; a negative count reads
// them and writes nothing when they already say rec.
func (l *Ledger) Tag(ctx context.Context, o Object, rec Record, tagCount int32) error {
	return l.tag(ctx, o, tagCount, verdictTags(rec)...)
}

// MarkSuperseded tags o, whose event came after a newer version became
// current, nxcloud-status=superseded with the reason. It is a note, not a
// verdict: if o becomes current again (the newer version deleted by version
// id), the sweep sends it as any version without a verdict.
func (l *Ledger) MarkSuperseded(ctx context.Context, o Object, reason string) error {
	return l.tag(ctx, o, -1, tag(TagStatus, Superseded), tag(TagError, TagValue(reason)))
}

func (l *Ledger) tag(ctx context.Context, o Object, tagCount int32, ours ...types.Tag) error {
	var existing []types.Tag
	check := tagCount < 0
	if tagCount != 0 {
		out, err := l.s3.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{
			Bucket: aws.String(o.Bucket), Key: aws.String(o.Key), VersionId: aws.String(o.VersionID),
		})
		if err != nil {
			return s3Err("get object tagging", "s3:GetObjectTagging and s3:GetObjectVersionTagging", err)
		}
		existing = out.TagSet
	}
	merged, dropped := mergeTags(existing, ours...)
	if check && sameTags(existing, merged) {
		return nil
	}
	if len(dropped) > 0 {
		l.log.WarnContext(ctx, "object has too many tags: dropped some to record the upload status",
			"bucket", o.Bucket, "key", o.Key, "dropped", dropped)
	}
	_, err := l.s3.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{
		Bucket: aws.String(o.Bucket), Key: aws.String(o.Key), VersionId: aws.String(o.VersionID),
		Tagging: &types.Tagging{TagSet: merged},
	})
	if err != nil {
		return s3Err("put object tagging", "s3:PutObjectTagging and s3:PutObjectVersionTagging", err)
	}
	return nil
}

// verdictTags returns the tags that say the verdict rec.
func verdictTags(rec Record) []types.Tag {
	if rec.Status == Uploaded {
		return []types.Tag{tag(TagMediaID, MediaIDTagValue(rec.MediaID)), tag(TagStatus, string(Uploaded))}
	}
	return []types.Tag{tag(TagStatus, string(rec.Status)), tag(TagError, TagValue(rec.Error))}
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

// TagValue turns a reason into a valid S3 tag value that reads as the
// reason does: a placeholder <name> becomes NAME, a comma or a semicolon
// " /", quotes and brackets are dropped, any other character outside the
// tag alphabet becomes a space (runs of spaces collapse, so words never run
// together); at most 256 characters.
func TagValue(s string) string {
	var b strings.Builder
	space := false
	emit := func(r rune) {
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '<':
			if end := strings.IndexByte(s[i:], '>'); end > 1 && !strings.ContainsFunc(s[i+1:i+end], notTagRune) {
				for _, c := range strings.ToUpper(s[i+1 : i+end]) {
					emit(c)
				}
				i += end + 1
				continue
			}
			space = true
		case strings.ContainsRune("\"'()[]", r):
			// dropped: they stand beside words, not between them
		case r == ',' || r == ';':
			space = true
			emit('/')
			space = true
		case r == ' ' || notTagRune(r):
			space = true
		default:
			if unicode.IsPrint(r) {
				emit(r)
			}
		}
		i += n
	}
	out := b.String()
	if len(out) > maxTagValue {
		out = strings.TrimSpace(out[:maxTagValue])
	}
	return out
}

// mergeTags returns existing with ours (in the order given) replacing every
// tag the ledger owns. S3 allows 10 tags per object: when existing plus ours
// exceed that, the last existing tags are dropped and their keys returned,
// so that the verdict is always recorded.
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

func tag(k, v string) types.Tag { return types.Tag{Key: aws.String(k), Value: aws.String(v)} }

func tagValue(tags []types.Tag, key string) (string, bool) {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value), true
		}
	}
	return "", false
}
