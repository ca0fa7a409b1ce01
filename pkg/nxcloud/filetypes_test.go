package nxcloud_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

// row is one line of a destination's table as SPEC.md "Upload" writes it.
type row struct {
	kind       string
	mediaType  string
	extensions []string
	maxBytes   int64
}

const (
	kib = 1024
	mib = 1024 * 1024
)

// messageMediaSpec is SPEC.md's uploadMedia table, transcribed.
var messageMediaSpec = []row{
	{"image", "image/jpeg", []string{".jpg", ".jpeg"}, 5 * mib},
	{"image", "image/png", []string{".png"}, 5 * mib},
	{"audio", "audio/aac", []string{".aac"}, 16 * mib},
	{"audio", "audio/mp4", []string{".m4a"}, 16 * mib},
	{"audio", "audio/mpeg", []string{".mp3"}, 16 * mib},
	{"audio", "audio/amr", []string{".amr"}, 16 * mib},
	{"audio", "audio/ogg", []string{".ogg", ".opus"}, 16 * mib},
	{"video", "video/mp4", []string{".mp4"}, 16 * mib},
	{"video", "video/3gp", []string{".3gp"}, 16 * mib},
	{"document", "text/plain", []string{".txt"}, 100 * mib},
	{"document", "application/pdf", []string{".pdf"}, 100 * mib},
	{"document", "application/vnd.ms-powerpoint", []string{".ppt"}, 100 * mib},
	{"document", "application/msword", []string{".doc"}, 100 * mib},
	{"document", "application/vnd.ms-excel", []string{".xls"}, 100 * mib},
	{"document", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", []string{".docx"}, 100 * mib},
	{"document", "application/vnd.openxmlformats-officedocument.presentationml.presentation", []string{".pptx"}, 100 * mib},
	{"document", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", []string{".xlsx"}, 100 * mib},
	{"sticker", "image/webp", []string{".webp"}, 100 * kib},
}

// templateFileSpec is the uploadTemplateFile list (no limit of its own);
// image/jpg is accepted but no extension maps to it.
var templateFileSpec = []row{
	{"document", "application/pdf", []string{".pdf"}, 0},
	{"video", "video/mp4", []string{".mp4"}, 0},
	{"image", "image/jpeg", []string{".jpg", ".jpeg"}, 0},
	{"image", "image/png", []string{".png"}, 0},
	{"image", "image/jpg", nil, 0},
}

func TestFileTypeRows(t *testing.T) {
	t.Parallel()
	tables := []struct {
		name  string
		table nxcloud.FileTypes
		spec  []row
	}{
		{"message", nxcloud.MessageMediaTypes, messageMediaSpec},
		{"template", nxcloud.TemplateFileTypes, templateFileSpec},
	}
	for _, tb := range tables {
		if got := len(tb.table); got != len(tb.spec) {
			t.Errorf("%s: %d rows, want the %d of the specification", tb.name, got, len(tb.spec))
		}
		for _, r := range tb.spec {
			t.Run(tb.name+"/"+r.mediaType, func(t *testing.T) {
				t.Parallel()
				check := func(how string, f nxcloud.FileType, ok bool) {
					t.Helper()
					if !ok || f.MediaType != r.mediaType || f.Kind != r.kind || f.MaxBytes != r.maxBytes || !slices.Equal(f.Extensions, r.extensions) {
						t.Errorf("%s = %+v, %v; want %s %s %v max %d", how, f, ok, r.kind, r.mediaType, r.extensions, r.maxBytes)
					}
				}
				for _, mt := range []string{r.mediaType, strings.ToUpper(r.mediaType), strings.ToUpper(r.mediaType[:1]) + r.mediaType[1:]} {
					f, ok := tb.table.ByMediaType(mt)
					check("ByMediaType("+mt+")", f, ok)
				}
				for _, ext := range r.extensions {
					f, ok := tb.table.ByExtension(ext)
					check("ByExtension("+ext+")", f, ok)
					f, ok = tb.table.ByExtension(strings.ToUpper(ext))
					check("ByExtension("+strings.ToUpper(ext)+")", f, ok)
				}
			})
		}
	}
}

func TestFileTypeLookups(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		table  nxcloud.FileTypes
		lookup func(nxcloud.FileTypes, string) (nxcloud.FileType, bool)
		in     string
		want   string // the MediaType found; "" for none
	}{
		{"3gpp is read as 3gp", nxcloud.MessageMediaTypes, nxcloud.FileTypes.ByMediaType, "video/3gpp", "video/3gp"},
		{"3gpp in capitals", nxcloud.MessageMediaTypes, nxcloud.FileTypes.ByMediaType, "Video/3GPP", "video/3gp"},
		{"image/jpg is no message type", nxcloud.MessageMediaTypes, nxcloud.FileTypes.ByMediaType, "image/jpg", ""},
		{"image/jpg is a template type", nxcloud.TemplateFileTypes, nxcloud.FileTypes.ByMediaType, "image/jpg", "image/jpg"},
		{"webp is no template type", nxcloud.TemplateFileTypes, nxcloud.FileTypes.ByMediaType, "image/webp", ""},
		{"audio is no template type", nxcloud.TemplateFileTypes, nxcloud.FileTypes.ByMediaType, "audio/mpeg", ""},
		{"3gpp is no template type", nxcloud.TemplateFileTypes, nxcloud.FileTypes.ByMediaType, "video/3gpp", ""},
		{"gif", nxcloud.MessageMediaTypes, nxcloud.FileTypes.ByMediaType, "image/gif", ""},
		{"parameters are the caller's to strip", nxcloud.MessageMediaTypes, nxcloud.FileTypes.ByMediaType, "text/plain; charset=utf-8", ""},
		{"empty type", nxcloud.MessageMediaTypes, nxcloud.FileTypes.ByMediaType, "", ""},
		{"prefix of a type", nxcloud.MessageMediaTypes, nxcloud.FileTypes.ByMediaType, "image/", ""},
		{".3gpp is no extension of the table", nxcloud.MessageMediaTypes, nxcloud.FileTypes.ByExtension, ".3gpp", ""},
		{".opus is ogg", nxcloud.MessageMediaTypes, nxcloud.FileTypes.ByExtension, ".Opus", "audio/ogg"},
		{".jpg is image/jpeg for templates", nxcloud.TemplateFileTypes, nxcloud.FileTypes.ByExtension, ".JPG", "image/jpeg"},
		{".webp is no template file", nxcloud.TemplateFileTypes, nxcloud.FileTypes.ByExtension, ".webp", ""},
		{".txt is no template file", nxcloud.TemplateFileTypes, nxcloud.FileTypes.ByExtension, ".txt", ""},
		{"without the dot", nxcloud.MessageMediaTypes, nxcloud.FileTypes.ByExtension, "pdf", ""},
		{"no extension", nxcloud.MessageMediaTypes, nxcloud.FileTypes.ByExtension, "", ""},
		{"a dot alone", nxcloud.MessageMediaTypes, nxcloud.FileTypes.ByExtension, ".", ""},
		{"gif extension", nxcloud.MessageMediaTypes, nxcloud.FileTypes.ByExtension, ".gif", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, ok := tc.lookup(tc.table, tc.in)
			if ok != (tc.want != "") || f.MediaType != tc.want {
				t.Errorf("lookup(%q) = %q, %v; want %q", tc.in, f.MediaType, ok, tc.want)
			}
		})
	}
}

// Each extension and each spelling names one row, so that a lookup cannot
// depend on the order of the rows.
func TestFileTypesUnambiguous(t *testing.T) {
	t.Parallel()
	for name, table := range map[string]nxcloud.FileTypes{"message": nxcloud.MessageMediaTypes, "template": nxcloud.TemplateFileTypes} {
		seen := map[string]string{}
		for _, f := range table {
			for _, k := range append(append([]string{f.MediaType}, f.Aliases...), f.Extensions...) {
				if k != strings.ToLower(k) {
					t.Errorf("%s: %q is not lower-case", name, k)
				}
				if other, dup := seen[k]; dup {
					t.Errorf("%s: %q names both %s and %s", name, k, other, f.MediaType)
				}
				seen[k] = f.MediaType
			}
		}
	}
}

func TestFileTypeLimit(t *testing.T) {
	t.Parallel()
	sticker, _ := nxcloud.MessageMediaTypes.ByMediaType("image/webp")
	pdf, _ := nxcloud.MessageMediaTypes.ByMediaType("application/pdf")
	template, _ := nxcloud.TemplateFileTypes.ByMediaType("application/pdf")
	tests := []struct {
		name      string
		f         nxcloud.FileType
		maxUpload int64
		want      int64
	}{
		{"sticker under MAX_UPLOAD_BYTES", sticker, 100 * mib, 100 * kib},
		{"document at MAX_UPLOAD_BYTES", pdf, 100 * mib, 100 * mib},
		{"document over a lower MAX_UPLOAD_BYTES", pdf, 10 * mib, 10 * mib},
		{"document without MAX_UPLOAD_BYTES", pdf, 0, 100 * mib},
		{"template file: MAX_UPLOAD_BYTES only", template, 100 * mib, 100 * mib},
		{"template file without any limit", template, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.f.Limit(tc.maxUpload); got != tc.want {
				t.Errorf("Limit(%d) = %d, want %d", tc.maxUpload, got, tc.want)
			}
		})
	}
}

func TestAcceptedTypes(t *testing.T) {
	t.Parallel()
	if want := []string{"application/pdf", "video/mp4", "image/jpeg", "image/png", "image/jpg"}; !slices.Equal(nxcloud.AcceptedTypes, want) {
		t.Errorf("AcceptedTypes = %v, want %v", nxcloud.AcceptedTypes, want)
	}
	for in, want := range map[string]bool{"image/jpg": true, "application/pdf": true, "IMAGE/PNG": false, "image/webp": false, "": false} {
		if got := nxcloud.IsAcceptedType(in); got != want {
			t.Errorf("IsAcceptedType(%q) = %v, want %v", in, got, want)
		}
	}
}
