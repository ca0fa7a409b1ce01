// Package session is the upload session as the HTTP API sees it: what POST
// /uploads asks for (NewUpload) and answers (Upload), and what GET
// /uploads/{uploadId} answers (UploadStatus). Package sessions keeps the
// sessions in S3 and package mediaapi serves them; both import this one, and
// it imports nothing of either, so that the get and delete functions, which
// link mediaapi, link no S3 client.
package session

import (
	"errors"
	"time"
)

// ErrUploadNotFound is an upload_id no session has (404).
var ErrUploadNotFound = errors.New("upload session not found")

// The purposes of an upload session: which upload its file goes to.
const (
	PurposeTemplate = "template" // uploadTemplateFile, under UPLOAD_PREFIX (the default)
	PurposeMessage  = "message"  // uploadMedia, under MEDIA_PREFIX
)

// NewUpload is a validated POST /uploads request.
type NewUpload struct {
	Purpose       string // PurposeTemplate or PurposeMessage
	FileName      string // a base name: no / or \, no control characters, at most 255 bytes
	Type          string // a type of the purpose's table (nxcloud.TemplateFileTypes or MessageMediaTypes)
	Size          int64  // 1 to the type's limit (and MAX_UPLOAD_BYTES)
	BusinessPhone string // 5 to 20 digits
	SHA256        string // the file's SHA-256 in S3's base64 form; "" when not given
}

// Upload is the answer to POST /uploads: the caller sends the file with
// Method to URL with exactly Headers, before ExpiresAt.
type Upload struct {
	ID        string            `json:"upload_id"`
	URL       string            `json:"upload_url"`
	Method    string            `json:"method"`
	Headers   map[string]string `json:"headers"`
	ExpiresAt time.Time         `json:"expires_at"`
	Purpose   string            `json:"purpose"`
}

// UploadStatus is the answer to GET /uploads/{uploadId}.
type UploadStatus struct {
	ID            string    `json:"upload_id"`
	Purpose       string    `json:"purpose"`
	Status        string    `json:"status"` // one of the Status* constants
	FileName      string    `json:"file_name"`
	Type          string    `json:"type"`
	Size          int64     `json:"size"`
	BusinessPhone string    `json:"business_phone"`
	MediaID       string    `json:"media_id,omitempty"` // StatusUploaded only
	Error         string    `json:"error,omitempty"`    // StatusRejected only
	UpdatedAt     time.Time `json:"updated_at"`         // whole seconds, UTC
}

// The statuses of an upload session.
const (
	StatusAwaitingFile = "awaiting_file" // no file yet, the upload URL still valid
	StatusExpired      = "expired"       // no file, and the upload URL has expired
	StatusProcessing   = "processing"    // the file is in S3, the upload function has no verdict yet
	StatusUploaded     = "uploaded"      // NXCloud took the file: MediaID is its media id
	StatusRejected     = "rejected"      // the file will not be sent: Error says why
)
