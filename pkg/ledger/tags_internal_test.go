package ledger

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

func TestTagValue(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{`unsupported type "text/plain"`, "unsupported type text/plain"},
		{"nxcloud code 9002: not a WhatsApp number!", "nxcloud code 9002: not a WhatsApp number"},
		{"a\nb\tc", "a b c"},
		{"keep +-=._:/@ these", "keep +-=._:/@ these"},
		{"菜单 x", "x"},
		{strings.Repeat("x", 300), strings.Repeat("x", 256)},
	} {
		if got := TagValue(tc.in); got != tc.want {
			t.Errorf("TagValue(%q) = %q; want %q", tc.in, got, tc.want)
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
	err := s3Err("get object", "s3:GetObject", denied)
	if !strings.Contains(err.Error(), "needs s3:GetObject") || !errors.Is(err, denied) {
		t.Errorf("s3Err(AccessDenied) = %v: want the permission named and the cause kept", err)
	}
	other := errors.New("connection reset")
	if got := s3Err("get object", "s3:GetObject", other).Error(); strings.Contains(got, "access denied") {
		t.Errorf("s3Err(transport) = %q: must not claim access denied", got)
	}
}
