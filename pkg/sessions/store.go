package sessions

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/config"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/ledger"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/sessions/session"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/upload"
)

// S3API is the part of the S3 client the store uses; *s3.Client satisfies
// it.
type S3API interface {
	ledger.S3API
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
}

// Presigner presigns the file's PUT; *s3.PresignClient satisfies it.
type Presigner interface {
	PresignPutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.PresignOptions)) (*v4.PresignedHTTPRequest, error)
}

// Config configures a Store.
type Config struct {
	// Bucket is the media bucket (MEDIA_BUCKET).
	Bucket string
	// Prefix and MediaPrefix are the upload functions' prefixes
	// (UPLOAD_PREFIX, MEDIA_PREFIX); the sessions of each purpose live under
	// its prefix + "uploads/". Defaults templates/ and media/.
	Prefix, MediaPrefix string
	// TTL is the lifetime of an upload URL (UPLOAD_URL_TTL), whole seconds;
	// default 15m.
	TTL time.Duration
	// Clock returns the current time; default time.Now.
	Clock func() time.Time
}

// Store keeps upload sessions in S3; it implements mediaapi.UploadService
// (functions/upload-sessions hands it to mediaapi.NewUploadsHandler).
type Store struct {
	cfg     Config
	s3      S3API
	ledger  *ledger.Ledger
	presign Presigner
}

// NewStore returns a Store over api and presigner (s3.NewPresignClient of
// the same client in the function).
func NewStore(cfg Config, api S3API, presigner Presigner) *Store {
	cfg.Prefix = cmp.Or(cfg.Prefix, config.DefaultUploadPrefix)
	cfg.MediaPrefix = cmp.Or(cfg.MediaPrefix, config.DefaultMediaPrefix)
	if cfg.TTL = cfg.TTL.Truncate(time.Second); cfg.TTL <= 0 {
		cfg.TTL = config.DefaultUploadURLTTL
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return &Store{cfg: cfg, s3: api, ledger: ledger.New(api, ledger.Config{Clock: cfg.Clock}), presign: presigner}
}

// SessionKey is the key of the session document of id.
func SessionKey(prefix, id string) string { return prefix + Folder + id + "/" }

// FileKey is the key the file of session id is put at.
func FileKey(prefix, id, fileName string) string { return SessionKey(prefix, id) + fileName }

// Folder is where the sessions live, below the upload prefixes.
const Folder = upload.SessionFolder

// prefix is where the sessions of purpose live.
func (s *Store) prefix(purpose string) string {
	if purpose == session.PurposeMessage {
		return s.cfg.MediaPrefix
	}
	return s.cfg.Prefix
}

// document is the session as stored at SessionKey.
type document struct {
	ID            string    `json:"upload_id"`
	Purpose       string    `json:"purpose"`
	Key           string    `json:"key"` // where the file goes
	FileName      string    `json:"file_name"`
	Type          string    `json:"type"`
	Size          int64     `json:"size"`
	BusinessPhone string    `json:"business_phone"`
	SHA256        string    `json:"sha256,omitempty"` // base64, bound into the PUT
	CreatedAt     time.Time `json:"created_at"`
	ExpiresAt     time.Time `json:"expires_at"`
}

// maxDocumentBytes bounds what is read of a session document.
const maxDocumentBytes = 16 << 10

// CreateUpload presigns the PUT of the file and stores the session document:
// one S3 request (the presigning is local).
func (s *Store) CreateUpload(ctx context.Context, in session.NewUpload) (*session.Upload, error) {
	purpose := cmp.Or(in.Purpose, session.PurposeTemplate)
	id := newID(purpose)
	now := s.cfg.Clock().UTC().Truncate(time.Second)
	doc := document{
		ID: id, Purpose: purpose, Key: FileKey(s.prefix(purpose), id, in.FileName),
		FileName: in.FileName, Type: in.Type, Size: in.Size, BusinessPhone: in.BusinessPhone, SHA256: in.SHA256,
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.TTL),
	}
	// Every header given here is signed: S3 refuses a PUT with another
	// Content-Type, another size, other metadata, without If-None-Match, or
	// (when the caller gave the file's SHA-256) with other bytes.
	put := &s3.PutObjectInput{
		Bucket:        aws.String(s.cfg.Bucket),
		Key:           aws.String(doc.Key),
		ContentType:   aws.String(in.Type),
		ContentLength: aws.Int64(in.Size),
		Metadata:      map[string]string{upload.MetadataBusinessPhone: in.BusinessPhone},
		IfNoneMatch:   aws.String("*"),
	}
	if in.SHA256 != "" {
		put.ChecksumSHA256 = aws.String(in.SHA256)
	}
	req, err := s.presign.PresignPutObject(ctx, put, s3.WithPresignExpires(s.cfg.TTL))
	if err != nil {
		return nil, fmt.Errorf("presign the PUT of %s: %w", doc.Key, err)
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	// The key ends with "/": the upload function skips it as a folder
	// marker.
	if _, err := s.s3.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(s.cfg.Bucket),
		Key:           aws.String(SessionKey(s.prefix(purpose), id)),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String("application/json"),
		IfNoneMatch:   aws.String("*"),
	}); err != nil {
		return nil, fmt.Errorf("write session %s: %w", SessionKey(s.prefix(purpose), id), err)
	}
	headers := map[string]string{}
	for k, v := range req.SignedHeader {
		if !strings.EqualFold(k, "Host") {
			headers[http.CanonicalHeaderKey(k)] = strings.Join(v, ",")
		}
	}
	return &session.Upload{ID: id, URL: req.URL, Method: req.Method, Headers: headers, ExpiresAt: doc.ExpiresAt, Purpose: purpose}, nil
}

// Upload returns the status of session id in at most three S3 requests:
// the session document, the binding of the session to its first file, and
// that file's record (or, before any binding, HeadObject of the file). The
// first file decides the session, also once it is deleted or another file
// was put after it. A malformed id costs none.
func (s *Store) Upload(ctx context.Context, id string) (*session.UploadStatus, error) {
	if !validID(id) {
		return nil, fmt.Errorf("upload_id %q is not of the form this API hands out: %w", id, session.ErrUploadNotFound)
	}
	doc, err := s.readDocument(ctx, id)
	if err != nil {
		return nil, err
	}
	st := &session.UploadStatus{ID: id, Purpose: doc.Purpose, FileName: doc.FileName, Type: doc.Type, Size: doc.Size, BusinessPhone: doc.BusinessPhone}
	defer func() { st.UpdatedAt = st.UpdatedAt.UTC().Truncate(time.Second) }()

	first, boundAt, err := s.ledger.Bound(ctx, s.cfg.Bucket, doc.Key)
	if err != nil {
		return nil, err
	}
	if first == "" {
		// No file bound yet: the upload function has not seen one.
		head, err := s.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(doc.Key)})
		switch {
		case ledger.IsNotFound(err) && s.cfg.Clock().After(doc.ExpiresAt):
			st.Status, st.UpdatedAt = session.StatusExpired, doc.ExpiresAt
		case ledger.IsNotFound(err):
			st.Status, st.UpdatedAt = session.StatusAwaitingFile, doc.CreatedAt
		case err != nil:
			return nil, fmt.Errorf("head %s: %w", doc.Key, err)
		default:
			st.Status, st.UpdatedAt = session.StatusProcessing, aws.ToTime(head.LastModified)
		}
		return st, nil
	}
	st.Status, st.UpdatedAt = session.StatusProcessing, boundAt
	rec, err := s.ledger.Record(ctx, ledger.Object{Bucket: s.cfg.Bucket, Key: doc.Key, VersionID: first})
	switch {
	case err != nil:
		return nil, err
	case rec == nil:
	case rec.Status == ledger.Uploaded:
		st.Status, st.MediaID, st.UpdatedAt = session.StatusUploaded, rec.MediaID, rec.UpdatedAt
	case rec.Status == ledger.Rejected:
		st.Status, st.Error, st.UpdatedAt = session.StatusRejected, rec.Error, rec.UpdatedAt
	}
	return st, nil
}

// readDocument reads the session document of id.
func (s *Store) readDocument(ctx context.Context, id string) (*document, error) {
	key := SessionKey(s.prefix(purposeOf(id)), id)
	out, err := s.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key)})
	switch {
	case ledger.IsNotFound(err):
		return nil, fmt.Errorf("no session at %s: %w", key, session.ErrUploadNotFound)
	case err != nil:
		return nil, fmt.Errorf("read session %s: %w", key, err)
	}
	defer func() { _ = out.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(out.Body, maxDocumentBytes))
	if err != nil {
		return nil, fmt.Errorf("read session %s: %w", key, err)
	}
	var doc document
	if err := json.Unmarshal(raw, &doc); err != nil || doc.ID != id || doc.Key == "" {
		return nil, fmt.Errorf("%s is not a session document written by this function", key)
	}
	doc.Purpose = cmp.Or(doc.Purpose, session.PurposeTemplate) // sessions of earlier releases
	return &doc, nil
}

// idBytes is the randomness of an upload id: 128 bits.
const idBytes = 16

// messageMark starts the ids of message sessions, whose documents live
// under the media prefix: the status finds a session in one request.
const messageMark = "m"

// newID returns a fresh upload id: 32 lower-case hex digits, after "m" for
// a message session.
func newID(purpose string) string {
	var b [idBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	if purpose == session.PurposeMessage {
		return messageMark + hex.EncodeToString(b[:])
	}
	return hex.EncodeToString(b[:])
}

// purposeOf is the purpose of a session by its id.
func purposeOf(id string) string {
	if strings.HasPrefix(id, messageMark) {
		return session.PurposeMessage
	}
	return session.PurposeTemplate
}

// validID reports whether id is of the form newID returns.
func validID(id string) bool {
	id = strings.TrimPrefix(id, messageMark)
	if len(id) != 2*idBytes {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
