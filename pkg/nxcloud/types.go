package nxcloud

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// DefaultBaseURL is the NXCloud API endpoint used when none is configured.
const DefaultBaseURL = "https://api2.nxcloud.com"

// Actions, as sent in the action header and used in the URL path /api/wa/<action>.
const (
	ActionGetMedia           = "getMedia"
	ActionDeleteMedia        = "deleteMedia"
	ActionUploadTemplateFile = "uploadTemplateFile"
	ActionUploadMedia        = "uploadMedia"
)

// BizTypeWhatsApp is the bizType header value of every WhatsApp call.
const BizTypeWhatsApp = "2"

// MessagingProduct is the fixed messaging_product body field.
const MessagingProduct = "whatsapp"

// Algorithm is the hash algorithm of the signature.
type Algorithm string

// Supported signature algorithms. MD5 is NXCloud's default and is not sent as a
// header; SHA256 is announced with the algorithm header.
const (
	MD5    Algorithm = "md5"
	SHA256 Algorithm = "sha256"
)

// ParseAlgorithm accepts "md5" or "sha256" (case-insensitive); the empty string
// means MD5.
func ParseAlgorithm(s string) (Algorithm, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "md5":
		return MD5, nil
	case "sha256":
		return SHA256, nil
	}
	return "", fmt.Errorf("unknown signature algorithm %q: use md5 or sha256", s)
}

// Credentials are the NXCloud access key and secret. The secret is used only to
// compute signatures; String and GoString never reveal it.
type Credentials struct {
	AccessKey    string
	AccessSecret string
}

// String redacts the secret so credentials never leak through %v.
func (c Credentials) String() string {
	return "nxcloud.Credentials{AccessKey:<redacted>, AccessSecret:<redacted>}"
}

// GoString redacts the secret so credentials never leak through %#v.
func (c Credentials) GoString() string { return c.String() }

// LogValue redacts the credentials in log/slog output.
func (c Credentials) LogValue() slog.Value { return slog.StringValue(c.String()) }

// MarshalJSON redacts the credentials so they never leak through encoding/json.
func (c Credentials) MarshalJSON() ([]byte, error) { return json.Marshal(c.String()) }

// CredentialsProvider supplies credentials to the client. Retrieve may serve a
// cached value; Refresh must fetch anew (the client calls it once after NXCloud
// answers an authentication code, then retries the call once).
type CredentialsProvider interface {
	Retrieve(ctx context.Context) (Credentials, error)
	Refresh(ctx context.Context) (Credentials, error)
}

// StaticCredentials is a CredentialsProvider that always answers the same
// credentials, for tests and local runs.
type StaticCredentials Credentials

// Retrieve returns the credentials.
func (s StaticCredentials) Retrieve(context.Context) (Credentials, error) { return Credentials(s), nil }

// Refresh returns the credentials.
func (s StaticCredentials) Refresh(context.Context) (Credentials, error) { return Credentials(s), nil }

// Media is the data object of a getMedia answer.
type Media struct {
	MimeType string `json:"mime_type"`
	FileName string `json:"file_name"`
	URL      string `json:"url"`
	// Raw is NXCloud's data object exactly as it was received.
	Raw json.RawMessage `json:"-"`
}

// UploadInput describes one upload: an uploadTemplateFile or an uploadMedia
// call, which take the same fields. The body is streamed: it is read once,
// while the request is sent, and never held whole in memory.
type UploadInput struct {
	BusinessPhone string
	Type          string // a MediaType of the destination's table (TemplateFileTypes, MessageMediaTypes)
	FileName      string // the multipart file name (base name of the object)
	Size          int64  // exact number of bytes Body yields
	Body          io.Reader
	// GetBody, when set, opens the same content again; the client uses it for
	// its one retry after an authentication code (like http.Request.GetBody).
	GetBody func(ctx context.Context) (io.ReadCloser, error)
}
