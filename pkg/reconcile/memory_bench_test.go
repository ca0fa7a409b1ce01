package reconcile_test

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/ledger"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/reconcile"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/upload"
)

// syntheticBucket serves the listings of a bucket of n objects under the
// prefix, every one decided (its record listed), without holding them: the
// keys are computed from their index, and a listing seeks by binary search.
// It is S3 as the sweep sees it, for sizes MinIO cannot hold here.
type syntheticBucket struct {
	ledger.S3API
	n        int
	modified time.Time
	lists    atomic.Int64
}

func (b *syntheticBucket) key(i int) string {
	return fmt.Sprintf("%s8615812341795/%08d.pdf", prefix, i)
}

func (b *syntheticBucket) ListObjectVersions(_ context.Context, in *s3.ListObjectVersionsInput, _ ...func(*s3.Options)) (*s3.ListObjectVersionsOutput, error) {
	b.lists.Add(1)
	start := sort.Search(b.n, func(i int) bool { return b.key(i) > aws.ToString(in.KeyMarker) })
	end := min(start+1000, b.n)
	out := &s3.ListObjectVersionsOutput{IsTruncated: aws.Bool(end < b.n)}
	for i := start; i < end; i++ {
		out.Versions = append(out.Versions, types.ObjectVersion{
			Key: aws.String(b.key(i)), VersionId: aws.String("v1"), IsLatest: aws.Bool(true), Size: aws.Int64(1000), LastModified: aws.Time(b.modified),
		})
	}
	if end < b.n {
		out.NextKeyMarker, out.NextVersionIdMarker = aws.String(b.key(end-1)), aws.String("v1")
	}
	return out, nil
}

func (b *syntheticBucket) ListObjectsV2(_ context.Context, in *s3.ListObjectsV2Input, _ ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	b.lists.Add(1)
	out := &s3.ListObjectsV2Output{IsTruncated: aws.Bool(false)}
	if aws.ToString(in.Prefix) != ledger.RecordPrefix {
		return out, nil // no claims
	}
	rk := func(i int) string { return ledger.RecordKey(b.key(i), "v1") }
	start := sort.Search(b.n, func(i int) bool { return rk(i) > aws.ToString(in.StartAfter) })
	end := min(start+1000, b.n)
	out.IsTruncated = aws.Bool(end < b.n)
	for i := start; i < end; i++ {
		out.Contents = append(out.Contents, types.Object{Key: aws.String(rk(i)), LastModified: aws.Time(b.modified)})
	}
	return out, nil
}

func (b *syntheticBucket) GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	return nil, &smithy.GenericAPIError{Code: "NoSuchKey"} // no position kept
}

func (b *syntheticBucket) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	_, _ = io.Copy(io.Discard, in.Body)
	return &s3.PutObjectOutput{}, nil
}

// noUploads fails the benchmark if anything is sent.
type noUploads struct{ b *testing.B }

func (u noUploads) Upload(_ context.Context, o upload.Object) upload.Result {
	u.b.Errorf("%s sent although it has a verdict", o.Key)
	return upload.Result{Outcome: upload.Uploaded}
}

// BenchmarkSweepMemory sweeps synthetic buckets of 10,000 to 1,000,000
// decided objects and reports the peak Go heap in use during the sweep
// (sampled every 5 ms) and the list requests: the memory must not grow with
// the number of objects. make bench runs it (cmd/bench).
func BenchmarkSweepMemory(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("objects=%d", n), func(b *testing.B) {
			if testing.Short() && n > 10_000 {
				b.Skip("-short sweeps the smallest bucket only")
			}
			bucket := &syntheticBucket{n: n, modified: time.Now().Add(-time.Hour)}
			sw := reconcile.New(reconcile.Config{Bucket: "synthetic", Prefixes: []string{prefix}},
				bucket, ledger.New(bucket, ledger.Config{}), noUploads{b}, nil)
			var peak uint64
			for b.Loop() {
				runtime.GC()
				bucket.lists.Store(0)
				stop := make(chan struct{})
				var wg sync.WaitGroup
				wg.Go(func() {
					var ms runtime.MemStats
					for {
						runtime.ReadMemStats(&ms)
						peak = max(peak, ms.HeapInuse)
						select {
						case <-stop:
							return
						case <-time.After(5 * time.Millisecond):
						}
					}
				})
				sum, err := sw.Run(context.Background())
				close(stop)
				wg.Wait()
				if err != nil || sum.Examined != n || sum.Pending != 0 {
					b.Fatalf("summary %+v, %v; want %d examined, nothing pending", sum, err, n)
				}
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(bucket.lists.Load()), "list-requests/sweep")
			b.ReportMetric(float64(bucket.lists.Load())/float64(n)*1000, "lists-per-1000-objects")
		})
	}
}
