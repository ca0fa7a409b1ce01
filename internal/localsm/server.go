package localsm

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Region and AccountID are written into the ARNs.
const (
	Region    = "us-east-1"
	AccountID = "000000000000"
)

// Staging labels.
const (
	StageCurrent  = "AWSCURRENT"
	StagePrevious = "AWSPREVIOUS"
)

// Operation names, as sent after "secretsmanager." in X-Amz-Target.
const (
	OpGetSecretValue = "GetSecretValue"
)

const (
	targetPrefix = "secretsmanager."
	contentType  = "application/x-amz-json-1.1"
	// maxBody bounds a request body.
	maxBody    = 1 << 20
	msgNoSuch  = "Secrets Manager can't find the specified secret."
	arnLetters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)

// Server is a local Secrets Manager endpoint; it is an http.Handler and can
// also listen on its own (Start). All methods are safe for concurrent use.
type Server struct {
	mu      sync.Mutex
	secrets map[string]*secretRecord // by name
	calls   map[string]int
	delay   time.Duration
	fails   int
	failErr string
	failSt  int

	srvMu  sync.Mutex
	srv    *http.Server
	url    string
	closed chan struct{}
}

type secretRecord struct {
	name     string
	arn      string
	versions map[string]*secretVersion // by version id
	stages   map[string]string         // staging label -> version id
}

type secretVersion struct {
	id      string
	str     *string
	bin     []byte
	created time.Time
}

// New returns a Server with no secrets.
func New() *Server {
	return &Server{
		secrets: map[string]*secretRecord{},
		calls:   map[string]int{},
		closed:  make(chan struct{}),
	}
}

// NewTestServer starts a Server on 127.0.0.1 on a free port and stops it when
// the test ends. Its URL is s.URL().
func NewTestServer(t testing.TB) *Server {
	t.Helper()
	s := New()
	if _, err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("localsm: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves in the background. It
// returns the endpoint URL, e.g. http://127.0.0.1:41234, for BaseEndpoint or
// AWS_ENDPOINT_URL_SECRETS_MANAGER.
func (s *Server) Start(addr string) (string, error) {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.srv != nil {
		return "", errors.New("localsm: server already started: call Start once per Server")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("localsm: listen on %q: %w", addr, err)
	}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.url = "http://" + ln.Addr().String()
	go s.srv.Serve(ln) //nolint:errcheck // Serve returns http.ErrServerClosed after Close
	return s.url, nil
}

// URL is the endpoint URL after Start, "" before.
func (s *Server) URL() string {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	return s.url
}

// Close stops the listener started by Start and ends delayed answers. It is
// safe to call more than once.
func (s *Server) Close() {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
	if s.srv != nil {
		s.srv.Close()
	}
}

// Put stores secretString as the new AWSCURRENT version of the secret name,
// creating the secret when it does not exist yet.
func (s *Server) Put(name, secretString string) {
	s.put(name, &secretString, nil)
}

// PutBinary stores b as a SecretBinary-only AWSCURRENT version of the secret
// name, creating the secret when it does not exist yet.
func (s *Server) PutBinary(name string, b []byte) {
	s.put(name, nil, bytes.Clone(b))
}

func (s *Server) put(name string, str *string, bin []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.secrets[name]
	if rec == nil {
		rec = s.newSecretLocked(name)
	}
	s.addVersionLocked(rec, newID(), str, bin, []string{StageCurrent})
}

// ARN returns the full ARN of the secret name, or "" when there is none.
func (s *Server) ARN(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec := s.secrets[name]; rec != nil {
		return rec.arn
	}
	return ""
}

// SetDelay makes every following answer wait d first (0 removes the delay).
// A client giving up, or Close, ends the wait.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// FailNext makes the next n calls (of any operation, after the
// authentication check) fail with the error code errType, e.g.
// "ThrottlingException", and the HTTP status httpStatus, e.g. 400; n <= 0
// cancels pending failures.
func (s *Server) FailNext(n int, errType string, httpStatus int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails, s.failErr, s.failSt = max(n, 0), errType, httpStatus
}

// Calls returns how many requests named the operation target, given as
// "GetSecretValue" or "secretsmanager.GetSecretValue". Every request that
// passes the authentication check counts, whatever its outcome (injected
// failures and SDK retries included); unsigned requests do not.
func (s *Server) Calls(target string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[strings.TrimPrefix(target, targetPrefix)]
}

// apiError is an error answered as AWS answers it.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errNotFound(msg string) *apiError {
	return &apiError{http.StatusBadRequest, "ResourceNotFoundException", msg}
}

func errInvalidParameter(msg string) *apiError {
	return &apiError{http.StatusBadRequest, "InvalidParameterException", msg}
}

// ServeHTTP answers one Secrets Manager API call.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Amzn-RequestId", newID())
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, &apiError{http.StatusMethodNotAllowed, "UnknownOperationException", "use POST / with the X-Amz-Target header"})
		return
	}
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, targetPrefix)
	if !ok || op == "" {
		writeError(w, &apiError{http.StatusBadRequest, "UnknownOperationException", ""})
		return
	}
	if err := checkAuth(r.Header.Get("Authorization")); err != nil {
		writeError(w, err)
		return
	}

	s.mu.Lock()
	s.calls[op]++
	delay := s.delay
	var injected *apiError
	if s.fails > 0 {
		s.fails--
		injected = &apiError{s.failSt, s.failErr, "injected fault"}
	}
	s.mu.Unlock()

	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		case <-s.closed:
			t.Stop()
		}
	}
	if injected != nil {
		writeError(w, injected)
		return
	}

	if mt := strings.TrimSpace(strings.Split(r.Header.Get("Content-Type"), ";")[0]); mt != contentType {
		writeError(w, &apiError{http.StatusBadRequest, "SerializationException", fmt.Sprintf("Content-Type %q is not %s", mt, contentType)})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		writeError(w, &apiError{http.StatusBadRequest, "SerializationException", "cannot read the request body"})
		return
	}
	if len(body) > maxBody {
		writeError(w, &apiError{http.StatusRequestEntityTooLarge, "SerializationException", "request body too large"})
		return
	}

	var out any
	var aerr *apiError
	switch op {
	case OpGetSecretValue:
		var in getSecretValueInput
		if aerr = decode(body, &in); aerr == nil {
			out, aerr = s.getSecretValue(in)
		}
	default:
		aerr = &apiError{http.StatusBadRequest, "UnknownOperationException", ""}
	}
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// checkAuth checks the presence and the form of a SigV4 Authorization
// header; the signature is not verified.
func checkAuth(h string) *apiError {
	if h == "" {
		return &apiError{http.StatusBadRequest, "MissingAuthenticationTokenException", "Missing Authentication Token"}
	}
	if !strings.HasPrefix(h, "AWS4-HMAC-SHA256 ") ||
		!strings.Contains(h, "Credential=") || !strings.Contains(h, "SignedHeaders=") || !strings.Contains(h, "Signature=") {
		return &apiError{http.StatusBadRequest, "IncompleteSignatureException", "Authorization header requires AWS4-HMAC-SHA256 with Credential, SignedHeaders and Signature"}
	}
	return nil
}

func decode(body []byte, v any) *apiError {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return &apiError{http.StatusBadRequest, "SerializationException", "the request body is not the operation's JSON input"}
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"__type":"InternalServiceError","message":"cannot encode the answer"}`)
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(status)
	w.Write(b) //nolint:errcheck // the client went away
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("X-Amzn-ErrorType", e.code)
	body := struct {
		Type    string `json:"__type"`
		Message string `json:"message,omitempty"`
	}{e.code, e.message}
	writeJSON(w, e.status, body)
}

// epochSeconds is a timestamp encoded as AWS JSON 1.1 encodes timestamps: a
// number of seconds since the Unix epoch, with a fraction.
type epochSeconds time.Time

func (t epochSeconds) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	return []byte(fmt.Sprintf("%d.%03d", ms/1000, ms%1000)), nil
}

// newID returns a random version id in the UUID form AWS uses.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// arnSuffix returns the six random characters AWS appends to a secret's ARN.
func arnSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	for i := range b {
		b[i] = arnLetters[int(b[i])%len(arnLetters)]
	}
	return string(b[:])
}

var _ http.Handler = (*Server)(nil)
