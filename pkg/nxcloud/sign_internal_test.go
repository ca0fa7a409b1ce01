package nxcloud

import "testing"

// TestSigningStringWorkedExample checks the string construction against the
// worked example of signing.md (bizType 1, action send). The expected digests
// were computed independently with
//
//	printf '%s' 'accessKey=fme2na3kdi3ki&action=send&bizType=1&ts=1655710885431&body={"id":10001,"name":"xxx"}&accessSecret=s3cr3t-Example' | md5sum
//
// (and sha256sum), not with this package.
func TestSigningStringWorkedExample(t *testing.T) {
	t.Parallel()
	cred := Credentials{AccessKey: "fme2na3kdi3ki", AccessSecret: "s3cr3t-Example"}
	body := []byte(`{"id":10001,"name":"xxx"}`)
	const want = `accessKey=fme2na3kdi3ki&action=send&bizType=1&ts=1655710885431&body={"id":10001,"name":"xxx"}&accessSecret=s3cr3t-Example`

	if got := string(appendSigningString(nil, cred, "send", "1", "1655710885431", body)); got != want {
		t.Fatalf("signing string\n got %s\nwant %s", got, want)
	}
	tests := []struct {
		name string
		alg  Algorithm
		want string
	}{
		{"md5", MD5, "740ebb23bd9c918c092b1954e367952f"},
		{"sha256", SHA256, "ae7b7c0ade3ed3cacbf70296a0568d3b6ba193ef1062b41bdeb34dcca69f127a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := signWith(tc.alg, cred, "send", "1", "1655710885431", body); got != tc.want {
				t.Errorf("signWith(%s) = %s, want %s", tc.alg, got, tc.want)
			}
		})
	}
}

func TestAppendSigningStringKeepsPrefix(t *testing.T) {
	t.Parallel()
	dst := append(make([]byte, 0, 4), "xy"...)
	got := appendSigningString(dst, Credentials{AccessKey: "k", AccessSecret: "s"}, "a", "2", "1", nil)
	if want := "xyaccessKey=k&action=a&bizType=2&ts=1&accessSecret=s"; string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
