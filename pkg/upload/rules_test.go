package upload

import (
	"strings"
	"testing"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
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
	tmpl, msg := nxcloud.TemplateFileTypes, nxcloud.MessageMediaTypes
	for _, tc := range []struct {
		types         nxcloud.FileTypes
		ct, key, want string
		kind          string // message media only
	}{
		{tmpl, "application/pdf", "templates/a.bin", "application/pdf", ""},
		{tmpl, "Image/PNG; charset=binary", "templates/a", "image/png", ""},
		{tmpl, "image/jpg", "templates/a.png", "image/jpg", ""},
		{tmpl, "video/mp4", "templates/a.mov", "video/mp4", ""},
		{tmpl, "application/octet-stream", "templates/a.pdf", "application/pdf", ""},
		{tmpl, "binary/octet-stream", "templates/A.JPG", "image/jpeg", ""},
		{tmpl, "", "templates/a.jpeg", "image/jpeg", ""},
		{tmpl, "text/plain", "templates/a.png", "image/png", ""},
		{tmpl, "", "templates/clip.MP4", "video/mp4", ""},
		{tmpl, "text/plain", "templates/a.txt", "", ""},
		{tmpl, "image/gif", "templates/a.gif", "", ""},
		{tmpl, "", "templates/noext", "", ""},
		{msg, "image/jpeg", "media/a.bin", "image/jpeg", "image"},
		{msg, "audio/ogg; codecs=opus", "media/voice", "audio/ogg", "audio"},
		{msg, "", "media/voice.opus", "audio/ogg", "audio"},
		{msg, "application/octet-stream", "media/song.M4A", "audio/mp4", "audio"},
		{msg, "video/3gpp", "media/clip", "video/3gp", "video"},
		{msg, "", "media/report.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "document"},
		{msg, "Text/Plain; charset=utf-8", "media/notes", "text/plain", "document"},
		{msg, "", "media/sticker.webp", "image/webp", "sticker"},
		{msg, "image/jpg", "media/a.gif", "", ""},
		{msg, "image/gif", "media/a.gif", "", ""},
		{tmpl, "text/plain", "templates/notes.txt", "", ""},
		{tmpl, "image/webp", "templates/s.webp", "", ""},
	} {
		t.Run(tc.ct+" "+tc.key, func(t *testing.T) {
			t.Parallel()
			ft, reason := typeFor(tc.types, tc.ct, tc.key)
			got := ft.MediaType
			if got != tc.want || tc.kind != "" && ft.Kind != tc.kind {
				t.Fatalf("typeFor(%q, %q) = %q (%s); want %q", tc.ct, tc.key, got, reason, tc.want)
			}
			if (tc.want == "") != (reason != "") {
				t.Fatalf("typeFor(%q, %q) reason %q with type %q", tc.ct, tc.key, reason, got)
			}
		})
	}
}
