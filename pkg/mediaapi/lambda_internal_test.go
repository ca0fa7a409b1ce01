package mediaapi

import (
	"net/url"
	"strings"
	"testing"
)

func TestEscapeUnparseable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		inPath bool
		want   string
	}{
		{"/media/1234567890123456", true, "/media/1234567890123456"},
		{"/media/a%2Fb%20c", true, "/media/a%2Fb%20c"},
		{"/media/médïa", true, "/media/médïa"},
		{"/media/ab\x01c", true, "/media/ab%01c"},
		{"\x00/media/x\x7f", true, "%00/media/x%7F"},
		{"/media/a b", true, "/media/a%20b"},
		{"/media/a#b", true, "/media/a%23b"},
		{"/media/a?b", true, "/media/a%3Fb"},
		{"/media/%zz", true, "/media/%25zz"},
		{"/media/%4", true, "/media/%254"},
		{"/media/%", true, "/media/%25"},
		{"/media/%e9%", true, "/media/%e9%25"},
		{"business_phone=8615812341795&x=?", false, "business_phone=8615812341795&x=?"},
		{"business_phone=86158\n", false, "business_phone=86158%0A"},
		{"", false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got := escapeUnparseable(tc.in, tc.inPath)
			if got != tc.want {
				t.Errorf("escapeUnparseable(%q) = %q, want %q", tc.in, got, tc.want)
			}
			u := "https://example.com/?" + got // as the adapter builds the URL
			if tc.inPath {
				u = "https://example.com/" + strings.TrimPrefix(got, "/")
			}
			if _, err := url.Parse(u); err != nil {
				t.Errorf("result %q still does not parse: %v", got, err)
			}
		})
	}
}
