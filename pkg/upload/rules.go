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

// bareMediaType lower-cases a Content-Type and strips its parameters.
func bareMediaType(contentType string) string {
	if t, _, err := mime.ParseMediaType(contentType); err == nil {
		return t
	}
	t, _, _ := strings.Cut(contentType, ";")
	return strings.ToLower(strings.TrimSpace(t))
}

// typeFor picks the NXCloud type of an object among types: its
// Content-Type's media type when accepted, else the type its extension
// names. The reason is set when neither gives an accepted type.
func typeFor(types nxcloud.FileTypes, contentType, key string) (ft nxcloud.FileType, reason string) {
	ct := bareMediaType(contentType)
	if ft, ok := types.ByMediaType(ct); ok {
		return ft, ""
	}
	ext := strings.ToLower(path.Ext(key))
	if ft, ok := types.ByExtension(ext); ok {
		return ft, ""
	}
	if ct == "" {
		ct = "none"
	}
	var exts []string
	for _, t := range types {
		exts = append(exts, t.Extensions...)
	}
	return nxcloud.FileType{}, fmt.Sprintf("unsupported type: content-type %s and extension %q: use %s", ct, ext, strings.Join(exts, " "))
}
