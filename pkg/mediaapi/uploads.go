package mediaapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/config"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

// UploadService is what the upload routes need: the store of upload sessions
// (*sessions.Store keeps them in S3).
type UploadService interface {
	// CreateUpload stores a session for the file described by in and
	// returns the presigned PUT that takes the file.
	CreateUpload(ctx context.Context, in NewUpload) (*Upload, error)
	// Upload returns the status of session id; an error wrapping
	// ErrUploadNotFound when there is no such session, or id is not of the
	// form the store hands out.
	Upload(ctx context.Context, id string) (*UploadStatus, error)
}

// ErrUploadNotFound is an upload_id no session has (404).
var ErrUploadNotFound = errors.New("upload session not found")

// NewUpload is a validated POST /uploads request.
type NewUpload struct {
	FileName      string // a base name: no / or \, no control characters, at most MaxFileNameBytes
	Type          string // one of nxcloud.AcceptedTypes
	Size          int64  // 1 to the handler's MaxUploadBytes
	BusinessPhone string // 5 to 20 digits
}

// Upload is the answer to POST /uploads: the caller sends the file with
// Method to URL with exactly Headers, before ExpiresAt.
type Upload struct {
	ID        string            `json:"upload_id"`
	URL       string            `json:"upload_url"`
	Method    string            `json:"method"`
	Headers   map[string]string `json:"headers"`
	ExpiresAt time.Time         `json:"expires_at"`
}

// UploadStatus is the answer to GET /uploads/{uploadId}.
type UploadStatus struct {
	ID            string    `json:"upload_id"`
	Status        string    `json:"status"` // one of the Status* constants
	FileName      string    `json:"file_name"`
	Type          string    `json:"type"`
	Size          int64     `json:"size"`
	BusinessPhone string    `json:"business_phone"`
	MediaID       string    `json:"media_id,omitempty"` // StatusUploaded only
	Error         string    `json:"error,omitempty"`    // StatusRejected only
	UpdatedAt     time.Time `json:"updated_at"`
}

// The statuses of an upload session.
const (
	StatusAwaitingFile = "awaiting_file" // no file yet, the upload URL still valid
	StatusExpired      = "expired"       // no file, and the upload URL has expired
	StatusProcessing   = "processing"    // the file is in S3, the upload function has no verdict yet
	StatusUploaded     = "uploaded"      // NXCloud took the file: MediaID is its media id
	StatusRejected     = "rejected"      // the file will not be sent: Error says why
)

// Routes of the upload sessions, as API Gateway and the logs name them.
const (
	UploadsRoute = "/uploads"
	UploadRoute  = "/uploads/{uploadId}"
)

// Limits of a POST /uploads request.
const (
	MaxUploadRequestBytes = 16 << 10
	MaxFileNameBytes      = 255
)

// UploadsOptions configures the handler built by NewUploadsHandler.
type UploadsOptions struct {
	// DefaultBusinessPhone is the phone of a request that names none
	// (NXCLOUD_BUSINESS_PHONE); empty means such a request is a 400.
	DefaultBusinessPhone string
	// MaxUploadBytes is the largest size a request may announce
	// (MAX_UPLOAD_BYTES); default config.DefaultMaxUploadBytes.
	MaxUploadBytes int64
	// Logger receives one structured line per request (default
	// slog.Default()).
	Logger *slog.Logger
}

type uploadsHandler struct {
	svc          UploadService
	defaultPhone string
	maxBytes     int64
	log          *slog.Logger
	served       atomic.Bool
	now          func() time.Time
}

// NewUploadsHandler returns the http.Handler of
//
//	POST /uploads               {"file_name","type","size","business_phone"} -> 201 Upload
//	GET  /uploads/{uploadId}    -> 200 UploadStatus
//
// A POST body is validated before svc is called, so that a bad request
// touches no storage: it must be one JSON object of at most
// MaxUploadRequestBytes with exactly these members (business_phone may be
// left out, or empty, when opts.DefaultBusinessPhone is set): file_name a base
// name of at most MaxFileNameBytes bytes without /, \ or control characters;
// type one of the types NXCloud accepts; size a whole number from 1 to
// opts.MaxUploadBytes; business_phone 5 to 20 digits. Every problem found is
// named in one 400 answer.
//
// Routing, the stage prefix, the error document, application/json and the
// log line ("upload request", with upload_id) are as in NewHandler; an
// unknown or malformed upload_id is a 404, a storage failure a 503.
func NewUploadsHandler(svc UploadService, opts UploadsOptions) http.Handler {
	h := &uploadsHandler{
		svc:          svc,
		defaultPhone: opts.DefaultBusinessPhone,
		maxBytes:     opts.MaxUploadBytes,
		log:          opts.Logger,
		now:          time.Now,
	}
	if h.maxBytes <= 0 {
		h.maxBytes = config.DefaultMaxUploadBytes
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	return h
}

// ServeHTTP implements http.Handler.
func (h *uploadsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	cold := !h.served.Swap(true)
	ctx := r.Context()

	route, id, err := h.route(r)
	var status int
	if err == nil {
		if route == UploadsRoute {
			status, id, err = h.create(ctx, w, r)
		} else {
			status, err = h.status(ctx, w, id)
		}
	}
	var extra []slog.Attr
	if id != "" {
		extra = append(extra, slog.String("upload_id", id))
	}
	finish(ctx, w, h.log, "upload request", request{method: r.Method, route: route, status: status, err: err,
		latency: h.now().Sub(start), cold: cold}, extra...)
}

// route matches the path and the method; id is the decoded {uploadId}.
func (h *uploadsHandler) route(r *http.Request) (route, id string, err error) {
	if err, ok := r.Context().Value(eventErrorKey{}).(error); ok {
		return "unmatched", "", err // an event NewLambdaHandler could not convert
	}
	path := stripStage(r.Context(), r.URL.EscapedPath())
	method := http.MethodPost
	if raw, ok := strings.CutPrefix(path, UploadsRoute+"/"); ok {
		if raw == "" || strings.Contains(raw, "/") {
			return "unmatched", "", errNotFound
		}
		route, method = UploadRoute, http.MethodGet
		if id, err = url.PathUnescape(raw); err != nil {
			id = raw // not an id the store hands out: the store answers 404
		}
	} else if path == UploadsRoute {
		route = UploadsRoute
	} else {
		return "unmatched", "", errNotFound
	}
	if r.Method != method {
		return route, id, &methodError{method: r.Method, route: route, allow: []string{method}}
	}
	return route, id, nil
}

// create serves POST /uploads.
func (h *uploadsHandler) create(ctx context.Context, w http.ResponseWriter, r *http.Request) (int, string, error) {
	in, err := h.parseNewUpload(r.Body)
	if err != nil {
		return 0, "", err
	}
	up, err := h.svc.CreateUpload(ctx, in)
	if err != nil {
		return 0, "", &storeError{err}
	}
	writeJSON(w, http.StatusCreated, marshal(up))
	return http.StatusCreated, up.ID, nil
}

// status serves GET /uploads/{uploadId}.
func (h *uploadsHandler) status(ctx context.Context, w http.ResponseWriter, id string) (int, error) {
	st, err := h.svc.Upload(ctx, id)
	switch {
	case errors.Is(err, ErrUploadNotFound):
		return 0, err
	case err != nil:
		return 0, &storeError{err}
	}
	writeJSON(w, http.StatusOK, marshal(st))
	return http.StatusOK, nil
}

// uploadFields are the members of a POST /uploads body.
var uploadFields = []string{"file_name", "type", "size", "business_phone"}

// parseNewUpload reads and validates a POST /uploads body.
func (h *uploadsHandler) parseNewUpload(body io.Reader) (NewUpload, error) {
	const example = `{"file_name": "menu.pdf", "type": "application/pdf", "size": 12345, "business_phone": "8615812341795"}`
	b, err := io.ReadAll(io.LimitReader(body, MaxUploadRequestBytes+1))
	switch {
	case err != nil:
		return NewUpload{}, badInput("the body could not be read: send one JSON object such as %s", example)
	case len(b) > MaxUploadRequestBytes:
		return NewUpload{}, badInput("the body is larger than %d bytes: send one JSON object such as %s", MaxUploadRequestBytes, example)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var fields map[string]json.RawMessage
	if err := dec.Decode(&fields); err != nil || fields == nil {
		return NewUpload{}, badInput("the body is not a JSON object: send one such as %s", example)
	}
	if _, err := dec.Token(); err != io.EOF {
		return NewUpload{}, badInput("the body holds more than one JSON value: send one JSON object such as %s", example)
	}

	var problems []string
	for _, k := range sortedKeys(fields) {
		if !slices.Contains(uploadFields, k) {
			problems = append(problems, fmt.Sprintf("unknown member %s: the body takes file_name, type, size and business_phone", quote(k)))
		}
	}
	str := func(name string) (string, bool) {
		raw, ok := fields[name]
		if !ok {
			return "", true
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			problems = append(problems, name+" must be a JSON string")
			return "", false
		}
		return v, true
	}
	var in NewUpload
	if name, ok := str("file_name"); ok {
		if err := validFileName(name); err != "" {
			problems = append(problems, err)
		}
		in.FileName = name
	}
	if typ, ok := str("type"); ok {
		in.Type = strings.ToLower(strings.TrimSpace(typ))
		switch {
		case in.Type == "":
			problems = append(problems, "type is required: one of "+strings.Join(nxcloud.AcceptedTypes, ", "))
		case !nxcloud.IsAcceptedType(in.Type):
			problems = append(problems, fmt.Sprintf("type %s is not a type NXCloud accepts: use one of %s", quote(typ), strings.Join(nxcloud.AcceptedTypes, ", ")))
		}
	}
	rangeHint := fmt.Sprintf("a whole number of bytes from 1 to %d (MAX_UPLOAD_BYTES)", h.maxBytes)
	if raw, ok := fields["size"]; !ok {
		problems = append(problems, "size is required: the file's size, "+rangeHint)
	} else if n, err := strconv.ParseInt(string(raw), 10, 64); err != nil {
		problems = append(problems, "size must be "+rangeHint)
	} else if n < 1 || n > h.maxBytes {
		problems = append(problems, fmt.Sprintf("size %d is out of range: it must be %s", n, rangeHint))
	} else {
		in.Size = n
	}
	if phone, ok := str("business_phone"); ok {
		switch {
		case phone == "" && h.defaultPhone == "":
			problems = append(problems, "business_phone is required: pass the merchant phone (5 to 20 digits with the country code) or set NXCLOUD_BUSINESS_PHONE")
		case phone == "":
			in.BusinessPhone = h.defaultPhone
		case !config.ValidPhone(phone):
			problems = append(problems, fmt.Sprintf("business_phone %s is not a merchant phone: pass 5 to 20 digits with the country code and no + or spaces (e.g. 8615812341795)", quote(phone)))
		default:
			in.BusinessPhone = phone
		}
	}
	if len(problems) > 0 {
		return NewUpload{}, badInput("%s", strings.Join(problems, "; "))
	}
	return in, nil
}

// validFileName returns what is wrong with a file_name, or "".
func validFileName(name string) string {
	switch {
	case name == "":
		return `file_name is required: the file's name, e.g. "menu.pdf"`
	case len(name) > MaxFileNameBytes:
		return fmt.Sprintf("file_name has %d bytes: at most %d are accepted", len(name), MaxFileNameBytes)
	case strings.ContainsAny(name, `/\`):
		return fmt.Sprintf(`file_name %s contains / or \: pass the file's base name, e.g. "menu.pdf"`, quote(name))
	case strings.ContainsFunc(name, unicode.IsControl):
		return "file_name contains control characters: pass the file's name as it should reach NXCloud"
	case name == "." || name == "..":
		return `file_name must be a file's name, not . or ..`
	}
	return ""
}

// sortedKeys returns the keys of m in order, so that messages are stable.
func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// marshal encodes v without HTML escaping: URLs keep their & readable.
func marshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the answer types always encode
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}
