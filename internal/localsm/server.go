package localsm

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/iampolicy"
)

// The operations, as sent after "secretsmanager." in X-Amz-Target.
const (
	OpGetSecretValue = "GetSecretValue"
	OpPutSecretValue = "PutSecretValue"
)

// Authorizer decides whether the caller with an access key id may perform
// an action (e.g. "secretsmanager:GetSecretValue") on a secret (its ARN, or
// the SecretId asked for when there is no such secret).
type Authorizer func(accessKeyID, action, resource string) bool

// Server is a local Secrets Manager endpoint; it is an http.Handler and can
// also listen on its own (Start). All methods are safe for concurrent use.
type Server struct {
	mu      sync.Mutex
	secrets map[string]*secretValue // by name
	calls   map[string]int
	delay   time.Duration
	fails   int
	failErr *apiError
	allow   Authorizer

	srv    *http.Server
	url    string
	closed chan struct{}
}

// secretValue is the current version of a secret.
type secretValue struct {
	arn, version string
	str          *string
	bin          []byte
	created      time.Time
}

// New returns a Server with no secrets.
func New() *Server {
	return &Server{secrets: map[string]*secretValue{}, calls: map[string]int{}, closed: make(chan struct{})}
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

// Start listens on addr (e.g. "127.0.0.1:0"), serves in the background and
// returns the endpoint URL, for BaseEndpoint or
// AWS_ENDPOINT_URL_SECRETS_MANAGER. Call it once.
func (s *Server) Start(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("localsm: listen on %q: %w", addr, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.url = "http://" + ln.Addr().String()
	go func() { _ = s.srv.Serve(ln) }()
	return s.url, nil
}

// URL is the endpoint URL after Start.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// Close stops the listener and ends delayed answers; it may be called more
// than once.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
	if s.srv != nil {
		_ = s.srv.Close()
	}
}

// Put stores secretString as the new current value of the secret name,
// creating the secret when it does not exist yet.
func (s *Server) Put(name, secretString string) { s.put(name, &secretString, nil) }

// PutBinary stores b as the new current value of the secret name, a
// SecretBinary without a SecretString.
func (s *Server) PutBinary(name string, b []byte) { s.put(name, nil, bytes.Clone(b)) }

func (s *Server) put(name string, str *string, bin []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.putLocked(name, randomID(16), str, bin)
}

// putLocked stores a new current version; the caller holds s.mu.
func (s *Server) putLocked(name, version string, str *string, bin []byte) *secretValue {
	v := &secretValue{arn: "arn:aws:secretsmanager:us-east-1:000000000000:secret:" + name + "-" + randomID(3),
		version: version, str: str, bin: bin, created: time.Now()}
	if old := s.secrets[name]; old != nil {
		v.arn = old.arn
	}
	s.secrets[name] = v
	return v
}

// SetAuthorizer makes every following call ask allow whether its caller (the
// access key id of its SigV4 signature) may do what it asks: a refusal is
// AWS's 400 AccessDeniedException. nil (the default) allows everything.
func (s *Server) SetAuthorizer(allow Authorizer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.allow = allow
}

// ARN returns the full ARN of the secret name, or "" when there is none.
func (s *Server) ARN(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := s.secrets[name]; v != nil {
		return v.arn
	}
	return ""
}

// SetDelay makes every following answer wait d first (0 removes the delay);
// a client giving up, or Close, ends the wait.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// FailNext makes the next n calls fail with the error code errType, e.g.
// "ThrottlingException", and the HTTP status httpStatus, e.g. 400; n <= 0
// cancels pending failures.
func (s *Server) FailNext(n int, errType string, httpStatus int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails, s.failErr = max(n, 0), &apiError{httpStatus, errType, "injected fault"}
}

// Calls returns how many signed requests named the operation target, given
// as "GetSecretValue" or "secretsmanager.GetSecretValue", whatever their
// outcome (injected failures and SDK retries included).
func (s *Server) Calls(target string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[strings.TrimPrefix(target, "secretsmanager.")]
}

// apiError is an error answered as AWS answers it.
type apiError struct {
	status        int
	code, message string
}

// ServeHTTP answers one Secrets Manager API call.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "secretsmanager.")
	key := iampolicy.AccessKeyID(r)
	if key == "" {
		writeJSON(w, &apiError{http.StatusBadRequest, "MissingAuthenticationTokenException", "Missing Authentication Token"})
		return
	}
	s.mu.Lock()
	s.calls[op]++
	delay, fail := s.delay, s.fails > 0
	if fail {
		s.fails--
	}
	injected := s.failErr
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		case <-s.closed:
		}
	}
	switch {
	case fail:
		writeJSON(w, injected)
	case op == OpGetSecretValue:
		writeJSON(w, s.getSecretValue(key, r.Body))
	case op == OpPutSecretValue:
		writeJSON(w, s.putSecretValue(key, r.Body))
	default:
		writeJSON(w, &apiError{http.StatusBadRequest, "UnknownOperationException",
			fmt.Sprintf("the local Secrets Manager implements %s and %s, not %q", OpGetSecretValue, OpPutSecretValue, op)})
	}
}

// find returns the secret a SecretId names, by name or full ARN, with its
// name; nil when there is none. The caller holds s.mu.
func (s *Server) find(id string) (string, *secretValue) {
	if v := s.secrets[id]; v != nil {
		return id, v
	}
	for n, v := range s.secrets {
		if v.arn == id {
			return n, v
		}
	}
	return id, nil
}

// denied is the AccessDeniedException of a caller the authorizer refuses
// action on resource, nil when it is allowed. The caller holds s.mu.
func (s *Server) denied(key, op, resource string) *apiError {
	action := "secretsmanager:" + op
	if s.allow == nil || s.allow(key, action, resource) {
		return nil
	}
	return &apiError{http.StatusBadRequest, "AccessDeniedException", fmt.Sprintf(
		"User: %s is not authorized to perform: %s on resource: %s because no identity-based policy allows the %s action", key, action, resource, action)}
}

// putSecretValue stores a new current version of an existing secret, as
// `aws secretsmanager put-secret-value` asks: SecretId, and SecretString or
// SecretBinary; the ClientRequestToken, when given, is the version id, and
// sending it again changes nothing.
func (s *Server) putSecretValue(key string, body io.Reader) any {
	var in struct {
		SecretID           string  `json:"SecretId"`
		SecretString       *string `json:"SecretString"`
		SecretBinary       []byte  `json:"SecretBinary"`
		ClientRequestToken string  `json:"ClientRequestToken"`
	}
	if err := json.NewDecoder(io.LimitReader(body, 1<<20)).Decode(&in); err != nil {
		return &apiError{http.StatusBadRequest, "SerializationException", "the request body is not the operation's JSON input"}
	}
	if (in.SecretString == nil) == (in.SecretBinary == nil) {
		return &apiError{http.StatusBadRequest, "InvalidParameterException", "You must provide either SecretString or SecretBinary."}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	name, v, err := s.lookup(key, OpPutSecretValue, in.SecretID)
	if err != nil {
		return err
	}
	switch {
	case in.ClientRequestToken == "" || in.ClientRequestToken != v.version:
		v = s.putLocked(name, cmp.Or(in.ClientRequestToken, randomID(16)), in.SecretString, in.SecretBinary)
	case (in.SecretString == nil) != (v.str == nil) || (v.str != nil && *in.SecretString != *v.str) || !bytes.Equal(in.SecretBinary, v.bin):
		// A retry of the call that made the current version is idempotent;
		// the same token with another value is refused, as AWS does.
		return &apiError{http.StatusBadRequest, "ResourceExistsException", "You can't modify an existing version, you can only create a new version."}
	}
	return map[string]any{"ARN": v.arn, "Name": name, "VersionId": v.version, "VersionStages": []string{"AWSCURRENT"}}
}

// lookup finds the secret id names for op by the caller key: an
// AccessDenied when the caller may not (on the secret's ARN, or on id for a
// secret that does not exist, as in AWS), else a ResourceNotFound for a
// missing secret. The caller holds s.mu.
func (s *Server) lookup(key, op, id string) (string, *secretValue, *apiError) {
	name, v := s.find(id)
	resource := id
	if v != nil {
		resource = v.arn
	}
	if err := s.denied(key, op, resource); err != nil {
		return "", nil, err
	}
	if v == nil {
		return "", nil, &apiError{http.StatusBadRequest, "ResourceNotFoundException", "Secrets Manager can't find the specified secret."}
	}
	return name, v, nil
}

// getSecretValue answers the current value of the secret the body names,
// or an *apiError.
func (s *Server) getSecretValue(key string, body io.Reader) any {
	var in struct {
		SecretID string `json:"SecretId"`
	}
	if err := json.NewDecoder(io.LimitReader(body, 1<<20)).Decode(&in); err != nil {
		return &apiError{http.StatusBadRequest, "SerializationException", "the request body is not the operation's JSON input"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	name, v, err := s.lookup(key, OpGetSecretValue, in.SecretID)
	if err != nil {
		return err
	}
	ms := v.created.UnixMilli()
	return map[string]any{
		"ARN": v.arn, "Name": name, "VersionId": v.version, "VersionStages": []string{"AWSCURRENT"},
		"SecretString": v.str, "SecretBinary": v.bin, // nil: null, which the SDK reads as absent
		"CreatedDate": json.Number(fmt.Sprintf("%d.%03d", ms/1000, ms%1000)),
	}
}

// writeJSON answers v with status 200, or an *apiError as AWS does.
func writeJSON(w http.ResponseWriter, v any) {
	status := http.StatusOK
	if e, ok := v.(*apiError); ok {
		status = e.status
		w.Header().Set("X-Amzn-ErrorType", e.code)
		v = map[string]string{"__type": e.code, "message": e.message}
	}
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// randomID returns n random bytes in hex.
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}
