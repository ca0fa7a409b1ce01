package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localstack"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

const mib = 1 << 20

// uploadEnv points the upload function at bench/, outside the stack's trigger
// prefix (the benchmark invokes the function itself), for any size.
var uploadEnv = []string{"UPLOAD_PREFIX=bench/", "MAX_UPLOAD_BYTES=" + fmt.Sprint(4096*mib)}

// block repeats a pseudo-random MiB as an io.ReaderAt: objects of any size,
// never in memory as a whole.
type block []byte

func (b block) ReadAt(p []byte, off int64) (int, error) {
	for n := 0; n < len(p); {
		n += copy(p[n:], b[(off+int64(n))%int64(len(b)):])
	}
	return len(p), nil
}

var content = func() block {
	b := make(block, mib)
	_, _ = rand.NewChaCha8([32]byte{7}).Read(b)
	return b
}()

// object is a version put for the benchmark, and its S3 event.
type object struct {
	key, version string
	size         int64
	event        []byte
}

// put stores a new version of bench/<phone>/<name>: every upload is of a
// version of its own, as each version is uploaded once.
func (r *runner) put(ctx context.Context, name string, size int64) (object, error) {
	o := object{key: "bench/" + phone + "/" + name, size: size}
	out, err := r.st.S3Client().PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(r.st.Bucket), Key: aws.String(o.key), Body: io.NewSectionReader(content, 0, size),
		ContentLength: aws.Int64(size), ContentType: aws.String("application/pdf"),
	})
	if err != nil {
		return o, fmt.Errorf("put %s: %w", o.key, err)
	}
	o.version = aws.ToString(out.VersionId)
	o.event, err = json.Marshal(localstack.S3EventForObject(r.st.Bucket, o.key, size, strings.Trim(aws.ToString(out.ETag), `"`), o.version))
	return o, err
}

// removeAll deletes every version under bench/, so the data leaves MinIO's
// disk.
func (r *runner) removeAll(ctx context.Context) {
	cli := r.st.S3Client()
	out, err := cli.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(r.st.Bucket), Prefix: aws.String("bench/")})
	if err != nil {
		progress("could not list bench/ in MinIO: %v", err)
		return
	}
	for _, v := range out.Versions {
		_, _ = cli.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(r.st.Bucket), Key: v.Key, VersionId: v.VersionId})
	}
}

// upload invokes rt with o's event and fails unless NXCloud received the
// whole file, once; it returns MiB/s over the invocation.
func (r *runner) upload(ctx context.Context, rt *lambdart.Runtime, o object) (float64, error) {
	before := len(r.nx.Calls(nxcloud.ActionUploadTemplateFile))
	res, err := rt.Invoke(ctx, o.event)
	if err != nil {
		return 0, err
	}
	if calls := r.nx.Calls(nxcloud.ActionUploadTemplateFile); res.Error != nil || len(calls) != before+1 || calls[before].FileSize != o.size || calls[before].Code != 0 {
		return 0, fmt.Errorf("%s on %s: %d new NXCloud calls, result %s", rt.Name(), o.key, len(calls)-before, res.Payload)
	}
	return float64(o.size) / mib / res.Duration.Seconds(), nil
}

func (r *runner) uploads(ctx context.Context) error {
	defer r.removeAll(context.WithoutCancel(ctx))
	t := r.table("The upload function (host build) and its floors, `bench/peer` built the same way, invoked in turn (each repetition starting with the next one) through the Runtime API with the S3 event of an object in MinIO (a pseudo-random MiB repeated, `application/pdf`), streaming to the local NXCloud of the benchmark process (which counts, hashes and discards the bytes). Throughput is the size over the invocation's duration; for the function that includes its S3 calls before and after the transfer. Peak RSS is each process's VmHWM after all repetitions of a size, one fresh process per size, each warmed up with a 4 KiB upload; a new version of the object per repetition. Floors: **raw** copies the GetObject body into the signed POST with `io.Copy`; **read-it-all** reads the whole object into memory first.",
		"size", "reps", "function MiB/s", "raw MiB/s", "read-it-all MiB/s", "function / raw", "function peak RSS", "raw peak RSS", "read-it-all peak RSS")
	var peaks []float64
	creds := []string{"NXCLOUD_ACCESS_KEY=" + r.cred.AccessKey, "NXCLOUD_ACCESS_SECRET=" + r.cred.AccessSecret}
	for _, size := range r.uploadMiB {
		reps := r.uploadReps // small files are quick but noisy: more of them
		switch {
		case size >= 1024:
			reps = min(reps, 3)
		case size <= 16:
			reps *= 3
		}
		progress("upload %d MiB x %d", size, reps)
		name := fmt.Sprintf("object-%dmib.pdf", size)
		var rts []*lambdart.Runtime // the function, raw, read-it-all
		for i, env := range [][]string{uploadEnv, creds, append(creds, "PEER_MODE=naive")} {
			rt, err := r.start(ctx, []string{localstack.UploadTemplateFileFunction, peerID, peerID}[i], env...)
			if err != nil {
				return err
			}
			defer rt.Close()
			o, err := r.put(ctx, name, 4096)
			if err == nil {
				_, err = r.upload(ctx, rt, o) // the secret fetch and the connections are not measured
			}
			if err != nil {
				return err
			}
			rts = append(rts, rt)
		}
		tp := make([][]float64, len(rts))
		for rep := range reps {
			o, err := r.put(ctx, name, size*mib)
			for j := range rts { // each in turn reads the fresh version first
				i, v := (j+rep)%len(rts), 0.0
				if err == nil {
					v, err = r.upload(ctx, rts[i], o)
				}
				tp[i] = append(tp[i], v)
			}
			if err != nil {
				return err
			}
		}
		rss := make([]string, len(rts))
		for i, rt := range rts {
			peak, err := rt.PeakRSS()
			if err != nil {
				return err
			}
			rss[i] = fmt.Sprintf("%.1f MiB", float64(peak)/mib)
			if i == 0 {
				peaks = append(peaks, float64(peak)/mib)
			}
			_ = rt.Close()
		}
		ratio := median(tp[0]) / median(tp[1])
		t.row(fmt.Sprintf("%d MiB", size), reps, dist(tp[0], "%.0f"), dist(tp[1], "%.0f"), dist(tp[2], "%.0f"), fmt.Sprintf("%.2fx", ratio), rss[0], rss[1], rss[2])
		if goal, ok := map[int64]float64{1: 0.5, 16: 0.9}[size]; ok {
			r.target(fmt.Sprintf("%d MiB throughput vs raw io.Copy", size), fmt.Sprintf("%.2fx (%.0f vs %.0f MiB/s)", ratio, median(tp[0]), median(tp[1])), fmt.Sprintf(">= %.1fx", goal), ratio >= goal)
		}
	}
	lo, hi := slices.Min(peaks), slices.Max(peaks)
	r.target(fmt.Sprintf("function peak RSS flat from %d to %d MiB", r.uploadMiB[0], r.uploadMiB[len(r.uploadMiB)-1]),
		fmt.Sprintf("%.1f–%.1f MiB", lo, hi), "spread <= 8 MiB, all < 32 MiB", hi-lo <= 8 && hi < 32)
	return nil
}

// s3Requests counts the S3 requests of one successful upload of a small
// object by a warm function.
func (r *runner) s3Requests(ctx context.Context) error {
	defer r.removeAll(context.WithoutCancel(ctx))
	counter, err := r.st.CountS3()
	if err != nil {
		return err
	}
	rt, err := r.start(ctx, localstack.UploadTemplateFileFunction, append(uploadEnv, "AWS_ENDPOINT_URL_S3="+counter.URL)...)
	if err != nil {
		return err
	}
	defer rt.Close()
	var total int
	var ops map[string]int
	for i := range 2 { // the first warms the function up, the second is counted
		o, err := r.put(ctx, fmt.Sprintf("requests-%d.pdf", i), 4096)
		if err == nil {
			counter.Take()
			_, err = r.upload(ctx, rt, o)
		}
		if err != nil {
			return err
		}
		total, ops = counter.Take()
	}
	t := r.table("Every S3 request the upload function makes for one successful upload of a 4 KiB object (a warm function, `AWS_ENDPOINT_URL_S3` pointed at a counting reverse proxy in front of MinIO), by operation.", "operation", "requests")
	for _, op := range slices.Sorted(maps.Keys(ops)) {
		t.row(op, ops[op])
	}
	t.row("**total**", total)
	r.target("S3 requests per successful upload", fmt.Sprint(total), "<= 6", total <= 6)
	return nil
}
