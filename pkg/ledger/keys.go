package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"unicode/utf8"
)

// Where the ledger keeps its objects, outside any upload prefix (the
// configuration refuses prefixes starting with nxcloud-).
const (
	// RecordPrefix holds one record per decided object version, and the
	// bindings of upload sessions.
	RecordPrefix = "nxcloud-records/"
	// ClaimPrefix holds one claim per object version being sent.
	ClaimPrefix = "nxcloud-claims/"
	// SweepPrefix holds the sweep's position.
	SweepPrefix = "nxcloud-sweep/"
)

// Object is one object version: the unit of work.
type Object struct {
	Bucket, Key, VersionID string
}

// RecordKey is the key of the record of one version of the object key.
func RecordKey(key, versionID string) string { return versionKey(RecordPrefix, key, versionID) }

// ClaimKey is the key of the claim of one version of the object key.
func ClaimKey(key, versionID string) string { return versionKey(ClaimPrefix, key, versionID) }

// bindingKey is the key of the binding of an upload session's key to its
// first version: the record prefix and the key, without a version.
func bindingKey(key string) string {
	if k := RecordPrefix + key; len(k) <= maxKeyLen {
		return k
	}
	return hashedKey(RecordPrefix, key, key)
}

// maxKeyLen is the longest S3 object key, in bytes.
const maxKeyLen = 1024

// versionKey is prefix + key + "/" + version, or, when that is longer than
// S3 allows, the hashed form.
func versionKey(prefix, key, versionID string) string {
	if k := prefix + key + "/" + versionID; len(k) <= maxKeyLen {
		return k
	}
	return hashedKey(prefix, key, key+"\x00"+versionID)
}

// hashedKey is prefix, the start of key and "/sha256-" with the hex SHA-256
// of id: a key of at most 1,024 bytes that stays under prefix + the key's
// own prefix, so that the functions' permissions on their prefix cover it.
func hashedKey(prefix, key, id string) string {
	sum := sha256.Sum256([]byte(id))
	const tail = len("/sha256-") + 2*sha256.Size
	keep := maxKeyLen - len(prefix) - tail
	for keep > 0 && !utf8.RuneStart(key[keep]) {
		keep--
	}
	return prefix + key[:keep] + "/sha256-" + hex.EncodeToString(sum[:])
}
