package mediaapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/config"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/sessions/session"
)

// UploadService is what the upload routes need: the store of upload sessions
// (*sessions.Store keeps them in S3).
type UploadService interface {
	// CreateUpload stores a session for the file described by in and
	// returns the presigned PUT that takes the file.
	CreateUpload(ctx context.Context, in session.NewUpload) (*session.Upload, error)
	// Upload returns the status of session id; an error wrapping
	// session.ErrUploadNotFound when there is no such session, or id is not of the
	// form the store hands out.
	Upload(ctx context.Context, id string) (*session.UploadStatus, error)
}

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

// NewUploadsHandler returns the http.Handler of
//
//	POST /uploads               {"file_name","type","size","business_phone","purpose","sha256"} -> 201 session.Upload
//	GET  /uploads/{uploadId}    -> 200 session.UploadStatus
//
// A POST body is validated before svc is called, so that a bad request
// touches no storage: it must be one JSON object of at most
// MaxUploadRequestBytes with these members (business_phone may be left out,
// or empty, when opts.DefaultBusinessPhone is set; purpose and sha256 are
// optional): purpose "template" (the default) or "message"; file_name a base
// name of at most MaxFileNameBytes bytes without /, \ or control
// characters; type one of the types NXCloud takes for the purpose; size a
// whole number from 1 to the type's limit (never more than
// opts.MaxUploadBytes); business_phone 5 to 20 digits; sha256 the file's
// SHA-256 as 64 hex digits or base64. Every problem found is named in one
// 400 answer.
//
// Routing, the stage prefix, the error document, application/json and the
// log line ("upload request", with upload_id) are as in NewHandler; an
// unknown or malformed upload_id is a 404, a storage failure a 503.
func NewUploadsHandler(svc UploadService, opts UploadsOptions) http.Handler {
	h := &uploadsHandler{svc: svc, defaultPhone: opts.DefaultBusinessPhone, maxBytes: opts.MaxUploadBytes}
	if h.maxBytes <= 0 {
		h.maxBytes = config.DefaultMaxUploadBytes
	}
	return newRouter(opts.Logger, "upload request",
		route{pattern: "POST " + UploadsRoute, serve: h.create},
		route{pattern: "GET " + UploadRoute, serve: h.status})
}

// uploadsHandler serves the upload routes.
type uploadsHandler struct {
	svc          UploadService
	defaultPhone string
	maxBytes     int64
}

// create serves POST /uploads.
func (h *uploadsHandler) create(w http.ResponseWriter, r *http.Request) error {
	in, err := h.parseNewUpload(r.Body)
	if err != nil {
		return err
	}
	up, err := h.svc.CreateUpload(r.Context(), in)
	if err != nil {
		return &storeError{err}
	}
	x := exchangeOf(r)
	x.attrs = append(x.attrs, slog.String("upload_id", up.ID))
	writeJSON(w, http.StatusCreated, marshal(up))
	return nil
}

// status serves GET /uploads/{uploadId}. An id that is not of the form the
// store hands out is the store's 404.
func (h *uploadsHandler) status(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("uploadId")
	x := exchangeOf(r)
	x.attrs = append(x.attrs, slog.String("upload_id", id))
	st, err := h.svc.Upload(r.Context(), id)
	switch {
	case errors.Is(err, session.ErrUploadNotFound):
		return err
	case err != nil:
		return &storeError{err}
	}
	writeJSON(w, http.StatusOK, marshal(st))
	return nil
}

// uploadFields are the members of a POST /uploads body.
var uploadFields = []string{"business_phone", "file_name", "purpose", "sha256", "size", "type"}

// purposeTypes are the file types each purpose takes.
var purposeTypes = map[string]nxcloud.FileTypes{
	session.PurposeTemplate: nxcloud.TemplateFileTypes,
	session.PurposeMessage:  nxcloud.MessageMediaTypes,
}

// parseNewUpload reads and validates a POST /uploads body.
func (h *uploadsHandler) parseNewUpload(body io.Reader) (session.NewUpload, error) {
	const example = `{"file_name": "menu.pdf", "type": "application/pdf", "size": 12345, "business_phone": "8615812341795", "purpose": "template"}`
	b, err := io.ReadAll(io.LimitReader(body, MaxUploadRequestBytes+1))
	switch {
	case err != nil:
		return session.NewUpload{}, badInput("the body could not be read: send one JSON object such as %s", example)
	case len(b) > MaxUploadRequestBytes:
		return session.NewUpload{}, badInput("the body is larger than %d bytes: send one JSON object such as %s", MaxUploadRequestBytes, example)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var fields map[string]json.RawMessage
	if err := dec.Decode(&fields); err != nil || fields == nil {
		return session.NewUpload{}, badInput("the body is not a JSON object: send one such as %s", example)
	}
	if _, err := dec.Token(); err != io.EOF {
		return session.NewUpload{}, badInput("the body holds more than one JSON value: send one JSON object such as %s", example)
	}

	var problems []string
	for _, k := range sortedKeys(fields) {
		if !slices.Contains(uploadFields, k) {
			problems = append(problems, fmt.Sprintf("unknown member %s: the body takes file_name, type, size, business_phone, purpose and sha256", quote(k)))
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
	in := session.NewUpload{Purpose: session.PurposeTemplate}
	if p, ok := str("purpose"); ok && p != "" {
		if purposeTypes[p] == nil {
			problems = append(problems, fmt.Sprintf(`purpose %s is not one of "template" (a template header file, uploadTemplateFile; the default) and "message" (message media, uploadMedia)`, quote(p)))
		}
		in.Purpose = p
	}
	types := purposeTypes[in.Purpose]
	if name, ok := str("file_name"); ok {
		if err := validFileName(name); err != "" {
			problems = append(problems, err)
		}
		in.FileName = name
	}
	var ft nxcloud.FileType
	if typ, ok := str("type"); ok && types != nil {
		in.Type = strings.ToLower(strings.TrimSpace(typ))
		var known bool
		ft, known = types.ByMediaType(in.Type)
		switch {
		case in.Type == "":
			problems = append(problems, "type is required: one of "+strings.Join(types.MediaTypes(), ", "))
		case !known:
			problems = append(problems, fmt.Sprintf("type %s is not a type NXCloud takes for purpose %s: use one of %s", quote(typ), in.Purpose, strings.Join(types.MediaTypes(), ", ")))
		}
	}
	limit, why := h.maxBytes, "MAX_UPLOAD_BYTES"
	if l := ft.Limit(h.maxBytes); l < limit {
		limit, why = l, fmt.Sprintf("the largest %s NXCloud takes", ft.Kind)
	}
	rangeHint := fmt.Sprintf("a whole number of bytes from 1 to %d (%s)", limit, why)
	if raw, ok := fields["size"]; !ok {
		problems = append(problems, "size is required: the file's size, "+rangeHint)
	} else if n, err := strconv.ParseInt(string(raw), 10, 64); err != nil {
		problems = append(problems, "size must be "+rangeHint)
	} else if n < 1 || n > limit {
		problems = append(problems, fmt.Sprintf("size %d is out of range: it must be %s", n, rangeHint))
	} else {
		in.Size = n
	}
	if sum, ok := str("sha256"); ok && sum != "" {
		if in.SHA256 = checksum(sum); in.SHA256 == "" {
			problems = append(problems, fmt.Sprintf("sha256 %s is not a SHA-256: pass 64 hex digits (sha256sum) or its base64 (openssl dgst -sha256 -binary | base64)", quote(sum)))
		}
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
		return session.NewUpload{}, badInput("%s", strings.Join(problems, "; "))
	}
	return in, nil
}

// checksum returns a SHA-256 given as 64 hex digits or as base64 in S3's
// form (the base64 of its 32 bytes), "" when it is neither.
func checksum(s string) string {
	if b, err := hex.DecodeString(s); err == nil && len(b) == sha256.Size {
		return base64.StdEncoding.EncodeToString(b)
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == sha256.Size {
		return base64.StdEncoding.EncodeToString(b)
	}
	return ""
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
