package upload

import (
	"fmt"
	"mime"
	"net/url"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/config"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

// Tag keys and values the pipeline writes on the objects it handles.
const (
	TagMediaID  = "nxcloud-media-id"
	TagStatus   = "nxcloud-status"
	TagError    = "nxcloud-error"
	StatusDone  = "uploaded"
	StatusError = "rejected"
)

// MetadataBusinessPhone is the user metadata key (x-amz-meta-business-phone)
// that names the merchant phone of an object.
const MetadataBusinessPhone = "business-phone"

// maxTags is the number of tags S3 allows on one object.
const maxTags = 10

// maxTagValue is the longest tag value S3 accepts, in characters.
const maxTagValue = 256

// DecodeKey decodes an object key as S3 event notifications encode it: like a
// URL query value, '+' for a space and %xx escapes.
func DecodeKey(raw string) (string, error) {
	k, err := url.QueryUnescape(raw)
	if err != nil {
		return "", fmt.Errorf("object key %q is not URL-encoded as S3 events encode keys: %w", raw, err)
	}
	return k, nil
}

// EncodeKey encodes a key the way S3 event notifications do (the inverse of
// DecodeKey), for building events in tests and tools: URL query encoding
// with a space as '+', the slashes between segments kept.
func EncodeKey(key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = url.QueryEscape(p)
	}
	return strings.Join(parts, "/")
}

// phoneFor picks the merchant phone of an object: its business-phone
// metadata, else the first path segment after prefix when it is a phone, else
// def. The reason is set when no valid phone results.
func phoneFor(metadata map[string]string, key, prefix, def string) (phone, reason string) {
	for k, v := range metadata {
		if strings.EqualFold(k, MetadataBusinessPhone) {
			v = strings.TrimSpace(v)
			if !config.ValidPhone(v) {
				return "", fmt.Sprintf("metadata business-phone %q is not 5 to 20 digits with country code", v)
			}
			return v, ""
		}
	}
	rest := strings.TrimPrefix(key, prefix)
	if i := strings.IndexByte(rest, '/'); i > 0 && config.ValidPhone(rest[:i]) {
		return rest[:i], ""
	}
	if def != "" && config.ValidPhone(def) {
		return def, ""
	}
	return "", "no business phone: set metadata business-phone, put the object under " + prefix + "<phone>/ or set " + config.EnvBusinessPhone
}

// extensionTypes maps file extensions to the NXCloud type they carry.
var extensionTypes = map[string]string{
	".pdf":  "application/pdf",
	".mp4":  "video/mp4",
	".jpg":  "image/jpeg",
	".jpeg": "image/jpeg",
	".png":  "image/png",
}

// bareMediaType lower-cases a Content-Type and strips its parameters.
func bareMediaType(contentType string) string {
	if t, _, err := mime.ParseMediaType(contentType); err == nil {
		return t
	}
	t, _, _ := strings.Cut(contentType, ";")
	return strings.ToLower(strings.TrimSpace(t))
}

// typeFor picks the NXCloud type of an object: its Content-Type when NXCloud
// accepts it, else the type its extension names. The reason is set when
// neither gives an accepted type.
func typeFor(contentType, key string) (typ, reason string) {
	if t := bareMediaType(contentType); nxcloud.IsAcceptedType(t) {
		return t, ""
	}
	ext := strings.ToLower(path.Ext(key))
	if t, ok := extensionTypes[ext]; ok {
		return t, ""
	}
	ct := bareMediaType(contentType)
	if ct == "" {
		ct = "none"
	}
	return "", fmt.Sprintf("unsupported type: content-type %s and extension %q: use pdf, mp4, jpeg or png", ct, ext)
}

// tagSafe turns s into a valid S3 tag value: only ASCII letters and digits,
// spaces and + - = . _ : / @, runs of anything else replaced by one space, at
// most 256 characters.
func tagSafe(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("+-=._:/@", r)
		if !ok {
			if !space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		b.WriteRune(r)
		space = false
	}
	out := strings.TrimSpace(b.String())
	if utf8.RuneCountInString(out) > maxTagValue {
		out = strings.TrimSpace(out[:maxTagValue])
	}
	return out
}

// ourTags are the keys the pipeline owns; merging replaces all of them.
var ourTags = []string{TagMediaID, TagStatus, TagError}

// mergeTags returns existing with the pipeline's tags (in the order given)
// replacing any tag the pipeline owns. S3 allows 10 tags per object: when
// existing plus ours exceed that, the last existing tags are dropped and
// their keys returned, so that the status is always recorded.
func mergeTags(existing []types.Tag, ours ...types.Tag) (merged []types.Tag, dropped []string) {
	keep := make([]types.Tag, 0, len(existing)+len(ours))
	for _, t := range existing {
		k := aws.ToString(t.Key)
		owned := false
		for _, o := range ourTags {
			if k == o {
				owned = true
				break
			}
		}
		if !owned {
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

// normalizeETag strips quotes (S3 quotes ETags in headers, events do not).
func normalizeETag(etag string) string { return strings.Trim(etag, `"`) }

// quoteETag quotes an ETag for If-Match.
func quoteETag(etag string) string { return `"` + normalizeETag(etag) + `"` }
