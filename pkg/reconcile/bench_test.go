package reconcile_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/miniotest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/ledger"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/reconcile"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/upload"
)

// requestCounter counts the S3 requests a client sends, listings apart.
type requestCounter struct {
	next       http.RoundTripper
	all, lists atomic.Int64
}

func (c *requestCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.all.Add(1)
	if q := r.URL.Query(); r.Method == http.MethodGet && (q.Has("versions") || q.Get("list-type") == "2") {
		c.lists.Add(1)
	}
	return c.next.RoundTrip(r)
}

// benchObjects is the size of the benchmark's bucket: BENCH_SWEEP_OBJECTS,
// default 10,000 (make bench-ci sweeps a smaller bucket).
var benchObjects = func() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_SWEEP_OBJECTS")); err == nil && n >= 100 {
		return n
	}
	return 10000
}()

var benchWorld struct {
	once    sync.Once
	w       *world
	keys    []string
	version map[string]string
}

// benchBucket is a bucket of benchObjects small files under the prefix,
// made once for the benchmarks, each with its record unless the benchmark
// removes it.
func benchBucket(b *testing.B) *world {
	b.Helper()
	benchWorld.once.Do(func() {
		w := newWorld(b)
		benchWorld.w, benchWorld.version = w, make(map[string]string, benchObjects)
		var mu sync.Mutex
		var g errgroup.Group
		g.SetLimit(32)
		for i := range benchObjects {
			key := fmt.Sprintf("%s%s/%03d/file-%05d.pdf", prefix, "8615812341795", i%100, i)
			benchWorld.keys = append(benchWorld.keys, key)
			g.Go(func() error {
				v := w.put(key, []byte("%PDF-1.4 "+key))
				w.record(key, v)
				mu.Lock()
				benchWorld.version[key] = v
				mu.Unlock()
				return nil
			})
		}
		_ = g.Wait()
	})
	if benchWorld.w == nil {
		b.Fatal("the benchmark bucket could not be made")
	}
	return benchWorld.w
}

// BenchmarkSweep measures a sweep of a bucket of benchObjects objects: with
// nothing pending (listing only) and with one in 100 pending (sent to a
// local NXCloud through the real pipeline). It reports the S3 requests per
// sweep. make bench runs it (cmd/bench), as
//
//	go test -run '^$' -bench Sweep -benchtime 1x -count 3 ./pkg/reconcile/
func BenchmarkSweep(b *testing.B) {
	if testing.Short() {
		b.Skip("makes two objects in MinIO per object swept")
	}
	for _, pending := range []int{0, benchObjects / 100} {
		b.Run(fmt.Sprintf("objects=%d/pending=%d", benchObjects, pending), func(b *testing.B) {
			w := benchBucket(b)
			ctx := context.Background()
			nx := nxcloudtest.NewTestServer(b)
			client, err := nxcloud.NewClient(nxcloud.WithBaseURL(nx.URL()), nxcloud.WithCredentials(nxcloud.StaticCredentials(nx.Credentials())))
			if err != nil {
				b.Fatal(err)
			}
			counter := &requestCounter{next: http.DefaultTransport}
			api := miniotest.Shared(b).Client(func(o *s3.Options) {
				o.HTTPClient = &http.Client{Transport: counter}
			})
			p := upload.New(upload.Config{ClaimWait: reconcile.DefaultClaimWait}, api, upload.Template(prefix, client))
			sw := reconcile.New(reconcile.Config{Bucket: w.bucket, Prefixes: []string{prefix}, Settle: 1}, api, p.Ledger(), p, nil)
			// The pending versions: every 100th object loses its record.
			var chosen []string
			for i := 0; i < pending; i++ {
				chosen = append(chosen, benchWorld.keys[i*benchObjects/max(pending, 1)])
			}
			var all, lists int64
			for b.Loop() {
				b.StopTimer()
				for _, k := range chosen {
					for _, obj := range []string{ledger.RecordKey(k, benchWorld.version[k]), ledger.ClaimKey(k, benchWorld.version[k])} {
						if _, err := w.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(w.bucket), Key: aws.String(obj)}); err != nil {
							b.Fatal(err)
						}
					}
				}
				counter.all.Store(0)
				counter.lists.Store(0)
				b.StartTimer()
				sum, err := sw.Run(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if sum.Examined != benchObjects || sum.Pending != pending || sum.Uploaded != pending {
					b.Fatalf("summary %+v, want %d examined, %d pending and uploaded", sum, benchObjects, pending)
				}
				all, lists = counter.all.Load(), counter.lists.Load()
			}
			b.ReportMetric(float64(all), "s3-requests/sweep")
			b.ReportMetric(float64(lists), "list-requests/sweep")
			if n := len(nx.Uploads()); n != pending*b.N {
				b.Errorf("NXCloud got %d uploads over %d sweeps, want %d each", n, b.N, pending)
			}
		})
	}
}
