package nxcloud_test

import (
	"bytes"
	"net/http"
	"strconv"
	"testing"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
)

// receivedHeaders builds the headers as a server receives them.
func receivedHeaders(alg nxcloud.Algorithm, key, action, ts, sign string) http.Header {
	h := http.Header{}
	h.Set("accessKey", key)
	h.Set("action", action)
	h.Set("bizType", nxcloud.BizTypeWhatsApp)
	h.Set("ts", ts)
	h.Set("sign", sign)
	if alg == nxcloud.SHA256 {
		h.Set("algorithm", "sha256")
	}
	return h
}

// FuzzSignVerify checks the signer against nxcloudtest's verifier, which
// rebuilds the signed string on its own from the received headers: every
// signature verifies, and any change of one body byte, of ts or of the access
// key is rejected.
func FuzzSignVerify(f *testing.F) {
	f.Add([]byte(`{"business_phone":"8615812341795","messaging_product":"whatsapp","Media-ID":"x"}`), uint16(3), byte(1), "fme2na3kdi3ki", "secret", int64(1655710885431), false, nxcloud.ActionGetMedia)
	f.Add([]byte{}, uint16(0), byte(0x80), "k", "", int64(1700000000123), true, nxcloud.ActionUploadTemplateFile)
	f.Add([]byte("\x00\xff&body=&accessSecret="), uint16(9), byte(0xff), "a&b=c", "s&t", int64(9999999999999), true, nxcloud.ActionDeleteMedia)
	f.Fuzz(func(t *testing.T, body []byte, pos uint16, delta byte, key, secret string, ms int64, sha bool, action string) {
		alg := nxcloud.MD5
		if sha {
			alg = nxcloud.SHA256
		}
		cred := nxcloud.Credentials{AccessKey: key, AccessSecret: secret}
		ts := strconv.FormatInt(ms, 10)
		sign := nxcloud.Sign(alg, cred, action, ts, body)

		h := receivedHeaders(alg, key, action, ts, sign)
		if err := nxcloudtest.VerifySign(h, body, secret); err != nil {
			t.Fatalf("the verifier rejects the signer's output: %v", err)
		}

		if delta == 0 {
			delta = 1
		}
		mutated := bytes.Clone(body)
		if len(mutated) == 0 {
			mutated = []byte{delta}
		} else {
			mutated[int(pos)%len(mutated)] ^= delta
		}
		if nxcloudtest.VerifySign(h, mutated, secret) == nil {
			t.Errorf("a changed body byte still verifies")
		}
		if nxcloudtest.VerifySign(receivedHeaders(alg, key, action, strconv.FormatInt(ms+1, 10), sign), body, secret) == nil {
			t.Errorf("a changed ts still verifies")
		}
		if nxcloudtest.VerifySign(receivedHeaders(alg, key+"x", action, ts, sign), body, secret) == nil {
			t.Errorf("a changed access key still verifies")
		}
		if nxcloudtest.VerifySign(h, body, secret+"x") == nil {
			t.Errorf("a different secret still verifies")
		}
	})
}
