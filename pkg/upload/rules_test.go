package upload

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

func TestDecodeKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ raw, want string }{
		{"templates/menu.pdf", "templates/menu.pdf"},
		{"templates/my+menu.pdf", "templates/my menu.pdf"},
		{"templates/a%2Bb.pdf", "templates/a+b.pdf"},
		{"templates%2Fx.pdf", "templates/x.pdf"},
		{"templates/%E8%8F%9C%E5%8D%95.pdf", "templates/菜单.pdf"},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeKey(tc.raw)
			if err != nil || got != tc.want {
				t.Fatalf("DecodeKey(%q) = %q, %v; want %q", tc.raw, got, err, tc.want)
			}
			if back, _ := DecodeKey(EncodeKey(got)); back != got {
				t.Errorf("EncodeKey does not round-trip %q: %q", got, back)
			}
		})
	}
	if _, err := DecodeKey("templates/%zz.pdf"); err == nil {
		t.Error("DecodeKey accepted a bad escape")
	}
}

func TestPhoneFor(t *testing.T) {
	t.Parallel()
	const prefix = "templates/"
	for _, tc := range []struct {
		name      string
		meta      map[string]string
		key, def  string
		want      string
		rejectHas string
	}{
		{name: "metadata wins", meta: map[string]string{"business-phone": "8615812341795"}, key: "templates/4915112345678/a.pdf", def: "11111", want: "8615812341795"},
		{name: "metadata key case", meta: map[string]string{"Business-Phone": " 8615812341795 "}, key: "templates/a.pdf", want: "8615812341795"},
		{name: "path segment", key: "templates/4915112345678/a.pdf", def: "11111", want: "4915112345678"},
		{name: "path segment only first", key: "templates/menus/4915112345678/a.pdf", def: "11111", want: "11111"},
		{name: "file named like a phone is no segment", key: "templates/4915112345678", def: "11111", want: "11111"},
		{name: "segment too short", key: "templates/1234/a.pdf", def: "11111", want: "11111"},
		{name: "segment too long", key: "templates/123456789012345678901/a.pdf", def: "11111", want: "11111"},
		{name: "default", key: "templates/a.pdf", def: "8615812341795", want: "8615812341795"},
		{name: "none", key: "templates/a.pdf", rejectHas: "no business phone"},
		{name: "bad metadata", meta: map[string]string{"business-phone": "+86 158"}, key: "templates/4915112345678/a.pdf", def: "11111", rejectHas: "not 5 to 20 digits"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, reason := phoneFor(tc.meta, tc.key, prefix, tc.def)
			if tc.rejectHas != "" {
				if got != "" || !strings.Contains(reason, tc.rejectHas) {
					t.Fatalf("phoneFor = %q, %q; want rejection containing %q", got, reason, tc.rejectHas)
				}
				return
			}
			if got != tc.want || reason != "" {
				t.Fatalf("phoneFor = %q, %q; want %q", got, reason, tc.want)
			}
		})
	}
}

func TestTypeFor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ct, key, want string
	}{
		{"application/pdf", "templates/a.bin", "application/pdf"},
		{"Image/PNG; charset=binary", "templates/a", "image/png"},
		{"image/jpg", "templates/a.png", "image/jpg"},
		{"video/mp4", "templates/a.mov", "video/mp4"},
		{"application/octet-stream", "templates/a.pdf", "application/pdf"},
		{"binary/octet-stream", "templates/A.JPG", "image/jpeg"},
		{"", "templates/a.jpeg", "image/jpeg"},
		{"text/plain", "templates/a.png", "image/png"},
		{"", "templates/clip.MP4", "video/mp4"},
		{"text/plain", "templates/a.txt", ""},
		{"image/gif", "templates/a.gif", ""},
		{"", "templates/noext", ""},
	} {
		t.Run(tc.ct+" "+tc.key, func(t *testing.T) {
			t.Parallel()
			got, reason := typeFor(tc.ct, tc.key)
			if got != tc.want {
				t.Fatalf("typeFor(%q, %q) = %q (%s); want %q", tc.ct, tc.key, got, reason, tc.want)
			}
			if (tc.want == "") != (reason != "") {
				t.Fatalf("typeFor(%q, %q) reason %q with type %q", tc.ct, tc.key, reason, got)
			}
		})
	}
}

func TestTagSafe(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{`unsupported type "text/plain"`, "unsupported type text/plain"},
		{"nxcloud code 9002: not a WhatsApp number!", "nxcloud code 9002: not a WhatsApp number"},
		{"a\nb\tc", "a b c"},
		{"keep +-=._:/@ these", "keep +-=._:/@ these"},
		{"菜单 x", "x"},
		{strings.Repeat("x", 300), strings.Repeat("x", 256)},
	} {
		if got := tagSafe(tc.in); got != tc.want {
			t.Errorf("tagSafe(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

func TestMergeTags(t *testing.T) {
	t.Parallel()
	existing := []types.Tag{tag("owner", "ops"), tag(TagError, "old"), tag("team", "a")}
	got, dropped := mergeTags(existing, tag(TagMediaID, "4:x"), tag(TagStatus, string(Uploaded)))
	want := map[string]string{"owner": "ops", "team": "a", TagMediaID: "4:x", TagStatus: string(Uploaded)}
	if len(got) != len(want) || len(dropped) != 0 {
		t.Fatalf("mergeTags = %v dropped %v; want %v", got, dropped, want)
	}
	for _, tg := range got {
		if want[aws.ToString(tg.Key)] != aws.ToString(tg.Value) {
			t.Errorf("tag %s=%s not expected", aws.ToString(tg.Key), aws.ToString(tg.Value))
		}
	}

	var full []types.Tag
	for i := range 10 {
		full = append(full, tag(string(rune('a'+i)), "v"))
	}
	got, dropped = mergeTags(full, tag(TagStatus, string(Rejected)), tag(TagError, "why"))
	if len(got) != maxTags || strings.Join(dropped, ",") != "i,j" {
		t.Fatalf("mergeTags over the limit: %d tags, dropped %v; want 10 and [i j]", len(got), dropped)
	}
	if v, _ := tagValue(got, TagStatus); v != string(Rejected) {
		t.Errorf("status tag lost: %v", got)
	}
}

func TestS3ErrorNamesPermission(t *testing.T) {
	t.Parallel()
	denied := &smithy.GenericAPIError{Code: "AccessDenied", Message: "Access Denied"}
	err := s3Error("get object", "s3:GetObject", denied)
	if !strings.Contains(err.Error(), "needs s3:GetObject") || !errors.Is(err, denied) {
		t.Errorf("s3Error(AccessDenied) = %v: want the permission named and the cause kept", err)
	}
	other := errors.New("connection reset")
	if got := s3Error("get object", "s3:GetObject", other).Error(); strings.Contains(got, "access denied") {
		t.Errorf("s3Error(transport) = %q: must not claim access denied", got)
	}
}
