package nxcloud

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// Sign computes the sign header of one NXCloud call, as the API call
// convention describes (https://github.com/nxtele/http-api-document/wiki,
// "API call convention"; nxcloud-docs/signing.md):
//
//	sign = lowercase_hex(HASH(headersStr + bodyStr + "&accessSecret=" + secret))
//	headersStr = "accessKey=AK&action=ACTION&bizType=2&ts=TS"
//	bodyStr    = "&body=" + body   (left out when body is empty)
//
// headersStr holds every required header except sign and algorithm, sorted by
// name in ASCII order. ts is the 13-digit millisecond timestamp exactly as it
// is sent in the ts header (see [Timestamp]). body is the exact JSON text sent
// as the request body; multipart calls pass nil because their body is not
// signed. HASH is SHA-256 when alg is [SHA256] and MD5 otherwise.
//
// Sign is a pure function: it reads no clock and looks nothing up.
func Sign(alg Algorithm, cred Credentials, action string, ts string, body []byte) string {
	return signWith(alg, cred, action, BizTypeWhatsApp, ts, body)
}

// Timestamp formats t as the ts header wants it: milliseconds since the Unix
// epoch, in decimal (13 digits for any date between 2001 and 2286).
func Timestamp(t time.Time) string {
	return strconv.FormatInt(t.UnixMilli(), 10)
}

// signWith is Sign with the bizType as a parameter, so that the string
// construction can be checked against the documentation's worked example
// (which uses bizType 1).
func signWith(alg Algorithm, cred Credentials, action, bizType, ts string, body []byte) string {
	s := appendSigningString(nil, cred, action, bizType, ts, body)
	var out [2 * sha256.Size]byte
	if alg == SHA256 {
		sum := sha256.Sum256(s)
		hex.Encode(out[:], sum[:])
		return string(out[:])
	}
	sum := md5.Sum(s)
	hex.Encode(out[:], sum[:])
	return string(out[:2*md5.Size])
}

// appendSigningString appends the string that is hashed to dst: headersStr,
// then bodyStr when body is not empty, then accessSecretStr.
func appendSigningString(dst []byte, cred Credentials, action, bizType, ts string, body []byte) []byte {
	const (
		kAccessKey = "accessKey="
		kAction    = "&action="
		kBizType   = "&bizType="
		kTS        = "&ts="
		kBody      = "&body="
		kSecret    = "&accessSecret="
	)
	n := len(kAccessKey) + len(cred.AccessKey) + len(kAction) + len(action) +
		len(kBizType) + len(bizType) + len(kTS) + len(ts) +
		len(kSecret) + len(cred.AccessSecret)
	if len(body) > 0 {
		n += len(kBody) + len(body)
	}
	if cap(dst)-len(dst) < n {
		grown := make([]byte, len(dst), len(dst)+n)
		copy(grown, dst)
		dst = grown
	}
	// Keys in ASCII order: accessKey < action < bizType < ts.
	dst = append(dst, kAccessKey...)
	dst = append(dst, cred.AccessKey...)
	dst = append(dst, kAction...)
	dst = append(dst, action...)
	dst = append(dst, kBizType...)
	dst = append(dst, bizType...)
	dst = append(dst, kTS...)
	dst = append(dst, ts...)
	if len(body) > 0 {
		dst = append(dst, kBody...)
		dst = append(dst, body...)
	}
	dst = append(dst, kSecret...)
	dst = append(dst, cred.AccessSecret...)
	return dst
}
