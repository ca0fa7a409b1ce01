package sessions

import (
	"bytes"
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
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/mediaapi"
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
	// Prefix is the upload function's trigger prefix (UPLOAD_PREFIX);
	// sessions live under Prefix + "uploads/". Default templates/.
	Prefix string
	// TTL is the lifetime of an upload URL (UPLOAD_URL_TTL), whole seconds;
	// default 15m.
	TTL time.Duration
	// Clock returns the current time; default time.Now.
	Clock func() time.Time
}

// Store keeps upload sessions in S3; it implements mediaapi.UploadService.
type Store struct {
	cfg     Config
	s3      S3API
	ledger  *ledger.Ledger
	presign Presigner
}

var _ mediaapi.UploadService = (*Store)(nil)

// NewStore returns a Store over api and presigner (s3.NewPresignClient of
// the same client in the function).
func NewStore(cfg Config, api S3API, presigner Presigner) *Store {
	if cfg.Prefix == "" {
		cfg.Prefix = config.DefaultUploadPrefix
	}
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

// Folder is where the sessions live, below the upload prefix.
const Folder = "uploads/"

// document is the session as stored at SessionKey.
type document struct {
	ID            string    `json:"upload_id"`
	Key           string    `json:"key"` // where the file goes
	FileName      string    `json:"file_name"`
	Type          string    `json:"type"`
	Size          int64     `json:"size"`
	BusinessPhone string    `json:"business_phone"`
	CreatedAt     time.Time `json:"created_at"`
	ExpiresAt     time.Time `json:"expires_at"`
}

// maxDocumentBytes bounds what is read of a session document.
const maxDocumentBytes = 16 << 10

// CreateUpload presigns the PUT of the file and stores the session document:
// one S3 request (the presigning is local).
func (s *Store) CreateUpload(ctx context.Context, in mediaapi.NewUpload) (*mediaapi.Upload, error) {
	id := newID()
	now := s.cfg.Clock().UTC().Truncate(time.Second)
	doc := document{
		ID: id, Key: FileKey(s.cfg.Prefix, id, in.FileName),
		FileName: in.FileName, Type: in.Type, Size: in.Size, BusinessPhone: in.BusinessPhone,
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.TTL),
	}
	// Every header given here is signed: S3 refuses a PUT with another
	// Content-Type, another size, other metadata or without If-None-Match,
	// and the file can be put once.
	req, err := s.presign.PresignPutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(s.cfg.Bucket),
		Key:           aws.String(doc.Key),
		ContentType:   aws.String(in.Type),
		ContentLength: aws.Int64(in.Size),
		Metadata:      map[string]string{upload.MetadataBusinessPhone: in.BusinessPhone},
		IfNoneMatch:   aws.String("*"),
	}, s3.WithPresignExpires(s.cfg.TTL))
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
		Key:           aws.String(SessionKey(s.cfg.Prefix, id)),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String("application/json"),
		IfNoneMatch:   aws.String("*"),
	}); err != nil {
		return nil, fmt.Errorf("write session %s: %w", SessionKey(s.cfg.Prefix, id), err)
	}
	headers := map[string]string{}
	for k, v := range req.SignedHeader {
		if !strings.EqualFold(k, "Host") {
			headers[http.CanonicalHeaderKey(k)] = strings.Join(v, ",")
		}
	}
	return &mediaapi.Upload{ID: id, URL: req.URL, Method: req.Method, Headers: headers, ExpiresAt: doc.ExpiresAt}, nil
}

// Upload returns the status of session id in at most three S3 requests: the
// session document, HeadObject of the file, the upload function's record of
// the file's version. A malformed id costs none.
func (s *Store) Upload(ctx context.Context, id string) (*mediaapi.UploadStatus, error) {
	if !validID(id) {
		return nil, fmt.Errorf("upload_id %q is not of the form this API hands out: %w", id, mediaapi.ErrUploadNotFound)
	}
	doc, err := s.readDocument(ctx, id)
	if err != nil {
		return nil, err
	}
	st := &mediaapi.UploadStatus{ID: id, FileName: doc.FileName, Type: doc.Type, Size: doc.Size, BusinessPhone: doc.BusinessPhone}

	head, err := s.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(doc.Key)})
	switch {
	case ledger.IsNotFound(err) && s.cfg.Clock().After(doc.ExpiresAt):
		st.Status, st.UpdatedAt = mediaapi.StatusExpired, doc.ExpiresAt
		return st, nil
	case ledger.IsNotFound(err):
		st.Status, st.UpdatedAt = mediaapi.StatusAwaitingFile, doc.CreatedAt
		return st, nil
	case err != nil:
		return nil, fmt.Errorf("head %s: %w", doc.Key, err)
	}
	st.Status, st.UpdatedAt = mediaapi.StatusProcessing, aws.ToTime(head.LastModified).UTC()
	version := aws.ToString(head.VersionId)
	if version == "" || version == "null" {
		return st, nil // no versions, no verdict: the upload function refuses such a bucket
	}
	rec, err := s.ledger.Record(ctx, ledger.Object{Bucket: s.cfg.Bucket, Key: doc.Key, VersionID: version})
	switch {
	case err != nil:
		return nil, err
	case rec == nil:
		return st, nil
	case rec.Status == ledger.Uploaded:
		st.Status, st.MediaID, st.UpdatedAt = mediaapi.StatusUploaded, rec.MediaID, rec.UpdatedAt.UTC()
	case rec.Status == ledger.Rejected:
		st.Status, st.Error, st.UpdatedAt = mediaapi.StatusRejected, rec.Error, rec.UpdatedAt.UTC()
	}
	// A superseded version (another one became current since the HEAD) is
	// still processing: the current version has its own verdict to come.
	return st, nil
}

// readDocument reads the session document of id.
func (s *Store) readDocument(ctx context.Context, id string) (*document, error) {
	key := SessionKey(s.cfg.Prefix, id)
	out, err := s.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key)})
	switch {
	case ledger.IsNotFound(err):
		return nil, fmt.Errorf("no session at %s: %w", key, mediaapi.ErrUploadNotFound)
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
	return &doc, nil
}

// idBytes is the randomness of an upload id: 128 bits.
const idBytes = 16

// newID returns a fresh upload id: 32 lower-case hex digits.
func newID() string {
	var b [idBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// validID reports whether id is of the form newID returns.
func validID(id string) bool {
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
