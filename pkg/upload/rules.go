package upload

import (
	"fmt"
	"mime"
	"net/url"
	"path"
	"strings"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/config"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

// MetadataBusinessPhone is the user metadata key (x-amz-meta-business-phone)
// that names the merchant phone of an object.
const MetadataBusinessPhone = "business-phone"

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
