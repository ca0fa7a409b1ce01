package reconcile

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/config"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/ledger"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/upload"
)

// S3API is the listing the sweep does; *s3.Client satisfies it.
type S3API interface {
	ListObjectVersions(ctx context.Context, in *s3.ListObjectVersionsInput, optFns ...func(*s3.Options)) (*s3.ListObjectVersionsOutput, error)
}

// Uploader runs one version through the upload pipeline; *upload.Pipeline
// satisfies it.
type Uploader interface {
	Upload(ctx context.Context, obj upload.Object) upload.Result
}

// Defaults of Config.
const (
	DefaultConcurrency = 4
	DefaultReserve     = time.Second
	DefaultMinSend     = 5 * time.Second
	DefaultSendRate    = 1 << 20 // bytes per second
	// DefaultClaimWait is the ClaimWait of the sweep's pipeline: a version
	// another delivery holds is left to it after this long.
	DefaultClaimWait = 2 * time.Second
)

// Config configures a Sweeper. Zero fields take the defaults.
type Config struct {
	Bucket string // MEDIA_BUCKET
	// Prefixes are the destinations' prefixes, swept in this order.
	Prefixes []string
	// Settle is the age below which a version is left to its event
	// (RECONCILE_SETTLE); default 15m.
	Settle time.Duration
	// Concurrency is how many versions are sent at once; default 4.
	Concurrency int
	// Reserve is kept before the deadline to answer (at most a tenth of the
	// time left at the start); default 1s.
	Reserve time.Duration
	// MinSend and SendRate estimate the time a version needs: MinSend plus
	// its size at SendRate bytes per second (defaults 5s and 1 MiB/s). A
	// version is started only while that much time is left.
	MinSend  time.Duration
	SendRate int64
	// PageSize is the number of versions listed per request; default (0)
	// S3's 1,000.
	PageSize int32
	// Clock returns the current time; default time.Now.
	Clock func() time.Time
}

// Summary is what a run answers.
type Summary struct {
	// Examined counts the current versions listed under the prefixes.
	Examined int `json:"examined"`
	// Pending counts the versions found without verdict and without a live
	// claim, older than the settle time: those the run set out to send.
	Pending int `json:"pending"`
	// Uploaded, Rejected and Failed count how the pending versions sent
	// ended (Failed also counts keys that could not be read). Pending
	// versions in none of them were decided meanwhile by their own event,
	// or left to the next run for lack of time.
	Uploaded int `json:"uploaded"`
	Rejected int `json:"rejected"`
	Failed   int `json:"failed"`
}

// Sweeper runs sweeps; see the package documentation.
type Sweeper struct {
	cfg    Config
	s3     S3API
	ledger *ledger.Ledger
	up     Uploader
	log    *slog.Logger
}

// New returns a Sweeper that lists with api, reads the verdicts and claims
// and keeps its position with l, and sends through up. A nil logger
// discards the log.
func New(cfg Config, api S3API, l *ledger.Ledger, up Uploader, logger *slog.Logger) *Sweeper {
	if len(cfg.Prefixes) == 0 {
		cfg.Prefixes = []string{config.DefaultUploadPrefix, config.DefaultMediaPrefix}
	}
	if cfg.Settle <= 0 {
		cfg.Settle = config.DefaultSettle
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Reserve <= 0 {
		cfg.Reserve = DefaultReserve
	}
	if cfg.MinSend <= 0 {
		cfg.MinSend = DefaultMinSend
	}
	if cfg.SendRate <= 0 {
		cfg.SendRate = DefaultSendRate
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Sweeper{cfg: cfg, s3: api, ledger: l, up: up, log: logger}
}

// Handle is the Lambda handler: any JSON event (a schedule's, {}, ...) runs
// one sweep.
func (s *Sweeper) Handle(ctx context.Context, _ json.RawMessage) (Summary, error) {
	return s.Run(ctx)
}

// run is the state of one sweep.
type run struct {
	*Sweeper
	sum      Summary
	scanner  *ledger.Scanner
	requests int // ListObjectVersions requests
	firstErr error
}

// Run sweeps once, from where the last run stopped. It returns an error when
// a listing fails (the sweep could not look) or, after logging its summary,
// when any version failed.
func (s *Sweeper) Run(ctx context.Context) (Summary, error) {
	start := s.cfg.Clock()
	ctx, cancel := s.answerBy(ctx)
	defer cancel()
	r := &run{Sweeper: s, scanner: s.ledger.Scanner(s.cfg.Bucket)}

	from, err := s.ledger.Position(ctx, s.cfg.Bucket)
	if err != nil {
		return r.sum, err
	}
	first := 0
	for i, p := range s.cfg.Prefixes {
		if p == from.Prefix {
			first = i
		}
	}
	if first == 0 && from.Prefix != s.cfg.Prefixes[0] {
		from = ledger.Position{} // a prefix no longer swept: start over
	}
	var at ledger.Position // where this run stopped; zero: it covered the rest
	for i := first; i < len(s.cfg.Prefixes); i++ {
		marker := ""
		if i == first {
			marker = from.Key
		}
		stop, err := r.sweep(ctx, s.cfg.Prefixes[i], marker)
		if err != nil {
			return r.sum, err
		}
		if stop != nil {
			at = *stop
			break
		}
	}
	// The position is written even when the time to answer is up.
	if at.Prefix != from.Prefix || at.Key != from.Key {
		err = s.ledger.SavePosition(context.WithoutCancel(ctx), s.cfg.Bucket, at)
	}
	if err != nil {
		s.log.WarnContext(ctx, "reconcile: position not kept: the next run starts where this one started", "error", err)
	}

	s.log.InfoContext(ctx, "reconcile sweep",
		"bucket", s.cfg.Bucket, "prefixes", s.cfg.Prefixes, "started_at", from, "stopped_at", at, "complete", at == ledger.Position{},
		"examined", r.sum.Examined, "pending", r.sum.Pending, "uploaded", r.sum.Uploaded, "rejected", r.sum.Rejected, "failed", r.sum.Failed,
		"list_requests", r.requests+r.scanner.Requests(), "duration_ms", s.cfg.Clock().Sub(start).Milliseconds())
	if r.sum.Failed > 0 {
		return r.sum, messages.InvokeResponse_Error{Type: "SweepFailures", Message: fmt.Sprintf(
			"%d of %d pending versions failed (each is logged; the next run tries them again); the first: %v", r.sum.Failed, r.sum.Pending, r.firstErr)}
	}
	return r.sum, nil
}

// answerBy bounds ctx to the time the run must answer by: Reserve (at most
// a tenth of the time left) before ctx's deadline.
func (s *Sweeper) answerBy(ctx context.Context) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	reserve := min(s.cfg.Reserve, time.Until(dl)/10)
	return context.WithDeadline(ctx, dl.Add(-reserve))
}

// candidate is a current version that may need sending, and the key listed
// right before it (where to list from to reach it again).
type candidate struct {
	upload.Object
	size   int64
	before string
}

// sweep lists prefix from after marker, page by page, and sends what is
// pending. It returns the position to go on from when time ran out.
func (r *run) sweep(ctx context.Context, prefix, marker string) (*ledger.Position, error) {
	in := &s3.ListObjectVersionsInput{
		Bucket: aws.String(r.cfg.Bucket), Prefix: aws.String(prefix), EncodingType: types.EncodingTypeUrl,
	}
	if marker != "" {
		in.KeyMarker = aws.String(marker)
	}
	if r.cfg.PageSize > 0 {
		in.MaxKeys = aws.Int32(r.cfg.PageSize)
	}
	for {
		out, err := r.s3.ListObjectVersions(ctx, in)
		r.requests++
		if err != nil {
			if ctx.Err() != nil {
				return &ledger.Position{Prefix: prefix, Key: aws.ToString(in.KeyMarker)}, nil
			}
			return nil, fmt.Errorf("list the versions under s3://%s/%s: %w", r.cfg.Bucket, prefix, ledger.S3Err("list object versions", "s3:ListBucketVersions on the bucket", err))
		}
		batch := r.candidates(ctx, aws.ToString(in.KeyMarker), out.Versions)
		pending, err := r.scanner.Undecided(ctx, objects(batch))
		if err != nil {
			if ctx.Err() != nil {
				return &ledger.Position{Prefix: prefix, Key: aws.ToString(in.KeyMarker)}, nil
			}
			return nil, err
		}
		if stop := r.send(ctx, batch, pending); stop != "" || ctx.Err() != nil {
			return &ledger.Position{Prefix: prefix, Key: stop}, nil
		}
		if !aws.ToBool(out.IsTruncated) {
			return nil, nil
		}
		next, err := ledger.DecodeListedKey(aws.ToString(out.NextKeyMarker))
		if err != nil {
			return nil, err
		}
		in.KeyMarker, in.VersionIdMarker = aws.String(next), out.NextVersionIdMarker
	}
}

// candidates picks the versions of one listed page that may need sending.
// A key that cannot be decoded is logged and counted as failed.
func (r *run) candidates(ctx context.Context, marker string, versions []types.ObjectVersion) []candidate {
	now := r.cfg.Clock()
	var out []candidate
	before := marker
	for _, v := range versions {
		raw := aws.ToString(v.Key)
		key, err := ledger.DecodeListedKey(raw)
		if err != nil {
			r.fail(ctx, raw, err)
			continue
		}
		if !aws.ToBool(v.IsLatest) {
			continue
		}
		r.sum.Examined++
		size := aws.ToInt64(v.Size)
		if size > 0 && key[len(key)-1] != '/' && now.Sub(aws.ToTime(v.LastModified)) >= r.cfg.Settle {
			out = append(out, candidate{Object: upload.Object{Bucket: r.cfg.Bucket, Key: key, VersionID: aws.ToString(v.VersionId)}, size: size, before: before})
		}
		before = key
	}
	return out
}

func objects(cs []candidate) []upload.Object {
	out := make([]upload.Object, len(cs))
	for i, c := range cs {
		out[i] = c.Object
	}
	return out
}

// send runs the pending versions of a page through the pipeline,
// Concurrency at a time, in listing order, while the time left covers the
// next one. It returns the key to list from next time when it stopped for
// lack of time, else "".
func (r *run) send(ctx context.Context, batch []candidate, pending []upload.Object) string {
	r.sum.Pending += len(pending)
	sizes := make(map[upload.Object]candidate, len(batch))
	for _, c := range batch {
		sizes[c.Object] = c
	}
	dl, bounded := ctx.Deadline()
	var mu sync.Mutex
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, r.cfg.Concurrency)
	for _, o := range pending {
		c := sizes[o]
		sem <- struct{}{}
		need := r.cfg.MinSend + time.Duration(float64(c.size)/float64(r.cfg.SendRate)*float64(time.Second))
		if ctx.Err() != nil || (bounded && r.cfg.Clock().Add(need).After(dl)) {
			<-sem
			return c.before
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			res := r.up.Upload(ctx, o)
			mu.Lock()
			defer mu.Unlock()
			switch res.Outcome {
			case upload.Uploaded:
				r.sum.Uploaded++
			case upload.Rejected:
				r.sum.Rejected++
			case upload.Failed:
				if !errors.Is(res.Err, ledger.ErrClaimHeld) {
					r.sum.Failed++
					r.firstErr = cmp.Or(r.firstErr, res.Err)
				}
			}
		}()
	}
	return ""
}

// fail counts a key the run could not handle.
func (r *run) fail(ctx context.Context, key string, err error) {
	r.sum.Failed++
	r.firstErr = cmp.Or(r.firstErr, err)
	r.log.ErrorContext(ctx, "reconcile: key skipped", "bucket", r.cfg.Bucket, "key", key, "error", err)
}
