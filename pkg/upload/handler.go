package upload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/config"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

// S3API is the part of the S3 client the pipeline uses; *s3.Client
// satisfies it.
type S3API interface {
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	GetObjectTagging(ctx context.Context, in *s3.GetObjectTaggingInput, optFns ...func(*s3.Options)) (*s3.GetObjectTaggingOutput, error)
	PutObjectTagging(ctx context.Context, in *s3.PutObjectTaggingInput, optFns ...func(*s3.Options)) (*s3.PutObjectTaggingOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
}

// Uploader sends one file to NXCloud's uploadTemplateFile and returns the
// media id; *nxcloud.Client satisfies it.
type Uploader interface {
	UploadTemplateFile(ctx context.Context, in nxcloud.UploadTemplateFileInput) (string, error)
}

// Defaults of Config.
const (
	DefaultClaimPrefix  = "nxcloud-claims/"
	DefaultSafetyMargin = 3 * time.Second
	DefaultClaimTTL     = 15 * time.Minute
	DefaultClaimWait    = 30 * time.Second
	DefaultTagAttempts  = 4
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
	// ClaimPrefix is where claim objects live; it must be outside Prefix.
	// Default nxcloud-claims/.
	ClaimPrefix string
	// Clock returns the current time; default time.Now.
	Clock func() time.Time
	// SafetyMargin is kept free before the Lambda deadline so that an upload
	// that cannot finish is aborted, and its claim released, before Lambda
	// stops the process. At most a fifth of the remaining time is used.
	SafetyMargin time.Duration
	// ClaimTTL is the claim lifetime when the context has no deadline (the
	// Lambda deadline is used otherwise); default 15m, Lambda's longest
	// timeout.
	ClaimTTL time.Duration
	// ClaimWait bounds the wait for a live claim held by another invocation
	// before returning a transient error; default 30s.
	ClaimWait time.Duration
	// TagAttempts is how many times tagging is tried after NXCloud answered a
	// media id; default 4.
	TagAttempts int
}

// Handler processes S3 ObjectCreated events; see the package documentation.
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
	if cfg.ClaimPrefix == "" {
		cfg.ClaimPrefix = DefaultClaimPrefix
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.SafetyMargin <= 0 {
		cfg.SafetyMargin = DefaultSafetyMargin
	}
	if cfg.ClaimTTL <= 0 {
		cfg.ClaimTTL = DefaultClaimTTL
	}
	if cfg.ClaimWait <= 0 {
		cfg.ClaimWait = DefaultClaimWait
	}
	if cfg.TagAttempts <= 0 {
		cfg.TagAttempts = DefaultTagAttempts
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{cfg: cfg, s3: s3, up: up, log: logger}
}

func (h *Handler) now() time.Time { return h.cfg.Clock() }

// Outcomes of a record, as logged.
const (
	OutcomeUploaded   = "uploaded"
	OutcomeSkipped    = "skipped"
	OutcomeSuperseded = "superseded"
	OutcomeRejected   = "rejected"
	OutcomeFailed     = "failed"
)

// Handle processes every record of ev in order. Records that are not for
// this function, gone, superseded, already uploaded or permanently rejected
// end without error; if any record failed transiently, Handle returns their
// errors joined so that Lambda retries the event (records that succeeded
// are tagged and skipped by the retry). An event without records (such as
// the s3:TestEvent S3 sends when notifications are configured) is a no-op.
func (h *Handler) Handle(ctx context.Context, ev events.S3Event) error {
	if len(ev.Records) == 0 {
		h.log.InfoContext(ctx, "event without records ignored (s3:TestEvent or empty event)")
		return nil
	}
	var errs []error
	for i := range ev.Records {
		if err := h.handleRecord(ctx, &ev.Records[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// result is what one record's log line says.
type result struct {
	bucket, key, version string
	phone, typ           string
	size                 int64
	mediaID, reason      string
	outcome              string
	start                time.Time
}

func (r *result) end(outcome, reason string) error {
	r.outcome, r.reason = outcome, reason
	return nil
}

// pinned is the object version a record is about.
type pinned struct {
	bucket, key   string
	version, etag string
	head          *s3.HeadObjectOutput
}

func (h *Handler) handleRecord(ctx context.Context, rec *events.S3EventRecord) error {
	res := &result{
		bucket:  rec.S3.Bucket.Name,
		key:     rec.S3.Object.Key,
		version: rec.S3.Object.VersionID,
		start:   h.now(),
	}
	err := h.process(ctx, rec, res)
	if err != nil {
		res.outcome = OutcomeFailed
		err = fmt.Errorf("s3://%s/%s: %w", res.bucket, res.key, err)
	}
	h.logResult(ctx, res, err)
	return err
}

func (h *Handler) logResult(ctx context.Context, r *result, err error) {
	d := h.now().Sub(r.start)
	var rate int64
	if r.outcome == OutcomeUploaded && d > 0 {
		rate = int64(float64(r.size) / d.Seconds())
	}
	attrs := []slog.Attr{
		slog.String("outcome", r.outcome),
		slog.String("bucket", r.bucket),
		slog.String("key", r.key),
		slog.String("version", r.version),
		slog.String("phone", r.phone),
		slog.String("type", r.typ),
		slog.Int64("size", r.size),
		slog.String("media_id", r.mediaID),
		slog.String("reason", r.reason),
		slog.Int64("duration_ms", d.Milliseconds()),
		slog.Int64("bytes_per_sec", rate),
	}
	level := slog.LevelInfo
	if err != nil {
		level = slog.LevelError
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	h.log.LogAttrs(ctx, level, "upload template file", attrs...)
}

// workContext bounds the work on a record to the Lambda deadline minus the
// safety margin, and returns the deadline a claim expires at.
func (h *Handler) workContext(ctx context.Context) (context.Context, context.CancelFunc, time.Time) {
	dl, ok := ctx.Deadline()
	if !ok {
		c, cancel := context.WithCancel(ctx)
		return c, cancel, h.now().Add(h.cfg.ClaimTTL)
	}
	margin := min(h.cfg.SafetyMargin, time.Until(dl)/5)
	c, cancel := context.WithDeadline(ctx, dl.Add(-max(margin, 0)))
	return c, cancel, dl
}

func (h *Handler) process(lambdaCtx context.Context, rec *events.S3EventRecord, res *result) error {
	obj := rec.S3.Object
	key, err := DecodeKey(obj.Key)
	if err != nil {
		return res.end(OutcomeSkipped, tagSafe(err.Error()))
	}
	res.key = key
	if name := strings.TrimPrefix(rec.EventName, "s3:"); name != "" && !strings.HasPrefix(name, "ObjectCreated:") {
		return res.end(OutcomeSkipped, "event "+rec.EventName+" is not ObjectCreated")
	}
	switch {
	case res.bucket == "":
		return res.end(OutcomeSkipped, "the record names no bucket")
	case !strings.HasPrefix(key, h.cfg.Prefix) || strings.HasPrefix(key, h.cfg.ClaimPrefix):
		return res.end(OutcomeSkipped, "key outside prefix "+h.cfg.Prefix)
	case strings.HasSuffix(key, "/"):
		return res.end(OutcomeSkipped, "folder marker")
	}

	ctx, cancel, expires := h.workContext(lambdaCtx)
	defer cancel()

	// Pin the version the event names; an overwritten object is left to
	// its own event.
	p, outcome, reason, err := h.pin(ctx, res.bucket, key, obj.VersionID, obj.ETag)
	if err != nil || outcome != "" {
		return orEnd(res, outcome, reason, err)
	}
	res.version = p.version
	res.size = aws.ToInt64(p.head.ContentLength)
	if res.size == 0 {
		return res.end(OutcomeSkipped, "zero-byte object")
	}

	tags, err := h.tags(ctx, p)
	if err != nil {
		if isNotFound(err) {
			return res.end(OutcomeSkipped, "object no longer exists")
		}
		return err
	}
	if why, id, ok := verdict(tags); ok {
		res.mediaID = id
		return res.end(OutcomeSkipped, why)
	}

	// Permanent problems are found before any byte is sent.
	phone, why := phoneFor(p.head.Metadata, key, h.cfg.Prefix, h.cfg.DefaultBusinessPhone)
	res.phone = phone
	if why != "" {
		return h.reject(lambdaCtx, res, p, why)
	}
	typ, why := typeFor(aws.ToString(p.head.ContentType), key)
	res.typ = typ
	if why != "" {
		return h.reject(lambdaCtx, res, p, why)
	}
	if res.size > h.cfg.MaxUploadBytes {
		return h.reject(lambdaCtx, res, p, fmt.Sprintf("size %d bytes exceeds MAX_UPLOAD_BYTES %d", res.size, h.cfg.MaxUploadBytes))
	}

	got, err := h.acquire(ctx, p, expires)
	switch {
	case err != nil:
		return err
	case got.done:
		res.mediaID = got.doneID
		return res.end(OutcomeSkipped, got.doneWhy)
	case got.recovered:
		res.mediaID = got.claim.doc.MediaID
		if err := h.tagUploaded(lambdaCtx, p, got.claim.doc.MediaID); err != nil {
			return fmt.Errorf("tag the media id %s an earlier attempt recorded: %w", got.claim.doc.MediaID, err)
		}
		h.finish(lambdaCtx, p.bucket, got.claim)
		return res.end(OutcomeUploaded, "tagged with the media id an earlier attempt recorded in its claim")
	}
	c := got.claim

	// A holder that finished between our first look and our claim tagged
	// the object before deleting its claim.
	tags, err = h.tags(ctx, p)
	if err != nil {
		h.release(lambdaCtx, p.bucket, c)
		if isNotFound(err) {
			return res.end(OutcomeSkipped, "object no longer exists")
		}
		return err
	}
	if why, id, ok := verdict(tags); ok {
		h.release(lambdaCtx, p.bucket, c)
		res.mediaID = id
		return res.end(OutcomeSkipped, why)
	}

	id, outcome, reason, err := h.send(ctx, res, p)
	if err != nil || outcome != "" {
		if outcome == OutcomeRejected {
			// Tag first, so a duplicate waiting on our claim finds the
			// verdict; then release.
			err = h.reject(lambdaCtx, res, p, reason)
		} else {
			err = orEnd(res, outcome, reason, err)
		}
		h.release(lambdaCtx, p.bucket, c)
		return err
	}
	res.mediaID = id

	if err := h.tagUploaded(lambdaCtx, p, id); err != nil {
		// NXCloud has the file: keep the claim, with the id, so a retry tags
		// instead of uploading again.
		if rerr := h.recordMediaID(lambdaCtx, p.bucket, c, id); rerr != nil {
			return fmt.Errorf("uploaded as media id %s but tagging failed: %w; recording the id in the claim failed too: %w", id, err, rerr)
		}
		return fmt.Errorf("uploaded as media id %s but tagging failed (the id is kept in claim %s for the retry): %w", id, c.key, err)
	}
	h.finish(lambdaCtx, p.bucket, c)
	return res.end(OutcomeUploaded, "")
}

// verdict reports the outcome an earlier delivery recorded on the object's
// tags: uploaded (with its media id) or rejected. Either makes a duplicate
// delivery a no-op: a rejection is permanent, and an upload happened once.
func verdict(tags []types.Tag) (why, mediaID string, ok bool) {
	switch st, _ := tagValue(tags, TagStatus); st {
	case StatusDone:
		id, _ := tagValue(tags, TagMediaID)
		return "already uploaded", id, true
	case StatusError:
		return "already rejected", "", true
	}
	return "", "", false
}

// orEnd ends the record with outcome, or returns err.
func orEnd(res *result, outcome, reason string, err error) error {
	if err != nil {
		return err
	}
	return res.end(outcome, reason)
}

// pin finds the version to send: the current object, on condition of the
// event's ETag; a different current version means the event is superseded.
func (h *Handler) pin(ctx context.Context, bucket, key, version, etag string) (p *pinned, outcome, reason string, err error) {
	in := &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if etag != "" {
		in.IfMatch = aws.String(quoteETag(etag))
	}
	head, err := h.s3.HeadObject(ctx, in)
	switch {
	case err != nil && isNotFound(err):
		return nil, OutcomeSkipped, "object no longer exists", nil
	case err != nil && isPreconditionFailed(err):
		return nil, OutcomeSuperseded, "overwritten since the event: ETag changed", nil
	case err != nil:
		return nil, "", "", s3Error("head object", "s3:GetObject", err)
	}
	current := aws.ToString(head.VersionId)
	if version != "" && current != "" && current != version {
		return nil, OutcomeSuperseded, "overwritten since the event: current version is " + current, nil
	}
	if version == "" {
		version = current
	}
	if etag == "" {
		etag = aws.ToString(head.ETag)
	}
	return &pinned{bucket: bucket, key: key, version: version, etag: normalizeETag(etag), head: head}, "", "", nil
}

// tags reads the tags of the pinned version.
func (h *Handler) tags(ctx context.Context, p *pinned) ([]types.Tag, error) {
	in := &s3.GetObjectTaggingInput{Bucket: aws.String(p.bucket), Key: aws.String(p.key)}
	if p.version != "" {
		in.VersionId = aws.String(p.version)
	}
	out, err := h.s3.GetObjectTagging(ctx, in)
	if err != nil {
		return nil, s3Error("get object tagging", "s3:GetObjectTagging and s3:GetObjectVersionTagging", err)
	}
	return out.TagSet, nil
}

// putTags merges ours into the version's current tags and writes them.
func (h *Handler) putTags(ctx context.Context, p *pinned, ours ...types.Tag) error {
	existing, err := h.tags(ctx, p)
	if err != nil {
		return err
	}
	merged, dropped := mergeTags(existing, ours...)
	if len(dropped) > 0 {
		h.log.WarnContext(ctx, "object has too many tags: dropped some to record the upload status",
			"bucket", p.bucket, "key", p.key, "dropped", dropped)
	}
	in := &s3.PutObjectTaggingInput{
		Bucket:  aws.String(p.bucket),
		Key:     aws.String(p.key),
		Tagging: &types.Tagging{TagSet: merged},
	}
	if p.version != "" {
		in.VersionId = aws.String(p.version)
	}
	if _, err := h.s3.PutObjectTagging(ctx, in); err != nil {
		return s3Error("put object tagging", "s3:PutObjectTagging and s3:PutObjectVersionTagging", err)
	}
	return nil
}

// tagUploaded records the media id, trying a few times.
func (h *Handler) tagUploaded(ctx context.Context, p *pinned, mediaID string) error {
	var err error
	delay := 100 * time.Millisecond
	for i := 0; i < h.cfg.TagAttempts; i++ {
		if i > 0 {
			if serr := sleep(ctx, delay); serr != nil {
				break
			}
			delay *= 2
		}
		if err = h.putTags(ctx, p, tag(TagMediaID, mediaID), tag(TagStatus, StatusDone)); err == nil {
			return nil
		}
	}
	return err
}

// reject tags a permanent rejection. The record then ends without error: a
// retry could not do better.
func (h *Handler) reject(ctx context.Context, res *result, p *pinned, reason string) error {
	reason = tagSafe(reason)
	if err := h.putTags(ctx, p, tag(TagStatus, StatusError), tag(TagError, reason)); err != nil {
		return fmt.Errorf("tag rejection %q: %w", reason, err)
	}
	return res.end(OutcomeRejected, reason)
}

// finish deletes our claim after the object was tagged.
func (h *Handler) finish(ctx context.Context, bucket string, c *claim) {
	ctx, cancel := cleanupContext(ctx)
	defer cancel()
	if err := h.deleteClaim(ctx, bucket, c); err != nil {
		h.log.WarnContext(ctx, "claim not deleted after the upload: it expires at its deadline",
			"bucket", bucket, "claim", c.key, "error", err)
	}
}

// send streams the pinned version to NXCloud. It returns the media id, or
// an outcome (superseded, skipped, rejected) with its reason, or a transient
// error.
func (h *Handler) send(ctx context.Context, res *result, p *pinned) (id, outcome, reason string, err error) {
	open := func(ctx context.Context) (*s3.GetObjectOutput, error) {
		in := &s3.GetObjectInput{Bucket: aws.String(p.bucket), Key: aws.String(p.key)}
		if p.version != "" {
			in.VersionId = aws.String(p.version)
		}
		if p.etag != "" {
			in.IfMatch = aws.String(quoteETag(p.etag))
		}
		return h.s3.GetObject(ctx, in)
	}
	obj, err := open(ctx)
	switch {
	case err != nil && isNotFound(err):
		return "", OutcomeSkipped, "object no longer exists", nil
	case err != nil && isPreconditionFailed(err):
		return "", OutcomeSuperseded, "overwritten since the event: ETag changed", nil
	case err != nil:
		return "", "", "", s3Error("get object", "s3:GetObject and s3:GetObjectVersion", err)
	}
	defer obj.Body.Close()
	size := aws.ToInt64(obj.ContentLength)
	if size != res.size {
		return "", OutcomeSuperseded, fmt.Sprintf("object changed since the event: %d bytes instead of %d", size, res.size), nil
	}

	id, err = h.up.UploadTemplateFile(ctx, nxcloud.UploadTemplateFileInput{
		BusinessPhone: res.phone,
		Type:          res.typ,
		FileName:      path.Base(p.key),
		Size:          size,
		Body:          obj.Body,
		GetBody: func(ctx context.Context) (io.ReadCloser, error) {
			o, err := open(ctx)
			if err != nil {
				return nil, err
			}
			return o.Body, nil
		},
	})
	if err == nil {
		return id, "", "", nil
	}
	if apiErr, ok := nxcloud.AsAPIError(err); ok && apiErr.IsPermanent() {
		return "", OutcomeRejected, fmt.Sprintf("nxcloud code %d: %s", apiErr.Code, apiErr.Message), nil
	}
	if errors.Is(err, nxcloud.ErrInvalidInput) {
		return "", OutcomeRejected, err.Error(), nil
	}
	return "", "", "", err
}
