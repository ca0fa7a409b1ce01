package ledger

import (
	"crypto/sha256"
	"encoding/hex"
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
	return hashedKey(RecordPrefix, key)
}

// maxKeyLen is the longest S3 object key, in bytes.
const maxKeyLen = 1024

// versionKey is prefix + key + "/" + version, or, when that is longer than
// S3 allows, prefix + "sha256/" + the hex SHA-256 of key and version.
func versionKey(prefix, key, versionID string) string {
	if k := prefix + key + "/" + versionID; len(k) <= maxKeyLen {
		return k
	}
	return hashedKey(prefix, key+"\x00"+versionID)
}

func hashedKey(prefix, s string) string {
	sum := sha256.Sum256([]byte(s))
	return prefix + "sha256/" + hex.EncodeToString(sum[:])
}
