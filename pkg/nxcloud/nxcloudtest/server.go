package nxcloudtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

// Default credentials of a Server built without WithCredentials.
const (
	DefaultAccessKey    = "local-access-key"
	DefaultAccessSecret = "local-access-secret"
)

// Result codes the server answers (see the package documentation).
const (
	CodeOK                  = 0
	CodeFailed              = -1
	CodeUnknownAccessKey    = 1001
	CodeBadSignature        = 1002
	CodeTimestampOutOfRange = 1003
	CodeMissingHeader       = 1004
	CodeBadHeader           = 1005
	CodeParameter           = 9000
	CodeSystem              = 9001
	CodeMerchantPhone       = 9002
	CodeNotBound            = 9006
)

// TimestampWindow is the largest difference between the ts header and the
// server's clock that is accepted.
const TimestampWindow = 60 * time.Second

// maxJSONBody bounds the body of getMedia and deleteMedia.
const maxJSONBody = 1 << 20

// Message returns the message the server answers with code.
func Message(code int) string {
	switch code {
	case CodeOK:
		return "Request successful"
	case CodeFailed:
		return "Request failed"
	case CodeUnknownAccessKey:
		return "Authentication failed: unknown accessKey"
	case CodeBadSignature:
		return "Authentication failed: sign does not match"
	case CodeTimestampOutOfRange:
		return "Authentication failed: ts out of range"
	case CodeMissingHeader:
		return "Authentication failed: missing header"
	case CodeBadHeader:
		return "Authentication failed: bad header value"
	case CodeParameter:
		return "Parameter exception"
	case CodeSystem:
		return "System business error"
	case CodeMerchantPhone:
		return "Merchant phone number error"
	case CodeNotBound:
		return "WhatsApp number not bound to the application"
	}
	return "Request failed"
}

// Media is one file the server holds.
type Media struct {
	ID            string
	Action        string // the upload that stored it (uploadTemplateFile, uploadMedia); "" for AddMedia
	MimeType      string // the upload's type field
	FileName      string // the file part's filename, exactly as sent
	BusinessPhone string
	Size          int64
	SHA256        string // lowercase hex
	Content       []byte // only with WithKeepContent (or when given to AddMedia)
	Created       time.Time
}

// Call is the record of one request the server received.
type Call struct {
	Action           string
	Time             time.Time // server clock at arrival
	Method           string
	Path             string
	Header           http.Header // all request headers, as received
	ContentLength    int64       // -1 when unknown (chunked)
	TransferEncoding []string
	BodyBytes        int64             // bytes of body the server read (all of it, unless the call failed early)
	Body             []byte            // raw body of JSON calls
	Fields           map[string]string // JSON fields or multipart form fields
	FileName         string            // upload: filename of the file part, exact
	FileType         string            // upload: Content-Type of the file part
	FileSize         int64             // upload: bytes received in the file part
	FileSHA256       string            // upload: lowercase hex SHA-256 of the file part
	Verified         bool              // the headers and signature passed
	Code             int               // result code answered (also for injected faults)
	HTTPStatus       int               // HTTP status answered; 0 when the connection was dropped
	Fault            *Fault            // the injected fault, if any
	MediaID          string            // id created (upload) or asked for (get/delete)
	Duration         time.Duration
}

// Fault makes the next calls of an action misbehave (see Server.Inject):
//   - DropConnection: read the request (only when Delay is set), wait Delay,
//     then close the connection without an answer.
//   - Body, Code or HTTPStatus set: read the request, wait Delay, then answer
//     HTTPStatus (default 200) with Body, else with the failure JSON of Code,
//     else with the status text as text/plain.
//   - Delay only: serve the call normally (an upload is stored), then wait
//     Delay before answering.
//
// While waiting, a client that gives up ends the call without an answer.
type Fault struct {
	Code           int
	HTTPStatus     int
	Body           string
	Delay          time.Duration
	DropConnection bool
	Times          int // how many calls this fault applies to; 0 means 1
}

// Option configures a Server.
type Option func(*Server)

// WithCredentials sets the only accepted access key and its secret (default
// DefaultAccessKey, DefaultAccessSecret).
func WithCredentials(accessKey, accessSecret string) Option {
	return func(s *Server) { s.accessKey, s.accessSecret = accessKey, accessSecret }
}

// WithClock sets the clock ts is checked against (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(s *Server) {
		if now != nil {
			s.now = now
		}
	}
}

// WithKnownPhones restricts the merchant phones that pass the merchant checks
// to phones; any other answers 9002. Without it any 5 to 20 digit phone
// passes, except those given to WithNotWhatsAppPhones or WithUnboundPhones.
func WithKnownPhones(phones ...string) Option {
	return func(s *Server) {
		if s.known == nil {
			s.known = map[string]bool{}
		}
		for _, p := range phones {
			s.known[p] = true
		}
	}
}

// WithNotWhatsAppPhones makes phones answer 9002 (merchant phone error).
func WithNotWhatsAppPhones(phones ...string) Option {
	return func(s *Server) {
		for _, p := range phones {
			s.phoneCodes[p] = CodeMerchantPhone
		}
	}
}

// WithUnboundPhones makes phones answer 9006 (not bound to the application).
func WithUnboundPhones(phones ...string) Option {
	return func(s *Server) {
		for _, p := range phones {
			s.phoneCodes[p] = CodeNotBound
		}
	}
}

// WithLogger logs one line per call (action, code, status, duration, size);
// never a header value. Default: no logs.
func WithLogger(l *slog.Logger) Option {
	return func(s *Server) {
		if l != nil {
			s.log = l
		}
	}
}

// WithDiscardUploads makes uploads answer an id without storing anything
// (no Media, no Uploads entry); the file is still streamed, counted and
// hashed, and the Call is recorded. For benchmarks and long local runs.
func WithDiscardUploads(discard bool) Option {
	return func(s *Server) { s.discard = discard }
}

// WithKeepContent keeps the bytes of uploaded files in memory (Media.Content)
// and serves them at the url getMedia answers. Default: only size and hash.
func WithKeepContent(keep bool) Option {
	return func(s *Server) { s.keep = keep }
}

// Server is a local NXCloud. It is an http.Handler; Start serves it on an
// address. All methods are safe for concurrent use.
type Server struct {
	mu           sync.Mutex
	accessKey    string
	accessSecret string
	now          func() time.Time
	known        map[string]bool
	phoneCodes   map[string]int
	log          *slog.Logger
	discard      bool
	keep         bool
	media        map[string]*Media
	uploads      []Media
	calls        []Call
	faults       map[string][]Fault

	httpSrv *http.Server
	url     string
}

// NewServer builds a server; serve it with Start or mount it as a handler.
func NewServer(opts ...Option) *Server {
	s := &Server{
		accessKey:    DefaultAccessKey,
		accessSecret: DefaultAccessSecret,
		now:          time.Now,
		phoneCodes:   map[string]int{},
		log:          slog.New(slog.DiscardHandler),
		media:        map[string]*Media{},
		faults:       map[string][]Fault{},
	}
	for _, opt := range opts {
		if opt != nil {
			opt(s)
		}
	}
	return s
}

// Start serves the server on addr (e.g. "127.0.0.1:0" for a free port) and
// returns its base URL, to be given to nxcloud.WithBaseURL.
func (s *Server) Start(addr string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.httpSrv != nil {
		return "", errors.New("nxcloudtest: the server is already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("nxcloudtest: listening on %s: %w", addr, err)
	}
	s.httpSrv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.url = "http://" + ln.Addr().String()
	go func(srv *http.Server) { _ = srv.Serve(ln) }(s.httpSrv)
	return s.url, nil
}

// URL is the base URL Start returned ("" before Start).
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// Close stops a started server and closes its connections.
func (s *Server) Close() error {
	s.mu.Lock()
	srv := s.httpSrv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Close()
}

// SetCredentials rotates the credentials: from now on only accessKey and
// accessSecret are accepted.
func (s *Server) SetCredentials(accessKey, accessSecret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accessKey, s.accessSecret = accessKey, accessSecret
}

// Credentials returns the credentials the server accepts now.
func (s *Server) Credentials() nxcloud.Credentials {
	s.mu.Lock()
	defer s.mu.Unlock()
	return nxcloud.Credentials{AccessKey: s.accessKey, AccessSecret: s.accessSecret}
}

// Inject queues f for the next f.Times calls of action (one of the nxcloud
// Action constants). Faults queued for one action apply in order.
func (s *Server) Inject(action string, f Fault) {
	if f.Times <= 0 {
		f.Times = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[action] = append(s.faults[action], f)
}

func (s *Server) nextFault(action string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.faults[action]
	if len(q) == 0 {
		return Fault{}, false
	}
	f := q[0]
	if q[0].Times--; q[0].Times <= 0 {
		s.faults[action] = q[1:]
	}
	return f, true
}

// Calls returns the recorded calls of action, oldest first; "" returns all.
func (s *Server) Calls(action string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if action == "" || c.Action == action {
			out = append(out, c)
		}
	}
	return out
}

// Media looks up a stored media file.
func (s *Server) Media(id string) (Media, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.media[id]
	if !ok {
		return Media{}, false
	}
	return *m, true
}

// Uploads returns every file stored by uploadTemplateFile and uploadMedia,
// oldest first (deleted ones included); Media.Action tells them apart.
func (s *Server) Uploads() []Media {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.uploads)
}

// AddMedia stores m as if it had been uploaded, or received in a customer's
// message (a UUID id is made up when m.ID is empty; Size and SHA256 are
// computed from Content when Size is 0) and returns its id.
func (s *Server) AddMedia(m Media) string {
	if m.ID == "" {
		m.ID = newMediaID()
	}
	if m.Size == 0 && len(m.Content) > 0 {
		m.Size = int64(len(m.Content))
		sum := sha256.Sum256(m.Content)
		m.SHA256 = hex.EncodeToString(sum[:])
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.Created.IsZero() {
		m.Created = s.now()
	}
	s.media[m.ID] = &m
	return m.ID
}

// newHandle makes up the id of a template file: "4:" and base64url, the
// shape of uploadTemplateFile's header handles.
func newHandle() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "4:" + base64.RawURLEncoding.EncodeToString(b[:])
}

// newMediaID makes up the id of a message media file: a random (version 4)
// UUID, the shape of uploadMedia's ids and of the ids in customers' messages.
func newMediaID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

var actions = []string{nxcloud.ActionGetMedia, nxcloud.ActionDeleteMedia, nxcloud.ActionUploadTemplateFile, nxcloud.ActionUploadMedia}

// uploads are the upload actions with the table of the files each accepts
// and the maker of the ids it answers.
var uploads = map[string]struct {
	types nxcloud.FileTypes
	newID func() string
}{
	nxcloud.ActionUploadTemplateFile: {nxcloud.TemplateFileTypes, newHandle},
	nxcloud.ActionUploadMedia:        {nxcloud.MessageMediaTypes, newMediaID},
}

// ServeHTTP serves POST /api/wa/{getMedia,deleteMedia,uploadTemplateFile,uploadMedia}
// and GET /files/{id} (content kept with WithKeepContent).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if id, ok := strings.CutPrefix(r.URL.Path, "/files/"); ok && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		s.serveFile(w, r, id)
		return
	}
	action, ok := strings.CutPrefix(r.URL.Path, "/api/wa/")
	if !ok || !slices.Contains(actions, action) {
		http.Error(w, "nxcloudtest: no such endpoint: use POST /api/wa/getMedia, /api/wa/deleteMedia, /api/wa/uploadTemplateFile or /api/wa/uploadMedia", http.StatusNotFound)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "nxcloudtest: method not allowed: use POST", http.StatusMethodNotAllowed)
		return
	}

	start := time.Now()
	s.mu.Lock()
	arrival := s.now()
	s.mu.Unlock()
	call := Call{
		Action:           action,
		Time:             arrival,
		Method:           r.Method,
		Path:             r.URL.Path,
		Header:           r.Header.Clone(),
		ContentLength:    r.ContentLength,
		TransferEncoding: slices.Clone(r.TransferEncoding),
	}
	body := &countingBody{ReadCloser: r.Body}
	r.Body = body
	// The call is recorded before its answer leaves (so that a client that
	// got the answer also finds the record), or when the handler returns.
	recorded := false
	record := func() {
		if !recorded {
			recorded = true
			call.Duration = time.Since(start)
			call.BodyBytes = body.n
			s.record(call)
		}
	}
	defer record()

	f, faulty := s.nextFault(action)
	if faulty {
		call.Fault = &f
		if s.applyFault(w, r, &call, f, record) {
			return
		}
	}

	var res result
	if _, ok := uploads[action]; ok {
		res = s.upload(r, &call, action)
	} else {
		res = s.jsonCall(r, &call, action)
	}
	call.Code = res.code
	if faulty && !wait(r.Context(), f.Delay) {
		return // the client left while the answer was delayed
	}
	call.HTTPStatus = http.StatusOK
	record()
	writeResult(w, res)
}

// wait sleeps d and reports false when ctx ended first.
func wait(ctx context.Context, d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *Server) record(c Call) {
	s.log.Info("nxcloudtest call", "action", c.Action, "code", c.Code, "status", c.HTTPStatus,
		"verified", c.Verified, "fault", c.Fault != nil, "file_size", c.FileSize, "duration", c.Duration)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
}

// applyFault plays a fault that drops the connection or answers on its own,
// and reports whether it did; a fault that is only a Delay is played after
// the call was served normally (so that a delayed upload is stored, as
// when NXCloud's answer is lost). The request body is read before waiting,
// so that the server notices a client that gives up.
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, call *Call, f Fault, record func()) bool {
	if f.DropConnection {
		if f.Delay > 0 {
			_, _ = io.Copy(io.Discard, r.Body)
			if !wait(r.Context(), f.Delay) {
				return true
			}
		}
		record()
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return true
			}
		}
		panic(http.ErrAbortHandler) // closes the connection without an answer
	}
	if f.Body == "" && f.Code == 0 && f.HTTPStatus == 0 {
		return false
	}
	_, _ = io.Copy(io.Discard, r.Body)
	call.Code = f.Code
	if !wait(r.Context(), f.Delay) {
		return true
	}
	status := f.HTTPStatus
	if status == 0 {
		status = http.StatusOK
	}
	call.HTTPStatus = status
	record()
	switch {
	case f.Body != "":
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, f.Body)
	case f.Code != 0:
		writeResult(w, result{status: status, code: f.Code, message: Message(f.Code)})
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, http.StatusText(status))
	}
	return true
}

// result is an answer to write.
type result struct {
	status  int // default 200
	code    int
	message string
	data    any // success data
}

func fail(code int, detail string) result {
	msg := Message(code)
	if detail != "" {
		msg += ": " + detail
	}
	return result{code: code, message: msg}
}

func writeResult(w http.ResponseWriter, res result) {
	var body []byte
	var err error
	if res.code == CodeOK {
		body, err = json.Marshal(struct {
			Code    int    `json:"code"`
			Data    any    `json:"data"`
			Message string `json:"message"`
		}{0, res.data, Message(CodeOK)})
	} else {
		body, err = json.Marshal(struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
			Data    any    `json:"data"`
		}{res.code, res.message, nil})
	}
	if err != nil {
		http.Error(w, "nxcloudtest: encoding the answer: "+err.Error(), http.StatusInternalServerError)
		return
	}
	status := res.status
	if status == 0 {
		status = http.StatusOK
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

var tsRE = regexp.MustCompile(`^[0-9]{13}$`)

// authenticate checks the headers and the signature; body is nil for
// multipart calls. It returns a failed result, or ok.
func (s *Server) authenticate(h http.Header, action string, body []byte) (result, bool) {
	for _, name := range append(slices.Clone(signedHeaders), "sign") {
		if h.Get(name) == "" {
			return fail(CodeMissingHeader, "header "+name+" is missing"), false
		}
	}
	if h.Get("bizType") != nxcloud.BizTypeWhatsApp {
		return fail(CodeBadHeader, "bizType must be 2"), false
	}
	if h.Get("action") != action {
		return fail(CodeBadHeader, "action header does not match the endpoint"), false
	}
	if alg := h.Get("algorithm"); alg != "" && alg != "md5" && alg != "sha256" {
		return fail(CodeBadHeader, "algorithm must be md5 or sha256"), false
	}
	s.mu.Lock()
	accessKey, secret, now := s.accessKey, s.accessSecret, s.now()
	s.mu.Unlock()
	if subtle.ConstantTimeCompare([]byte(h.Get("accessKey")), []byte(accessKey)) != 1 {
		return fail(CodeUnknownAccessKey, ""), false
	}
	ts := h.Get("ts")
	if !tsRE.MatchString(ts) {
		return fail(CodeTimestampOutOfRange, "ts must be 13 digits of milliseconds"), false
	}
	ms, _ := strconv.ParseInt(ts, 10, 64)
	if d := now.Sub(time.UnixMilli(ms)); d > TimestampWindow || d < -TimestampWindow {
		return fail(CodeTimestampOutOfRange, "ts is more than 60 s from the server's clock"), false
	}
	if err := VerifySign(h, body, secret); err != nil {
		return fail(CodeBadSignature, ""), false
	}
	return result{}, true
}

// checkPhone runs the merchant checks.
func (s *Server) checkPhone(phone string) (result, bool) {
	if !phoneRE.MatchString(phone) {
		return fail(CodeMerchantPhone, "business_phone must be 5 to 20 digits"), false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if code, ok := s.phoneCodes[phone]; ok {
		return fail(code, ""), false
	}
	if s.known != nil && !s.known[phone] {
		return fail(CodeMerchantPhone, "unknown merchant phone"), false
	}
	return result{}, true
}

var phoneRE = regexp.MustCompile(`^[0-9]{5,20}$`)

// jsonCall serves getMedia and deleteMedia.
func (s *Server) jsonCall(r *http.Request, call *Call, action string) result {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxJSONBody+1))
	if err != nil {
		return fail(CodeParameter, "reading the body: "+err.Error())
	}
	call.Body = body
	if len(body) > maxJSONBody {
		return fail(CodeParameter, "body larger than 1 MiB")
	}
	if res, ok := s.authenticate(r.Header, action, body); !ok {
		return res
	}
	call.Verified = true
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return fail(CodeParameter, "Content-Type must be application/json")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return fail(CodeParameter, "body is not a JSON object")
	}
	call.Fields = map[string]string{}
	str := func(key string) (string, bool) {
		raw, ok := fields[key] // exact key: "Media-ID", not "media-id"
		if !ok {
			return "", false
		}
		var v string
		if json.Unmarshal(raw, &v) != nil {
			return "", false
		}
		call.Fields[key] = v
		return v, v != ""
	}
	phone, okPhone := str("business_phone")
	product, _ := str("messaging_product")
	id, okID := str("Media-ID")
	switch {
	case !okPhone:
		return fail(CodeParameter, "business_phone is required")
	case product != nxcloud.MessagingProduct:
		return fail(CodeParameter, `messaging_product must be "whatsapp"`)
	case !okID:
		return fail(CodeParameter, "Media-ID is required")
	}
	call.MediaID = id
	if res, ok := s.checkPhone(phone); !ok {
		return res
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.media[id]
	if !ok {
		return fail(CodeParameter, "media not found")
	}
	if action == nxcloud.ActionDeleteMedia {
		delete(s.media, id)
		return result{data: struct {
			Success bool `json:"success"`
		}{true}}
	}
	return result{data: struct {
		MimeType string `json:"mime_type"`
		FileName string `json:"file_name"`
		URL      string `json:"url"`
	}{m.MimeType, m.FileName, "http://" + r.Host + "/files/" + id}}
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// upload serves uploadTemplateFile and uploadMedia, streaming the file part.
// The type field must be a MediaType of the action's table, spelled as the
// table spells it (an alias is the caller's to resolve), and the file at most
// the row's MaxBytes.
func (s *Server) upload(r *http.Request, call *Call, action string) result {
	defer func() { _, _ = io.Copy(io.Discard, r.Body) }()
	dest := uploads[action]
	if res, ok := s.authenticate(r.Header, action, nil); !ok {
		return res
	}
	call.Verified = true
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "multipart/form-data" {
		return fail(CodeParameter, "Content-Type must be multipart/form-data")
	}
	if r.ContentLength < 0 || len(r.TransferEncoding) > 0 {
		return fail(CodeParameter, "the multipart body needs a Content-Length (chunked transfer is not accepted)")
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return fail(CodeParameter, "malformed multipart body")
	}

	call.Fields = map[string]string{}
	var (
		haveFile bool
		content  *bytes.Buffer
		sum      hash.Hash
	)
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fail(CodeParameter, "malformed multipart body")
		}
		_, params, _ := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
		name := params["name"]
		if name != "file" {
			v, err := io.ReadAll(io.LimitReader(part, 4<<10))
			if err != nil {
				return fail(CodeParameter, "malformed multipart body")
			}
			call.Fields[name] = string(v)
			continue
		}
		if haveFile {
			return fail(CodeParameter, "more than one file part")
		}
		haveFile = true
		call.FileName = params["filename"]
		call.FileType = part.Header.Get("Content-Type")
		sum = sha256.New()
		dst := io.Writer(sum)
		if s.keep && !s.discard {
			content = new(bytes.Buffer)
			dst = io.MultiWriter(sum, content)
		}
		buf := copyBufs.Get().(*[]byte)
		n, err := io.CopyBuffer(dst, part, *buf)
		copyBufs.Put(buf)
		call.FileSize = n
		if err != nil {
			return fail(CodeParameter, "malformed multipart body")
		}
		call.FileSHA256 = hex.EncodeToString(sum.Sum(nil))
	}

	phone, typ := call.Fields["business_phone"], call.Fields["type"]
	ft, known := dest.types.ByMediaType(typ)
	switch {
	case call.Fields["messaging_product"] != nxcloud.MessagingProduct:
		return fail(CodeParameter, `messaging_product must be "whatsapp"`)
	case phone == "":
		return fail(CodeParameter, "business_phone is required")
	case !known || ft.MediaType != typ:
		return fail(CodeParameter, "type must be one of "+strings.Join(dest.types.MediaTypes(), ", "))
	case !haveFile:
		return fail(CodeParameter, "file is required")
	case call.FileSize == 0:
		return fail(CodeParameter, "file is empty")
	case ft.MaxBytes > 0 && call.FileSize > ft.MaxBytes:
		return fail(CodeParameter, fmt.Sprintf("file of %d bytes is larger than %d bytes, the largest %s file", call.FileSize, ft.MaxBytes, ft.Kind))
	}
	if res, ok := s.checkPhone(phone); !ok {
		return res
	}

	id := dest.newID()
	call.MediaID = id
	if !s.discard {
		m := Media{
			ID: id, Action: action, MimeType: typ, FileName: call.FileName, BusinessPhone: phone,
			Size: call.FileSize, SHA256: call.FileSHA256, Created: call.Time,
		}
		if content != nil {
			m.Content = content.Bytes()
		}
		s.mu.Lock()
		s.media[id] = &m
		s.uploads = append(s.uploads, m)
		s.mu.Unlock()
	}
	return result{data: struct {
		ID string `json:"id"`
	}{id}}
}

// serveFile serves GET /files/{id}: the content of a stored media file when
// it was kept, else 404.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	m, ok := s.media[id]
	s.mu.Unlock()
	if !ok || m.Content == nil {
		http.Error(w, "nxcloudtest: no stored content for this media id (start the server with WithKeepContent)", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", m.MimeType)
	http.ServeContent(w, r, "", m.Created, bytes.NewReader(m.Content))
}

var _ http.Handler = (*Server)(nil)

// countingBody counts the bytes read from a request body.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	return n, err
}
