// Package archive is the contract of POST /media/{mediaId}/archive, which
// copies a media file from NXCloud into the stack's bucket (SPEC.md,
// "Archive"): where the file goes ([Key]), the document that answers an
// archive ([Object]) and the failures that are neither NXCloud's nor the
// credentials' ([Error]). Package s3archive does the work (getMedia, the
// download, the conditional write to S3) and package mediaapi serves it over
// HTTP; both import this one, which imports neither, so that the get and
// delete functions, which link mediaapi, link no S3 client.
package archive

import (
	"errors"
	"net/url"
	"time"
)

// Object is the document of an archived media file: what the first archive
// answers (201) and what every later one reads back from the object (200).
type Object struct {
	MediaID       string    `json:"media_id"`
	BusinessPhone string    `json:"business_phone"`
	Bucket        string    `json:"bucket"`
	Key           string    `json:"key"`
	VersionID     string    `json:"version_id"`
	Size          int64     `json:"size"`
	Type          string    `json:"type"`      // the object's Content-Type
	FileName      string    `json:"file_name"` // NXCloud's file_name, "" when it gave none
	ArchivedAt    time.Time `json:"archived_at"`
}

// MaxKeyBytes is the longest key S3 accepts, in bytes of UTF-8.
const MaxKeyBytes = 1024

// Key is where the media file mediaID of the merchant phone is archived:
// prefix (ARCHIVE_PREFIX, ending with /), the phone, a /, and the media id
// path-escaped as one segment (url.PathEscape: a / in the id is %2F).
func Key(prefix, phone, mediaID string) string {
	return prefix + phone + "/" + url.PathEscape(mediaID)
}

// Kind is what went wrong in an archive, for the HTTP status.
type Kind int

// The kinds of Error.
const (
	// Input: the request cannot be archived as it is (400), e.g. a media id
	// whose key would be longer than S3 allows.
	Input Kind = iota + 1
	// Download: the media URL NXCloud answered did not give the whole file
	// (502): a non-2xx status, a body shorter than its Content-Length, an
	// address or a scheme the download refuses, too many redirects, a
	// connection that failed.
	Download
	// TooLarge: the file is larger than MAX_UPLOAD_BYTES, by its
	// Content-Length or counted while streaming (413).
	TooLarge
	// Timeout: the archive would not finish within the function's time
	// budget (504).
	Timeout
	// Storage: S3 did not take or give the object (503).
	Storage
)

// Error is a failure of an archive: its Kind, a message for the caller that
// says what happened and what to do (no internal detail: no credential, no
// signed URL), and the cause for the operator's log. Nothing is stored when
// an archive fails.
type Error struct {
	Kind    Kind
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Message
	}
	return e.Message + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// AsError returns the *Error in err's chain.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
