package upload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/config"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

// S3API is the part of the S3 client the pipeline uses; *s3.Client
// satisfies it.
type S3API interface {
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
	GetObjectTagging(ctx context.Context, in *s3.GetObjectTaggingInput, optFns ...func(*s3.Options)) (*s3.GetObjectTaggingOutput, error)
	PutObjectTagging(ctx context.Context, in *s3.PutObjectTaggingInput, optFns ...func(*s3.Options)) (*s3.PutObjectTaggingOutput, error)
}

// Uploader sends one file to NXCloud's uploadTemplateFile and returns the
// media id; *nxcloud.Client satisfies it.
type Uploader interface {
	UploadTemplateFile(ctx context.Context, in nxcloud.UploadInput) (string, error)
}

// Defaults of Config.
const (
	DefaultLease  = 30 * time.Second
	DefaultMargin = 10 * time.Second
)

// Config configures a Handler. Zero fields take the defaults.
type Config struct {
	// Prefix is the key prefix served (UPLOAD_PREFIX); default templates/.
	Prefix string
	// DefaultBusinessPhone is the merchant phone of objects that name none
	// (NXCLOUD_BUSINESS_PHONE); may be empty.
	DefaultBusinessPhone string
	// MaxUploadBytes is the largest object sent (MAX_UPLOAD_BYTES).
	MaxUploadBytes int64
	// Lease is how long a claim stays live without being renewed
	// (UPLOAD_CLAIM_LEASE; default 30s, at most config.MaxClaimLease). The
	// holder renews it every third of it while it sends.
	Lease time.Duration
	// ClaimWait bounds how long a delivery that meets another holder's live
	// claim waits for that holder's verdict before it returns a transient
	// error; zero waits until the work deadline (the upload function: its
	// retry then comes after the holder's own deadline).
	ClaimWait time.Duration
	// Margin is kept free before the Lambda deadline: sending stops there,
	// and the record and the tags are written in it (at most a fifth of the
	// remaining time is used). Default 10s.
	Margin time.Duration
	// Clock returns the current time; default time.Now.
	Clock func() time.Time
	// Observe, when set, is called with the Result of every record Process
	// ran, after its log line (metrics hook in here). It must be quick and
	// safe for concurrent use.
	Observe func(context.Context, Result)
}

// ConfigFrom is the Config of the functions that upload (the upload
// function and the sweep): the prefix, default phone, size limit and claim
// lease of their configuration.
func ConfigFrom(c config.Config) Config {
	return Config{Prefix: c.UploadPrefix, DefaultBusinessPhone: c.BusinessPhone, MaxUploadBytes: c.MaxUploadBytes, Lease: c.ClaimLease}
}

// Handler processes S3 ObjectCreated records; see the package documentation.
type Handler struct {
	cfg Config
	s3  S3API
	up  Uploader
	log *slog.Logger
}

// NewHandler returns a Handler. A nil logger discards the log.
func NewHandler(cfg Config, s3 S3API, up Uploader, logger *slog.Logger) *Handler {
	if cfg.Prefix == "" {
		cfg.Prefix = config.DefaultUploadPrefix
	}
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = config.DefaultMaxUploadBytes
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Margin <= 0 {
		cfg.Margin = DefaultMargin
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{cfg: cfg, s3: s3, up: up, log: logger}
}

func (h *Handler) now() time.Time { return h.cfg.Clock() }

// Outcome is how one record ended. Uploaded, Rejected and Superseded are
// verdicts: they are recorded for the object version they were made for.
type Outcome string

// Outcomes of a record.
const (
	Uploaded   Outcome = "uploaded"
	Rejected   Outcome = "rejected"
	Superseded Outcome = "superseded"
	Skipped    Outcome = "skipped"
	Failed     Outcome = "failed"
)

// Result is what became of one record.
type Result struct {
	Outcome       Outcome
	Reason        string // why it was skipped, rejected or superseded
	Bucket        string
	Key           string
	VersionID     string
	BusinessPhone string
	Type          string
	Size          int64
	MediaID       string
	Duration      time.Duration
	Err           error // the transient failure, when Outcome is Failed
}

// BytesSent is the size of the file NXCloud received: r.Size for an
// upload, else 0.
func (r *Result) BytesSent() int64 {
	if r.Outcome == Uploaded {
		return r.Size
	}
	return 0
}

// ending is how a step ends a record early with an outcome that is not a
// failure: skipped, superseded or rejected.
type ending struct {
	outcome Outcome
	reason  string
}

func (e *ending) Error() string { return string(e.outcome) + ": " + e.reason }

func end(o Outcome, format string, a ...any) error {
	return &ending{outcome: o, reason: fmt.Sprintf(format, a...)}
}

// Handle processes every record of ev in order. Records that are not for
// this function, gone, superseded, already decided or permanently rejected
// end without error; if any record failed transiently, Handle returns their
// errors joined so that Lambda retries the event (records with a verdict are
// skipped by the retry). An event without records (such as the s3:TestEvent
// S3 sends when notifications are configured) is a no-op.
func (h *Handler) Handle(ctx context.Context, ev events.S3Event) error {
	if len(ev.Records) == 0 {
		h.log.InfoContext(ctx, "event without records ignored (s3:TestEvent or empty event)")
		return nil
	}
	var errs []error
	for i := range ev.Records {
		if r := h.Process(ctx, &ev.Records[i]); r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	return errors.Join(errs...)
}

// Process runs one record through the pipeline, logs its line and returns
// what became of it.
func (h *Handler) Process(ctx context.Context, rec *events.S3EventRecord) Result {
	start := h.now()
	r := Result{Bucket: rec.S3.Bucket.Name, Key: rec.S3.Object.Key, VersionID: rec.S3.Object.VersionID}
	err := h.run(ctx, rec, &r)
	var e *ending
	switch {
	case errors.As(err, &e):
		r.Outcome, r.Reason = e.outcome, e.reason
	case err != nil:
		r.Outcome, r.Err = Failed, fmt.Errorf("s3://%s/%s: %w", r.Bucket, r.Key, err)
	default:
		r.Outcome = Uploaded
	}
	r.Duration = h.now().Sub(start)
	h.logResult(ctx, &r)
	if h.cfg.Observe != nil {
		h.cfg.Observe(ctx, r)
	}
	return r
}

// run is the pipeline of one record: decode, pin, rules, claim, send,
// record, tag, release.
func (h *Handler) run(lambdaCtx context.Context, rec *events.S3EventRecord, r *Result) error {
	key, err := h.decode(rec)
	if err != nil {
		return err
	}
	r.Key = key
	b := h.budget(lambdaCtx)
	defer b.cancel()

	// The stream of the version the event names is opened at once: opening
	// it sends nothing to NXCloud, and it is ready when the claim is. A
	// stream that is not sent is closed unread.
	var s *stream
	if id := rec.S3.Object.VersionID; id != "" {
		s = h.openStream(b.work, &version{bucket: r.Bucket, key: key, id: id})
	}
	defer func() {
		if s != nil {
			s.discard()
		}
	}()

	v, err := h.pin(b.work, r.Bucket, key, rec.S3.Object.VersionID)
	if err != nil {
		return err
	}
	r.VersionID, r.Size = v.id, v.size
	if v.record != nil {
		return h.confirm(b.work, v, v.record, r)
	}

	if err := h.rules(v); err != nil {
		r.BusinessPhone, r.Type = v.phone, v.typ
		return h.conclude(b, v, err, r)
	}
	r.BusinessPhone, r.Type = v.phone, v.typ

	if s == nil {
		s = h.openStream(b.work, v)
	}
	c, prior, err := h.claim(b.work, v)
	if err != nil {
		return err
	}
	if prior != nil {
		return h.confirm(b.work, v, prior, r)
	}

	sending := s
	s = nil
	id, err := h.send(b.work, v, c, sending)
	if err != nil && !isRejection(err) {
		h.release(b.post, c)
		return err
	}
	// A verdict: the claim is kept, the record decides from now on.
	r.MediaID = id
	return h.conclude(b, v, err, r)
}

// budget holds the contexts of one record: work ends Margin before the
// Lambda deadline (sending stops there), post ends shortly before the
// deadline itself and is where the verdict is recorded and tagged.
type budget struct {
	work   context.Context
	post   context.Context
	cancel func()
}

func (h *Handler) budget(ctx context.Context) budget {
	dl, ok := ctx.Deadline()
	if !ok {
		work, cw := context.WithCancel(ctx)
		post, cp := context.WithTimeout(context.WithoutCancel(ctx), h.cfg.Margin)
		return budget{work: work, post: post, cancel: func() { cw(); cp() }}
	}
	margin := max(min(h.cfg.Margin, time.Until(dl)/5), 0)
	work, cw := context.WithDeadline(ctx, dl.Add(-margin))
	post, cp := context.WithDeadline(context.WithoutCancel(ctx), dl.Add(-margin/5))
	return budget{work: work, post: post, cancel: func() { cw(); cp() }}
}

func (h *Handler) logResult(ctx context.Context, r *Result) {
	var rate int64
	if r.Outcome == Uploaded && r.Duration > 0 {
		rate = int64(float64(r.Size) / r.Duration.Seconds())
	}
	attrs := []slog.Attr{
		slog.String("outcome", string(r.Outcome)),
		slog.String("bucket", r.Bucket),
		slog.String("key", r.Key),
		slog.String("version", r.VersionID),
		slog.String("phone", r.BusinessPhone),
		slog.String("type", r.Type),
		slog.Int64("size", r.Size),
		slog.String("media_id", r.MediaID),
		slog.String("reason", r.Reason),
		slog.Int64("duration_ms", r.Duration.Milliseconds()),
		slog.Int64("bytes_per_sec", rate),
	}
	level := slog.LevelInfo
	if r.Err != nil {
		level = slog.LevelError
		attrs = append(attrs, slog.String("error", r.Err.Error()))
	}
	h.log.LogAttrs(ctx, level, "upload template file", attrs...)
}
