package nxcloud

import (
	"mime"
	"strings"
	"testing"
)

func TestFileDispositionRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		wantPlain bool // no filename* needed
	}{
		{"menu.pdf", true},
		{"with space (1).pdf", true},
		{`a"b.pdf`, false},
		{`a\b.pdf`, false},
		{"a\r\nb.pdf", false},
		{"a\x00b.pdf", false},
		{"menú.pdf", false},
		{"菜单.pdf", false},
		{"\xff.pdf", false},
		{"100%.pdf", true},
		{"it's.pdf", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := fileDisposition("file", tc.name)
			if strings.ContainsAny(d, "\r\n") || strings.ContainsFunc(d, func(r rune) bool { return r > 0x7e }) {
				t.Fatalf("disposition %q is not a single printable ASCII line", d)
			}
			if plain := !strings.Contains(d, "filename*="); plain != tc.wantPlain {
				t.Errorf("disposition %q: plain %v, want %v", d, plain, tc.wantPlain)
			}
			typ, params, err := mime.ParseMediaType(d)
			if err != nil {
				t.Fatalf("ParseMediaType(%q): %v", d, err)
			}
			if typ != "form-data" || params["name"] != "file" || params["filename"] != tc.name {
				t.Errorf("re-parsed %q as %s %v, want filename %q", d, typ, params, tc.name)
			}
		})
	}
}
