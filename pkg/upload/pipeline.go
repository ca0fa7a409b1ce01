package upload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/app"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/config"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/ledger"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

// S3API is the part of the S3 client the pipeline uses; *s3.Client
// satisfies it.
type S3API interface {
	ledger.S3API
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
}

// Object is one object version, the pipeline's unit of work.
type Object = ledger.Object

// Destination is where the files under one prefix go.
type Destination struct {
	// Name is "template" or "message": logged and recorded.
	Name string
	// Prefix is the key prefix whose files go here.
	Prefix string
	// Types decides a file's NXCloud type and the largest size of its kind.
	Types nxcloud.FileTypes
	// Send uploads one file and returns its media id:
	// (*nxcloud.Client).UploadTemplateFile or UploadMedia.
	Send func(ctx context.Context, in nxcloud.UploadInput) (string, error)
}

// The destinations' names.
const (
	TemplateDestination = "template"
	MessageDestination  = "message"
)

// Template is the destination of template files: uploadTemplateFile.
func Template(prefix string, nx *nxcloud.Client) Destination {
	return Destination{Name: TemplateDestination, Prefix: prefix, Types: nxcloud.TemplateFileTypes, Send: nx.UploadTemplateFile}
}

// Message is the destination of message media: uploadMedia.
func Message(prefix string, nx *nxcloud.Client) Destination {
	return Destination{Name: MessageDestination, Prefix: prefix, Types: nxcloud.MessageMediaTypes, Send: nx.UploadMedia}
}

// Defaults of Config.
const (
	DefaultMargin = 10 * time.Second
)

// Config configures a Pipeline. Zero fields take the defaults.
type Config struct {
	// DefaultBusinessPhone is the merchant phone of objects that name none
	// (NXCLOUD_BUSINESS_PHONE); may be empty.
	DefaultBusinessPhone string
	// MaxUploadBytes is the largest object sent (MAX_UPLOAD_BYTES).
	MaxUploadBytes int64
	// Lease is the claims' lease (UPLOAD_CLAIM_LEASE).
	Lease time.Duration
	// ClaimWait bounds how long a delivery that meets another holder's live
	// claim waits for that holder's verdict before it returns a transient
	// error; zero waits until the work deadline.
	ClaimWait time.Duration
	// Margin is kept free before the Lambda deadline: sending stops there,
	// and the verdict is recorded and tagged in it (at most a fifth of the
	// remaining time is used). Default 10s.
	Margin time.Duration
	// Clock returns the current time; default time.Now.
	Clock func() time.Time
	// Observe, when set, is called with the Result of every object Upload
	// ran, after its log line (metrics hook in here). It must be quick and
	// safe for concurrent use.
	Observe func(context.Context, Result)
	// Logger receives one line per object; default: discarded.
	Logger *slog.Logger
}

// ConfigFrom is the Config of the functions that upload (the upload
// functions and the sweep): the configuration's default phone, size limit
// and claim lease, the function's logger, and every Result recorded as a
// metric.
func ConfigFrom(a *app.App) Config {
	c := a.Config
	return Config{
		DefaultBusinessPhone: c.BusinessPhone, MaxUploadBytes: c.MaxUploadBytes, Lease: c.ClaimLease, Logger: a.Logger,
		Observe: func(ctx context.Context, r Result) { a.Metrics.Upload(ctx, string(r.Outcome), r.BytesSent()) },
	}
}

// S3Client is the S3 client of a function's main: from the function's AWS
// configuration, path-style when AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL
// points at a local S3 endpoint.
func S3Client(awsCfg aws.Config) *s3.Client {
	return s3.NewFromConfig(awsCfg, S3Options(app.LocalEndpoint(os.Getenv, "AWS_ENDPOINT_URL_S3")))
}

// Pipeline sends object versions to their destination; see the package
// documentation. It is safe for concurrent use.
type Pipeline struct {
	cfg    Config
	s3     S3API
	ledger *ledger.Ledger
	dests  []Destination
	log    *slog.Logger
}

// New returns a Pipeline sending the files under each destination's prefix
// there.
func New(cfg Config, api S3API, dests ...Destination) *Pipeline {
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = config.DefaultMaxUploadBytes
	}
	if cfg.Margin <= 0 {
		cfg.Margin = DefaultMargin
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Pipeline{
		cfg: cfg, s3: api, dests: dests, log: cfg.Logger,
		ledger: ledger.New(api, ledger.Config{Lease: cfg.Lease, Clock: cfg.Clock, Logger: cfg.Logger}),
	}
}

// Ledger is the ledger of the pipeline's versions.
func (p *Pipeline) Ledger() *ledger.Ledger { return p.ledger }

// Destinations are the pipeline's destinations.
func (p *Pipeline) Destinations() []Destination { return p.dests }

// Outcome is how the upload of one object version ended.
type Outcome string

// Outcomes. Uploaded and Rejected are verdicts, recorded for the version.
const (
	Uploaded   Outcome = "uploaded"
	Rejected   Outcome = "rejected"
	Superseded Outcome = "superseded" // the version was not current: noted on it, not a verdict
	Skipped    Outcome = "skipped"
	Failed     Outcome = "failed"
)

// Result is what became of one object version.
type Result struct {
	Outcome       Outcome
	Reason        string // why it was skipped, rejected or superseded
	Destination   string
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

// ending is how a step ends an upload early with an outcome that is not a
// failure: skipped, superseded or rejected.
type ending struct {
	outcome Outcome
	reason  string
}

func (e *ending) Error() string { return string(e.outcome) + ": " + e.reason }

func end(o Outcome, format string, a ...any) error {
	return &ending{outcome: o, reason: fmt.Sprintf(format, a...)}
}

// Upload sends one object version (the current version when
// obj.VersionID is empty) to its prefix's destination, records the verdict
// and tags the version, logs one line and returns what became of it.
func (p *Pipeline) Upload(ctx context.Context, obj Object) Result {
	start := p.cfg.Clock()
	r := Result{Bucket: obj.Bucket, Key: obj.Key, VersionID: obj.VersionID}
	err := p.run(ctx, obj, &r)
	var e *ending
	switch {
	case errors.As(err, &e):
		r.Outcome, r.Reason = e.outcome, e.reason
	case err != nil:
		r.Outcome, r.Err = Failed, fmt.Errorf("s3://%s/%s: %w", r.Bucket, r.Key, err)
	default:
		r.Outcome = Uploaded
	}
	r.Duration = p.cfg.Clock().Sub(start)
	p.logResult(ctx, &r)
	if p.cfg.Observe != nil {
		p.cfg.Observe(ctx, r)
	}
	return r
}

// run is the pipeline of one version: route, pin, rules, claim, send,
// record, tag, release.
func (p *Pipeline) run(lambdaCtx context.Context, obj Object, r *Result) error {
	d := p.route(obj.Key)
	switch {
	case obj.Bucket == "":
		return end(Skipped, "no bucket named")
	case d == nil:
		return end(Skipped, "key outside prefix %s", p.prefixes())
	case strings.HasSuffix(obj.Key, "/"):
		return end(Skipped, "folder marker")
	}
	r.Destination = d.Name
	b := p.budget(lambdaCtx)
	defer b.cancel()

	v, err := p.pin(b.work, obj)
	if err != nil {
		return err
	}
	r.VersionID, r.Size = v.VersionID, v.size
	if v.record != nil {
		return p.confirm(b.work, v, v.record, r)
	}
	if isSessionFile(d, v.Key) {
		err = p.bind(b.work, v)
	}
	if err == nil {
		err = p.rules(d, v)
	}
	r.BusinessPhone, r.Type = v.phone, v.typ
	if err != nil {
		if !isRejection(err) {
			return err
		}
		return p.decide(b.post, nil, v, p.verdict(d, v, "", err), r)
	}

	s := p.openStream(b.work, v)
	defer s.discard()
	c, rec, err := p.ledger.Claim(b.work, v.Object, p.cfg.ClaimWait)
	switch {
	case err != nil:
		return err
	case rec != nil:
		return p.confirm(b.work, v, rec, r)
	case c.Answer() != nil:
		// An earlier holder got NXCloud's answer but could not record it:
		// record it, send nothing.
		return p.decide(b.post, c, v, *c.Answer(), r)
	}

	id, err := p.send(b.work, d, v, c, s)
	if err != nil && !isRejection(err) {
		if !errors.Is(err, ledger.ErrLeaseLost) {
			c.Release(b.post)
		}
		return err
	}
	return p.decide(b.post, c, v, p.verdict(d, v, id, err), r)
}

// route returns the destination of key, nil when it is under none of the
// prefixes.
func (p *Pipeline) route(key string) *Destination {
	for i := range p.dests {
		if strings.HasPrefix(key, p.dests[i].Prefix) {
			return &p.dests[i]
		}
	}
	return nil
}

func (p *Pipeline) prefixes() string {
	var s []string
	for _, d := range p.dests {
		s = append(s, d.Prefix)
	}
	return strings.Join(s, " and ")
}

// verdict is the record of the verdict on v: uploaded as id when why is
// nil, else rejected for why.
func (p *Pipeline) verdict(d *Destination, v *version, id string, why error) ledger.Record {
	rec := ledger.Record{Status: ledger.Uploaded, MediaID: id, Destination: d.Name, BusinessPhone: v.phone, Type: v.typ, Size: v.size}
	var e *ending
	if errors.As(why, &e) {
		rec.Status, rec.MediaID, rec.Error = ledger.Rejected, "", e.reason
	}
	return rec
}

// decide records rec as v's verdict (under the claim c when one is held)
// and tags v with the verdict that stands. The record comes first: once it
// is written, no retry sends the version again, whatever becomes of the
// tags.
func (p *Pipeline) decide(ctx context.Context, c *ledger.Claim, v *version, rec ledger.Record, r *Result) error {
	var err error
	if c != nil {
		rec, err = c.Decide(ctx, rec)
	} else {
		rec, err = p.ledger.Decide(ctx, v.Object, rec)
	}
	if err != nil {
		return err
	}
	r.MediaID = rec.MediaID
	if err := p.ledger.Tag(ctx, v.Object, rec, v.tagCount); err != nil {
		return fmt.Errorf("%s (recorded in %s), but tagging failed; the retry tags it: %w", rec.Status, ledger.RecordKey(v.Key, v.VersionID), err)
	}
	if rec.Status == ledger.Rejected {
		return end(Rejected, "%s", rec.Error)
	}
	return nil
}

// confirm ends the upload of a version that already has a verdict: it
// makes the version's tags say it (an earlier delivery may have recorded it
// and died before tagging).
func (p *Pipeline) confirm(ctx context.Context, v *version, rec *ledger.Record, r *Result) error {
	r.MediaID, r.BusinessPhone, r.Type = rec.MediaID, rec.BusinessPhone, rec.Type
	if err := p.ledger.Tag(ctx, v.Object, *rec, -1); err != nil {
		return fmt.Errorf("already %s (recorded in %s), but tagging failed: %w", rec.Status, ledger.RecordKey(v.Key, v.VersionID), err)
	}
	return end(Skipped, "already %s", rec.Status)
}

// budget holds the contexts of one upload: work ends Margin before the
// Lambda deadline (sending stops there), post ends shortly before the
// deadline itself and is where the verdict is recorded and tagged.
type budget struct {
	work   context.Context
	post   context.Context
	cancel func()
}

func (p *Pipeline) budget(ctx context.Context) budget {
	dl, ok := ctx.Deadline()
	if !ok {
		work, cw := context.WithCancel(ctx)
		post, cp := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.Margin)
		return budget{work: work, post: post, cancel: func() { cw(); cp() }}
	}
	margin := max(min(p.cfg.Margin, time.Until(dl)/5), 0)
	work, cw := context.WithDeadline(ctx, dl.Add(-margin))
	post, cp := context.WithDeadline(context.WithoutCancel(ctx), dl.Add(-margin/5))
	return budget{work: work, post: post, cancel: func() { cw(); cp() }}
}

func (p *Pipeline) logResult(ctx context.Context, r *Result) {
	var rate int64
	if r.Outcome == Uploaded && r.Duration > 0 {
		rate = int64(float64(r.Size) / r.Duration.Seconds())
	}
	attrs := []slog.Attr{
		slog.String("outcome", string(r.Outcome)),
		slog.String("destination", r.Destination),
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
		attrs = append(attrs, slog.String("error", r.Err.Error()), slog.String("error_type", FailureType(r.Err)))
	}
	p.log.LogAttrs(ctx, level, "upload", attrs...)
}
