package ledger

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Scanner answers, for batches of object versions of one bucket, which have
// neither a verdict nor a live claim: what the sweep must send. It lists
// RecordPrefix and ClaimPrefix in key order, one page at a time, seeking
// forward as the batches go: memory holds one batch and one page of each
// listing, whatever the bucket's size, and a bucket where nothing is pending
// costs about one list request per 1,000 records. A Scanner is used by one
// goroutine.
type Scanner struct {
	l        *Ledger
	records  *lister
	claims   *lister
	requests int
}

// Scanner returns a Scanner of bucket.
func (l *Ledger) Scanner(bucket string) *Scanner {
	s := &Scanner{l: l}
	s.records = &lister{s: s, bucket: bucket, prefix: RecordPrefix}
	s.claims = &lister{s: s, bucket: bucket, prefix: ClaimPrefix}
	return s
}

// Requests is the number of S3 requests the Scanner made.
func (s *Scanner) Requests() int { return s.requests }

// Undecided returns the versions of batch (all of s's bucket) that have no
// verdict and no live claim, in the order given.
func (s *Scanner) Undecided(ctx context.Context, batch []Object) ([]Object, error) {
	now := s.l.now()
	decided, err := s.find(ctx, s.records, batch, RecordKey, func(entry) bool { return true })
	if err != nil {
		return nil, err
	}
	var open []Object
	for i, o := range batch {
		if !decided[i] {
			open = append(open, o)
		}
	}
	// The listing does not show a claim's own lease: a claim written within
	// the longest one is read (claims without a record are few: versions
	// being sent, or whose holder died).
	var readErr error
	held, err := s.find(ctx, s.claims, open, ClaimKey, func(e entry) bool {
		if now.Sub(e.modified) >= MaxLease+StaleGrace {
			return false
		}
		s.requests++
		h, err := s.l.readClaim(ctx, s.records.bucket, e.key)
		switch {
		case IsNotFound(err):
			return false
		case err != nil:
			readErr = cmp.Or(readErr, s3Err("read claim "+e.key, "s3:GetObject on "+ClaimPrefix+"*", err))
			return true
		}
		return !h.stale(now)
	})
	if err = cmp.Or(err, readErr); err != nil {
		return nil, err
	}
	out := open[:0:0]
	for i, o := range open {
		if !held[i] {
			out = append(out, o)
		}
	}
	return out, nil
}

// find reports, for each version of batch, whether keyOf(version) is
// listed and counts (match).
func (s *Scanner) find(ctx context.Context, l *lister, batch []Object, keyOf func(key, version string) string, match func(entry) bool) ([]bool, error) {
	found := make([]bool, len(batch))
	order := make([]int, len(batch))
	keys := make([]string, len(batch))
	for i, o := range batch {
		order[i], keys[i] = i, keyOf(o.Key, o.VersionID)
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(keys[a], keys[b]) })
	for _, i := range order {
		e, ok, err := l.find(ctx, keys[i])
		if err != nil {
			return nil, err
		}
		found[i] = ok && match(e)
	}
	return found, nil
}

// entry is one listed key.
type entry struct {
	key      string
	modified time.Time
}

// lister holds one page of the listing of prefix: the keys after `after`,
// up to the page's last key, or to the end when the page is not truncated.
type lister struct {
	s              *Scanner
	bucket, prefix string
	after          string
	page           []entry
	truncated      bool
	fetched        bool
}

// find reports whether key is listed, fetching pages as needed: forward
// from the current page when key is past it, afresh from key when key is
// before it.
func (l *lister) find(ctx context.Context, key string) (entry, bool, error) {
	for {
		if l.fetched && key > l.after && (!l.truncated || len(l.page) > 0 && key <= l.page[len(l.page)-1].key) {
			i, ok := slices.BinarySearchFunc(l.page, key, func(e entry, k string) int { return cmp.Compare(e.key, k) })
			if ok {
				return l.page[i], true, nil
			}
			return entry{}, false, nil
		}
		// Start after the page's end when key is past it, else right
		// before key (its parent string sorts before it).
		after := key[:len(key)-1]
		if l.fetched && len(l.page) > 0 && key > l.page[len(l.page)-1].key {
			after = max(after, l.page[len(l.page)-1].key)
		}
		if err := l.fetch(ctx, after); err != nil {
			return entry{}, false, err
		}
	}
}

// fetch lists one page of the keys after `after`.
func (l *lister) fetch(ctx context.Context, after string) error {
	l.s.requests++
	out, err := l.s.l.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket:       aws.String(l.bucket),
		Prefix:       aws.String(l.prefix),
		StartAfter:   aws.String(max(after, l.prefix)),
		EncodingType: types.EncodingTypeUrl,
	})
	if err != nil {
		return s3Err("list "+l.prefix, "s3:ListBucket on the bucket", err)
	}
	l.page = l.page[:0]
	for _, o := range out.Contents {
		k, err := DecodeListedKey(aws.ToString(o.Key))
		if err != nil {
			return err
		}
		l.page = append(l.page, entry{key: k, modified: aws.ToTime(o.LastModified)})
	}
	l.after, l.truncated, l.fetched = after, aws.ToBool(out.IsTruncated), true
	if l.truncated && len(l.page) == 0 {
		return errors.New("list " + l.prefix + ": S3 answered an empty page marked truncated")
	}
	return nil
}

// DecodeListedKey decodes a key of a listing made with EncodingType=url.
func DecodeListedKey(raw string) (string, error) {
	k, err := url.QueryUnescape(raw)
	if err != nil {
		return "", fmt.Errorf("listed key %q is not URL-encoded as EncodingType=url promises: %w", raw, err)
	}
	return k, nil
}

// Position is where a sweep stopped: the prefix it was listing and the last
// key it handled there. The zero Position is the start.
type Position struct {
	Prefix    string    `json:"prefix,omitempty"`
	Key       string    `json:"key,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// positionKey is where the sweep keeps its position.
const positionKey = SweepPrefix + "position"

// Position returns where the last sweep of bucket stopped.
func (l *Ledger) Position(ctx context.Context, bucket string) (Position, error) {
	var p Position
	_, err := l.readJSON(ctx, bucket, positionKey, &p)
	if err != nil && !IsNotFound(err) {
		return Position{}, s3Err("read the sweep's position "+positionKey, "s3:GetObject on "+SweepPrefix+"*", err)
	}
	return p, nil
}

// SavePosition keeps p as where the next sweep of bucket starts (the zero
// Position: from the start).
func (l *Ledger) SavePosition(ctx context.Context, bucket string, p Position) error {
	p.UpdatedAt = l.now().UTC()
	body, err := json.Marshal(p)
	if err == nil {
		_, err = l.s3.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(bucket), Key: aws.String(positionKey), Body: bytes.NewReader(body),
			ContentLength: aws.Int64(int64(len(body))), ContentType: aws.String("application/json"),
		})
	}
	if err != nil {
		return s3Err("write the sweep's position "+positionKey, "s3:PutObject on "+SweepPrefix+"*", err)
	}
	return nil
}
