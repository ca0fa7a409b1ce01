package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3API is the part of the S3 client the ledger uses; *s3.Client satisfies
// it.
type S3API interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
	GetObjectTagging(ctx context.Context, in *s3.GetObjectTaggingInput, optFns ...func(*s3.Options)) (*s3.GetObjectTaggingOutput, error)
	PutObjectTagging(ctx context.Context, in *s3.PutObjectTaggingInput, optFns ...func(*s3.Options)) (*s3.PutObjectTaggingOutput, error)
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
}

// Defaults and bounds of Config.
const (
	DefaultLease = 30 * time.Second
	// MaxLease is the longest lease: a claim whose holder died is stale
	// within it plus StaleGrace, before Lambda's first retry about a minute
	// later.
	MaxLease = 60 * time.Second
	// StaleGrace is added to a claim's lease before others count it stale,
	// for the clock differences between Lambda instances and S3.
	StaleGrace = 5 * time.Second
)

// Config configures a Ledger. Zero fields take the defaults.
type Config struct {
	// Lease is how long a claim stays live without being renewed
	// (UPLOAD_CLAIM_LEASE); default DefaultLease, at most MaxLease.
	Lease time.Duration
	// Clock returns the current time; default time.Now.
	Clock func() time.Time
	// Logger receives the warnings of claims not renewed or taken over;
	// default: discarded.
	Logger *slog.Logger
}

// Ledger reads and writes the bookkeeping of object versions; see the
// package documentation. It is safe for concurrent use.
type Ledger struct {
	s3    S3API
	lease time.Duration
	now   func() time.Time
	log   *slog.Logger
}

// New returns a Ledger over api.
func New(api S3API, cfg Config) *Ledger {
	l := &Ledger{s3: api, lease: cfg.Lease, now: cfg.Clock, log: cfg.Logger}
	if l.lease <= 0 {
		l.lease = DefaultLease
	}
	l.lease = min(l.lease, MaxLease)
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	return l
}

// Status is a verdict.
type Status string

// The verdicts. (Earlier releases also recorded "superseded", which is not
// a verdict: such a record counts as none.)
const (
	Uploaded Status = "uploaded"
	Rejected Status = "rejected"
)

// Record is the verdict made for one object version, stored as JSON at
// RecordKey(Key, VersionID) in the object's bucket. The media id is kept
// whole here even when the tag can only hold its S3-safe form.
type Record struct {
	Status        Status    `json:"status"`
	Bucket        string    `json:"bucket"`
	Key           string    `json:"key"`
	VersionID     string    `json:"version_id"`
	Destination   string    `json:"destination,omitempty"` // template or message
	MediaID       string    `json:"media_id,omitempty"`
	Error         string    `json:"error,omitempty"` // why it was rejected
	BusinessPhone string    `json:"business_phone,omitempty"`
	Type          string    `json:"type,omitempty"`
	Size          int64     `json:"size,omitempty"`
	UpdatedAt     time.Time `json:"updated_at"`
}

func (r *Record) verdict() bool { return r.Status == Uploaded || r.Status == Rejected }

// same reports whether r and o are the same verdict for the same version.
func (r *Record) same(o Record) bool {
	return r.Status == o.Status && r.MediaID == o.MediaID && r.Error == o.Error && r.Key == o.Key && r.VersionID == o.VersionID
}

// maxRecordBytes bounds what is read of a record, a claim or a binding.
const maxRecordBytes = 64 << 10

// Record returns the verdict recorded for o, or nil when it has none.
func (l *Ledger) Record(ctx context.Context, o Object) (*Record, error) {
	rec, _, err := l.readRecord(ctx, o)
	if rec != nil && !rec.verdict() {
		rec = nil
	}
	return rec, err
}

// readRecord returns the record of o as stored, with its ETag.
func (l *Ledger) readRecord(ctx context.Context, o Object) (*Record, string, error) {
	rk := RecordKey(o.Key, o.VersionID)
	var rec Record
	etag, _, err := l.readJSON(ctx, o.Bucket, rk, &rec)
	switch {
	case IsNotFound(err):
		return nil, "", nil
	case err != nil:
		return nil, "", s3Err("read record "+rk, "s3:GetObject on "+RecordPrefix+"*", err)
	case rec.Status == "":
		return nil, "", fmt.Errorf("record %s is not a verdict written by this bundle: delete it to have the version sent", rk)
	}
	return &rec, etag, nil
}

// Decide records rec as the verdict of o, unless a verdict is recorded
// already: it returns the verdict that stands.
func (l *Ledger) Decide(ctx context.Context, o Object, rec Record) (Record, error) {
	return l.decide(ctx, o, rec)
}

// decide is Decide with options for the write of the record.
func (l *Ledger) decide(ctx context.Context, o Object, rec Record, optFns ...func(*s3.Options)) (Record, error) {
	rec.Bucket, rec.Key, rec.VersionID, rec.UpdatedAt = o.Bucket, o.Key, o.VersionID, l.now().UTC()
	rk := RecordKey(o.Key, o.VersionID)
	perm := "s3:PutObject on " + RecordPrefix + "*"
	_, err := l.put(ctx, o.Bucket, rk, rec, "", optFns...)
	if !IsPreconditionFailed(err) {
		if err != nil {
			return Record{}, s3Err("write record "+rk, perm, err)
		}
		return rec, nil
	}
	old, etag, err := l.readRecord(ctx, o)
	switch {
	case err != nil:
		return Record{}, err
	case old != nil && old.verdict():
		return *old, nil
	case old == nil: // deleted meanwhile
		return l.decide(ctx, o, rec, optFns...)
	}
	// A superseded mark of an earlier release: the verdict replaces it.
	if err := l.putJSON(ctx, o.Bucket, rk, rec, etag); err != nil {
		if IsPreconditionFailed(err) {
			return l.Decide(ctx, o, rec)
		}
		return Record{}, s3Err("write record "+rk, perm, err)
	}
	return rec, nil
}

// binding is the JSON body of a session binding.
type binding struct {
	Key       string `json:"key"`
	VersionID string `json:"version_id"`
}

// Bind binds the key of o (an upload session's file) to its first version
// and returns that version's id: o.VersionID when o is the first version to
// be bound, else the version bound before.
func (l *Ledger) Bind(ctx context.Context, o Object) (string, error) {
	bk := bindingKey(o.Key)
	err := l.putJSON(ctx, o.Bucket, bk, binding{Key: o.Key, VersionID: o.VersionID}, "")
	switch {
	case err == nil:
		return o.VersionID, nil
	case !IsPreconditionFailed(err):
		return "", s3Err("bind session file "+bk, "s3:PutObject on "+RecordPrefix+"*", err)
	}
	first, _, err := l.Bound(ctx, o.Bucket, o.Key)
	if err == nil && first == "" {
		return l.Bind(ctx, o) // deleted meanwhile
	}
	return first, err
}

// Bound returns the version the session file key is bound to ("" when
// none) and when it was bound.
func (l *Ledger) Bound(ctx context.Context, bucket, key string) (string, time.Time, error) {
	bk := bindingKey(key)
	var b binding
	_, at, err := l.readJSON(ctx, bucket, bk, &b)
	switch {
	case IsNotFound(err):
		return "", time.Time{}, nil
	case err != nil:
		return "", time.Time{}, s3Err("read session binding "+bk, "s3:GetObject on "+RecordPrefix+"*", err)
	case b.VersionID == "":
		return "", time.Time{}, fmt.Errorf("%s is not a session binding written by this bundle", bk)
	}
	return b.VersionID, at, nil
}

// putJSON writes v as JSON at key: created only when none is there
// (If-None-Match: *) when ifMatch is empty, else replacing the object whose
// ETag is ifMatch.
func (l *Ledger) putJSON(ctx context.Context, bucket, key string, v any, ifMatch string) error {
	_, err := l.put(ctx, bucket, key, v, ifMatch)
	return err
}

func (l *Ledger) put(ctx context.Context, bucket, key string, v any, ifMatch string, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	in := &s3.PutObjectInput{
		Bucket:        aws.String(bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String("application/json"),
	}
	if ifMatch == "" {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(ifMatch)
	}
	return l.s3.PutObject(ctx, in, optFns...)
}

// readJSON reads the JSON object at key into v and returns its ETag and
// LastModified. A body that is not JSON leaves v as it was.
func (l *Ledger) readJSON(ctx context.Context, bucket, key string, v any) (string, time.Time, error) {
	out, err := l.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return "", time.Time{}, err
	}
	defer func() { _ = out.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(out.Body, maxRecordBytes))
	if err != nil {
		return "", time.Time{}, err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		if !errors.As(err, &syn) && !errors.As(err, &typ) {
			return "", time.Time{}, err
		}
	}
	return aws.ToString(out.ETag), aws.ToTime(out.LastModified), nil
}
