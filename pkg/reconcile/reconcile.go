package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/config"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/upload"
)

// S3API is the listing the sweep does; *s3.Client satisfies it.
type S3API interface {
	ListObjectVersions(ctx context.Context, in *s3.ListObjectVersionsInput, optFns ...func(*s3.Options)) (*s3.ListObjectVersionsOutput, error)
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
}

// Processor runs one record through the upload pipeline; *upload.Handler
// satisfies it.
type Processor interface {
	Process(ctx context.Context, rec *events.S3EventRecord) upload.Result
}

// Defaults of Config.
const (
	DefaultConcurrency = 4
	DefaultReserve     = time.Second
	DefaultMinSend     = 5 * time.Second
	DefaultSendRate    = 1 << 20 // bytes per second
	// DefaultClaimWait is the ClaimWait of the sweep's upload handler: a
	// version another delivery holds is left to it after this long.
	DefaultClaimWait = 2 * time.Second
)

// claimLive is how long after its last write a claim may still be live:
// the longest lease plus the grace the upload pipeline gives clocks.
const claimLive = config.MaxClaimLease + 5*time.Second

// Config configures a Sweeper. Zero fields take the defaults.
type Config struct {
	Bucket string // MEDIA_BUCKET
	Prefix string // UPLOAD_PREFIX; default templates/
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
	// Clock returns the current time; default time.Now.
	Clock func() time.Time
}

// Summary is what a run answers.
type Summary struct {
	// Examined counts the current versions listed under the prefix.
	Examined int `json:"examined"`
	// Pending counts the versions found without verdict and without a live
	// claim, older than the settle time: those the run set out to send.
	Pending int `json:"pending"`
	// Uploaded, Rejected and Failed count how the pending versions sent
	// ended. Pending versions in none of them were decided meanwhile by
	// their own event, or left to the next run for lack of time.
	Uploaded int `json:"uploaded"`
	Rejected int `json:"rejected"`
	Failed   int `json:"failed"`
}

// Sweeper runs sweeps; see the package documentation.
type Sweeper struct {
	cfg  Config
	s3   S3API
	proc Processor
	log  *slog.Logger
}

// New returns a Sweeper. A nil logger discards the log.
func New(cfg Config, api S3API, proc Processor, logger *slog.Logger) *Sweeper {
	if cfg.Prefix == "" {
		cfg.Prefix = config.DefaultUploadPrefix
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
	return &Sweeper{cfg: cfg, s3: api, proc: proc, log: logger}
}

// Handle is the Lambda handler: any JSON event (a schedule's, {}, ...) runs
// one sweep.
func (s *Sweeper) Handle(ctx context.Context, _ json.RawMessage) (Summary, error) {
	return s.Run(ctx)
}

// candidate is a current version that may need sending.
type candidate struct {
	key, version string
	size         int64
	modified     time.Time
}

// Run sweeps once. It returns an error only when the listing fails (the
// sweep could not look); versions that failed are counted in Summary.Failed
// and left to the next run.
func (s *Sweeper) Run(ctx context.Context) (Summary, error) {
	start := s.cfg.Clock()
	ctx, cancel := s.answerBy(ctx)
	defer cancel()
	var sum Summary
	requests := 0

	pending, err := s.pending(ctx, &sum, &requests)
	if err != nil {
		if ctx.Err() == nil {
			return sum, err
		}
		s.log.WarnContext(ctx, "reconcile: ran out of time while listing: nothing sent, the next run starts over",
			"bucket", s.cfg.Bucket, "prefix", s.cfg.Prefix, "examined", sum.Examined, "list_requests", requests, "error", err)
		return sum, nil
	}
	sum.Pending = len(pending)
	left := s.send(ctx, pending, &sum)

	s.log.InfoContext(ctx, "reconcile sweep",
		"bucket", s.cfg.Bucket, "prefix", s.cfg.Prefix,
		"examined", sum.Examined, "pending", sum.Pending, "uploaded", sum.Uploaded, "rejected", sum.Rejected, "failed", sum.Failed,
		"left_for_next_run", left, "list_requests", requests, "duration_ms", s.cfg.Clock().Sub(start).Milliseconds())
	return sum, nil
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

// pending joins the listings: the current versions without record and
// without live claim, older than Settle, oldest first.
func (s *Sweeper) pending(ctx context.Context, sum *Summary, requests *int) ([]candidate, error) {
	now := s.cfg.Clock()
	byRecord := map[string]candidate{}
	hashed := false
	in := &s3.ListObjectVersionsInput{Bucket: aws.String(s.cfg.Bucket), Prefix: aws.String(s.cfg.Prefix)}
	for {
		out, err := s.s3.ListObjectVersions(ctx, in)
		*requests++
		if err != nil {
			return nil, fmt.Errorf("list the versions under s3://%s/%s (the role needs s3:ListBucketVersions): %w", s.cfg.Bucket, s.cfg.Prefix, err)
		}
		for _, v := range out.Versions {
			if !aws.ToBool(v.IsLatest) {
				continue
			}
			sum.Examined++
			c := candidate{key: aws.ToString(v.Key), version: aws.ToString(v.VersionId), size: aws.ToInt64(v.Size), modified: aws.ToTime(v.LastModified)}
			if c.size == 0 || strings.HasSuffix(c.key, "/") || now.Sub(c.modified) < s.cfg.Settle {
				continue
			}
			rk := upload.RecordKey(c.key, c.version)
			hashed = hashed || !strings.HasPrefix(rk, upload.RecordPrefix+s.cfg.Prefix)
			byRecord[rk] = c
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		in.KeyMarker, in.VersionIdMarker = out.NextKeyMarker, out.NextVersionIdMarker
	}

	// Versions with a verdict.
	prefixes := []string{upload.RecordPrefix + s.cfg.Prefix}
	if hashed {
		prefixes = append(prefixes, upload.RecordPrefix+"sha256/")
	}
	if err := s.drop(ctx, prefixes, requests, func(key string, _ time.Time) {
		delete(byRecord, key)
	}, func() bool { return len(byRecord) == 0 }); err != nil {
		return nil, err
	}

	// Versions someone is sending.
	if len(byRecord) > 0 {
		byClaim := make(map[string]string, len(byRecord))
		hashed = false
		for rk, c := range byRecord {
			ck := upload.ClaimKey(c.key, c.version)
			hashed = hashed || !strings.HasPrefix(ck, upload.ClaimPrefix+s.cfg.Prefix)
			byClaim[ck] = rk
		}
		prefixes = []string{upload.ClaimPrefix + s.cfg.Prefix}
		if hashed {
			prefixes = append(prefixes, upload.ClaimPrefix+"sha256/")
		}
		if err := s.drop(ctx, prefixes, requests, func(key string, modified time.Time) {
			if rk, ok := byClaim[key]; ok && now.Sub(modified) < claimLive {
				delete(byRecord, rk)
			}
		}, func() bool { return len(byRecord) == 0 }); err != nil {
			return nil, err
		}
	}

	pending := make([]candidate, 0, len(byRecord))
	for _, c := range byRecord {
		pending = append(pending, c)
	}
	slices.SortFunc(pending, func(a, b candidate) int {
		if c := a.modified.Compare(b.modified); c != 0 {
			return c
		}
		return strings.Compare(a.key, b.key)
	})
	return pending, nil
}

// drop lists every key under prefixes, calling seen for each, until done.
func (s *Sweeper) drop(ctx context.Context, prefixes []string, requests *int, seen func(key string, modified time.Time), done func() bool) error {
	for _, prefix := range prefixes {
		p := s3.NewListObjectsV2Paginator(s.s3, &s3.ListObjectsV2Input{Bucket: aws.String(s.cfg.Bucket), Prefix: aws.String(prefix)})
		for p.HasMorePages() && !done() {
			out, err := p.NextPage(ctx)
			*requests++
			if err != nil {
				return fmt.Errorf("list s3://%s/%s (the role needs s3:ListBucket): %w", s.cfg.Bucket, prefix, err)
			}
			for _, o := range out.Contents {
				seen(aws.ToString(o.Key), aws.ToTime(o.LastModified))
			}
		}
	}
	return nil
}

// send runs the pending versions through the pipeline, Concurrency at a
// time, while the time left covers the next one; it returns how many it did
// not start.
func (s *Sweeper) send(ctx context.Context, pending []candidate, sum *Summary) int {
	dl, bounded := ctx.Deadline()
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, s.cfg.Concurrency)
	started := 0
	for _, c := range pending {
		sem <- struct{}{}
		need := s.cfg.MinSend + time.Duration(float64(c.size)/float64(s.cfg.SendRate)*float64(time.Second))
		if ctx.Err() != nil || (bounded && s.cfg.Clock().Add(need).After(dl)) {
			<-sem
			break
		}
		started++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r := s.proc.Process(ctx, record(s.cfg.Bucket, c))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case r.Outcome == upload.Uploaded:
				sum.Uploaded++
			case r.Outcome == upload.Rejected:
				sum.Rejected++
			case r.Outcome == upload.Failed && !errors.Is(r.Err, upload.ErrClaimHeld):
				sum.Failed++
			}
		}()
	}
	wg.Wait()
	return len(pending) - started
}

// record is the S3 event record the pipeline gets for a pending version.
func record(bucket string, c candidate) *events.S3EventRecord {
	return &events.S3EventRecord{
		EventSource: "nxcloud:reconcile",
		EventTime:   c.modified,
		S3: events.S3Entity{
			Bucket: events.S3Bucket{Name: bucket, Arn: "arn:aws:s3:::" + bucket},
			Object: events.S3Object{Key: upload.EncodeKey(c.key), Size: c.size, VersionID: c.version},
		},
	}
}
