package upload_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/upload"
)

// TestLargeObjectFlatMemory streams a 200 MiB object from MinIO to the local
// NXCloud through the handler and measures the process's peak resident
// memory during the handler run (VmHWM after resetting it, Linux) and the
// peak Go heap, with the SDK validating the object's CRC64NVME checksum on
// the fly. The whole file never sits in memory: the target is under
// 64 MiB more than before the run.
func TestLargeObjectFlatMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("200 MiB upload: skipped with -short")
	}
	const size = 200 << 20
	const limit = 64 << 20
	rec := &checksumRecorder{}
	e := newEnv(t, envOptions{
		cfg:    upload.Config{DefaultBusinessPhone: phone, MaxUploadBytes: 256 << 20},
		wrapS3: func(api upload.S3API) upload.S3API { rec.S3API = api; return rec },
	})

	// A 200 MiB file of pseudo-random bytes, hashed while written.
	path := filepath.Join(t.TempDir(), "big.mp4")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	rng := rand.NewChaCha8([32]byte{1, 2, 3})
	if _, err := io.CopyN(io.MultiWriter(f, h), rng, size); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	want := hex.EncodeToString(h.Sum(nil))
	putStart := time.Now()
	out, err := e.s3.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(e.bucket), Key: aws.String("templates/big.mp4"), Body: f,
		ContentLength: aws.Int64(size), ContentType: aws.String("video/mp4"),
		// Stored with a full-object checksum, as S3 does by default, so that
		// the SDK validates the GetObject stream while it flows to NXCloud.
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc64nvme,
	})
	_ = f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("put 200 MiB into MinIO in %v", time.Since(putStart).Round(time.Millisecond))
	head, err := e.s3.HeadObject(context.Background(), &s3.HeadObjectInput{
		Bucket: aws.String(e.bucket), Key: aws.String("templates/big.mp4"), ChecksumMode: types.ChecksumModeEnabled,
	})
	if err != nil || aws.ToString(head.ChecksumCRC64NVME) == "" {
		t.Fatalf("MinIO keeps no CRC64NVME checksum of the object (%v): the stream would not be validated", err)
	}
	o := object{key: "templates/big.mp4", version: aws.ToString(out.VersionId), etag: strings.Trim(aws.ToString(out.ETag), `"`), size: size}

	runtime.GC()
	debug.FreeOSMemory()
	baseRSS, rssOK := procStatus("VmRSS")
	hwmReset := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil

	var peakHeap uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var ms runtime.MemStats
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peakHeap = max(peakHeap, ms.HeapInuse)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	start := time.Now()
	e.handle(e.event(record{obj: o}))
	took := time.Since(start)
	close(stop)
	wg.Wait()
	hwm, hwmOK := procStatus("VmHWM")

	ups := e.nx.Uploads()
	if len(ups) != 1 || ups[0].Size != size || ups[0].SHA256 != want {
		t.Fatalf("NXCloud got %+v; want %d bytes with sha256 %s", ups, size, want)
	}
	t.Logf("handler streamed 200 MiB in %v (%.0f MiB/s); peak Go heap in use %.1f MiB",
		took.Round(time.Millisecond), float64(size)/(1<<20)/took.Seconds(), float64(peakHeap)/(1<<20))
	if peakHeap > limit {
		t.Errorf("peak Go heap %d MiB; want under %d MiB: the object is being buffered", peakHeap>>20, limit>>20)
	}
	if rssOK && hwmOK && hwmReset {
		grew := int64(hwm) - int64(baseRSS)
		t.Logf("resident memory: %.1f MiB before, peak %.1f MiB during the run (+%.1f MiB)",
			float64(baseRSS)/(1<<20), float64(hwm)/(1<<20), float64(grew)/(1<<20))
		if grew > limit {
			t.Errorf("peak resident memory grew by %d MiB; want under %d MiB", grew>>20, limit>>20)
		}
	} else {
		t.Log("resident memory not measured: /proc/self/status or clear_refs unavailable")
	}
	if rec.checksum() == "" {
		t.Error("the handler's GetObject carried no checksum: the stream was not validated")
	}
	if tags := e.tags(o); tags[upload.TagMediaID] != ups[0].ID {
		t.Errorf("tags = %v; want the media id", tags)
	}
}

// procStatus reads a "Vm..." line of /proc/self/status, in bytes.
func procStatus(field string) (uint64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return 0, false
		}
		kb, err := strconv.ParseUint(fields[0], 10, 64)
		return kb << 10, err == nil
	}
	return 0, false
}

// checksumRecorder notes the CRC64NVME checksum of the objects GetObject
// returns (the SDK validates the body against it when it is present).
type checksumRecorder struct {
	upload.S3API
	mu  sync.Mutex
	sum string
}

func (c *checksumRecorder) GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	out, err := c.S3API.GetObject(ctx, in, optFns...)
	if err == nil && strings.HasPrefix(aws.ToString(in.Key), "templates/") {
		c.mu.Lock()
		c.sum = aws.ToString(out.ChecksumCRC64NVME)
		c.mu.Unlock()
	}
	return out, err
}

func (c *checksumRecorder) checksum() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sum
}
