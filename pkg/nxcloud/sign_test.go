package nxcloud_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

// The expected digests below were computed outside Go, e.g.
//
//	printf '%s' 'accessKey=AK-test-123&action=getMedia&bizType=2&ts=1700000000123&body={"business_phone":"8615812341795","messaging_product":"whatsapp","Media-ID":"fd81acff-eea8-4d9d-acc9-6c62904d6615"}&accessSecret=s3cr3t-Example' | md5sum
//
// and the same with sha256sum.
func TestSignKnownAnswers(t *testing.T) {
	t.Parallel()
	cred := nxcloud.Credentials{AccessKey: "AK-test-123", AccessSecret: "s3cr3t-Example"}
	const ts = "1700000000123"
	body := []byte(`{"business_phone":"8615812341795","messaging_product":"whatsapp","Media-ID":"fd81acff-eea8-4d9d-acc9-6c62904d6615"}`)

	tests := []struct {
		name   string
		alg    nxcloud.Algorithm
		action string
		body   []byte
		want   string
	}{
		{"getMedia md5", nxcloud.MD5, nxcloud.ActionGetMedia, body, "8ea76096d84f421c7f499f8ce3b7706e"},
		{"getMedia sha256", nxcloud.SHA256, nxcloud.ActionGetMedia, body, "b4a94d36680075cce77efe2c494f37f60dee6fbc294c6ec428519d15e01922e4"},
		{"deleteMedia md5", nxcloud.MD5, nxcloud.ActionDeleteMedia, body, "5280eccd3d70681201d182330456934d"},
		{"deleteMedia sha256", nxcloud.SHA256, nxcloud.ActionDeleteMedia, body, "6cf2fc358e1ed3b49f3d8b7a9b3ea90d3d5ecbfaecddeba424af0a131a919863"},
		{"multipart md5 nil body", nxcloud.MD5, nxcloud.ActionUploadTemplateFile, nil, "ad6923e48f3dc97f6ad19ece2b7211e8"},
		{"multipart md5 empty body", nxcloud.MD5, nxcloud.ActionUploadTemplateFile, []byte{}, "ad6923e48f3dc97f6ad19ece2b7211e8"},
		{"multipart sha256", nxcloud.SHA256, nxcloud.ActionUploadTemplateFile, nil, "3c45334f601ab79687a1e5dca35615017ec57dc2bdfe18a2c513782c34d69986"},
		{"empty algorithm means md5", "", nxcloud.ActionGetMedia, body, "8ea76096d84f421c7f499f8ce3b7706e"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := nxcloud.Sign(tc.alg, cred, tc.action, ts, tc.body); got != tc.want {
				t.Errorf("Sign = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestSignDependsOnEveryInput(t *testing.T) {
	t.Parallel()
	cred := nxcloud.Credentials{AccessKey: "AK", AccessSecret: "secret"}
	body := []byte(`{"a":1}`)
	base := nxcloud.Sign(nxcloud.MD5, cred, "getMedia", "1700000000123", body)
	variants := map[string]string{
		"key":       nxcloud.Sign(nxcloud.MD5, nxcloud.Credentials{AccessKey: "AK2", AccessSecret: "secret"}, "getMedia", "1700000000123", body),
		"secret":    nxcloud.Sign(nxcloud.MD5, nxcloud.Credentials{AccessKey: "AK", AccessSecret: "secret2"}, "getMedia", "1700000000123", body),
		"action":    nxcloud.Sign(nxcloud.MD5, cred, "deleteMedia", "1700000000123", body),
		"ts":        nxcloud.Sign(nxcloud.MD5, cred, "getMedia", "1700000000124", body),
		"body":      nxcloud.Sign(nxcloud.MD5, cred, "getMedia", "1700000000123", []byte(`{"a":2}`)),
		"no body":   nxcloud.Sign(nxcloud.MD5, cred, "getMedia", "1700000000123", nil),
		"algorithm": nxcloud.Sign(nxcloud.SHA256, cred, "getMedia", "1700000000123", body),
	}
	for name, v := range variants {
		if v == base {
			t.Errorf("changing the %s does not change the signature", name)
		}
	}
	if again := nxcloud.Sign(nxcloud.MD5, cred, "getMedia", "1700000000123", bytes.Clone(body)); again != base {
		t.Errorf("Sign is not deterministic: %s then %s", base, again)
	}
}

func TestTimestamp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   time.Time
		want string
	}{
		{"utc", time.Date(2023, 11, 14, 22, 13, 20, 123_456_789, time.UTC), "1700000000123"},
		{"other zone same instant", time.Date(2023, 11, 15, 6, 13, 20, 123_000_000, time.FixedZone("CST", 8*3600)), "1700000000123"},
		{"docs example", time.UnixMilli(1655710885431), "1655710885431"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := nxcloud.Timestamp(tc.in); got != tc.want {
				t.Errorf("Timestamp = %s, want %s", got, tc.want)
			}
		})
	}
}

func BenchmarkSign(b *testing.B) {
	cred := nxcloud.Credentials{AccessKey: "AK-bench-0123456789", AccessSecret: "bench-secret-0123456789abcdef"}
	body := bytes.Repeat([]byte("x"), 200)
	for _, alg := range []nxcloud.Algorithm{nxcloud.MD5, nxcloud.SHA256} {
		b.Run(string(alg), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				_ = nxcloud.Sign(alg, cred, nxcloud.ActionGetMedia, "1700000000123", body)
			}
		})
	}
}
