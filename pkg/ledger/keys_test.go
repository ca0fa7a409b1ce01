package ledger_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/ledger"
)

// A record's and a claim's key name the object key and version; when that
// is longer than S3 allows, the key is hashed but stays under the prefix
// and the start of the object key (so the functions' permissions on their
// prefix cover it), one per version, valid UTF-8.
func TestKeys(t *testing.T) {
	t.Parallel()
	if got := ledger.RecordKey("templates/a.pdf", "v1"); got != "nxcloud-records/templates/a.pdf/v1" {
		t.Errorf("RecordKey = %q", got)
	}
	if got := ledger.ClaimKey("media/b c.jpg", "v2"); got != "nxcloud-claims/media/b c.jpg/v2" {
		t.Errorf("ClaimKey = %q", got)
	}
	long := "templates/" + strings.Repeat("é", 600) + ".pdf"
	a, b := ledger.RecordKey(long, "v1"), ledger.RecordKey(long, "v2")
	for _, k := range []string{a, b, ledger.ClaimKey(long, "v1")} {
		if len(k) > 1024 || !utf8.ValidString(k) || !strings.Contains(k, "/sha256-") {
			t.Errorf("hashed key %q: %d bytes, valid UTF-8 %v", k, len(k), utf8.ValidString(k))
		}
	}
	if a == b || !strings.HasPrefix(a, ledger.RecordPrefix+"templates/éé") {
		t.Errorf("hashed keys %q and %q: want one per version, under the record prefix and the key's prefix", a, b)
	}
}
