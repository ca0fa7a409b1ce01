package nxcloudtest

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"sort"
	"strings"
)

// signedHeaders are the headers that make up headersStr: every required
// header of the API call convention except sign (algorithm is optional and
// never signed). They are sorted in ASCII order when the string is built.
var signedHeaders = []string{"ts", "bizType", "action", "accessKey"}

// ErrBadSign is returned by VerifySign when the sign header does not match.
var ErrBadSign = errors.New("the sign header does not match the request")

// ExpectedSign recomputes the signature of a received request from its
// headers, independently of package nxcloud: headersStr is built from the
// accessKey, action, bizType and ts headers as received, sorted by name; body (pass nil for multipart
// requests, whose body is not signed) is appended as "&body=..." when not
// empty; then "&accessSecret=" and secret. The hash is the one the algorithm
// header names (md5 when absent).
func ExpectedSign(h http.Header, body []byte, secret string) (string, error) {
	var hf hash.Hash
	switch alg := h.Get("algorithm"); strings.ToLower(alg) {
	case "", "md5":
		hf = md5.New()
	case "sha256":
		hf = sha256.New()
	default:
		return "", fmt.Errorf("unknown algorithm header %q: use md5 or sha256", alg)
	}
	names := append([]string(nil), signedHeaders...)
	sort.Strings(names)
	pairs := make([]string, 0, len(names))
	for _, name := range names {
		pairs = append(pairs, name+"="+h.Get(name))
	}
	var b strings.Builder
	b.WriteString(strings.Join(pairs, "&"))
	if len(body) > 0 {
		b.WriteString("&body=")
		b.Write(body)
	}
	b.WriteString("&accessSecret=")
	b.WriteString(secret)
	hf.Write([]byte(b.String()))
	return hex.EncodeToString(hf.Sum(nil)), nil
}

// VerifySign checks the sign header of a received request against
// ExpectedSign, in constant time.
func VerifySign(h http.Header, body []byte, secret string) error {
	want, err := ExpectedSign(h, body, secret)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(h.Get("sign")), []byte(want)) != 1 {
		return ErrBadSign
	}
	return nil
}
