package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"mime"
	"path"
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
// prefix (the benchmark invokes the function itself), for any size;
// mediaEnv points the message media function at bench-media/.
var (
	uploadEnv = []string{"UPLOAD_PREFIX=bench/", "MAX_UPLOAD_BYTES=" + fmt.Sprint(4096*mib)}
	mediaEnv  = []string{"MEDIA_PREFIX=bench-media/", "MAX_UPLOAD_BYTES=" + fmt.Sprint(4096*mib)}
)

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

// put stores a new version of bench/<phone>/<name> (bench-media/ for
// UploadMediaFunction): every upload is of a version of its own, as each
// version is uploaded once.
func (r *runner) put(ctx context.Context, name string, size int64) (object, error) {
	return r.putAt(ctx, "bench/", name, size)
}

func (r *runner) putAt(ctx context.Context, prefix, name string, size int64) (object, error) {
	o := object{key: prefix + phone + "/" + name, size: size}
	out, err := r.st.S3Client().PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(r.st.Bucket), Key: aws.String(o.key), Body: io.NewSectionReader(content, 0, size),
		ContentLength: aws.Int64(size), ContentType: aws.String(mime.TypeByExtension(path.Ext(name))),
	})
	if err != nil {
		return o, fmt.Errorf("put %s: %w", o.key, err)
	}
	o.version = aws.ToString(out.VersionId)
	o.event, err = json.Marshal(localstack.S3EventForObject(r.st.Bucket, o.key, size, strings.Trim(aws.ToString(out.ETag), `"`), o.version))
	return o, err
}

// removeAll deletes every version under bench/ and bench-media/, so the
// data leaves MinIO's disk.
func (r *runner) removeAll(ctx context.Context) {
	cli := r.st.S3Client()
	for _, prefix := range []string{"bench/", "bench-media/"} {
		p := s3.NewListObjectVersionsPaginator(cli, &s3.ListObjectVersionsInput{Bucket: aws.String(r.st.Bucket), Prefix: aws.String(prefix)})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				progress("could not list %s in MinIO: %v", prefix, err)
				return
			}
			for _, v := range out.Versions {
				_, _ = cli.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(r.st.Bucket), Key: v.Key, VersionId: v.VersionId})
			}
		}
	}
}

// actionOf is the NXCloud action a runtime's uploads reach.
func actionOf(rt *lambdart.Runtime) string {
	if rt.Name() == localstack.UploadMediaFunction {
		return nxcloud.ActionUploadMedia
	}
	return nxcloud.ActionUploadTemplateFile
}

// upload invokes rt with o's event and fails unless NXCloud received the
// whole file, once; it returns MiB/s over the invocation.
func (r *runner) upload(ctx context.Context, rt *lambdart.Runtime, o object) (float64, error) {
	before := len(r.nx.Calls(actionOf(rt)))
	res, err := rt.Invoke(ctx, o.event)
	if err != nil {
		return 0, err
	}
	if calls := r.nx.Calls(actionOf(rt)); res.Error != nil || len(calls) != before+1 || calls[before].FileSize != o.size || calls[before].Code != 0 {
		return 0, fmt.Errorf("%s on %s: %d new NXCloud calls, result %s", rt.Name(), o.key, len(calls)-before, res.Payload)
	}
	return float64(o.size) / mib / res.Duration.Seconds(), nil
}

func (r *runner) uploads(ctx context.Context) error {
	defer r.removeAll(context.WithoutCancel(ctx))
	t := r.table("The upload functions (host builds) and their floors, `bench/peer` built the same way, invoked in turn (each repetition starting with the next one) through the Runtime API with the S3 event of an object in MinIO (a pseudo-random MiB repeated, `application/pdf`: a template file, or a message document up to its 100 MB limit), streaming to the local NXCloud of the benchmark process (which counts, hashes and discards the bytes). Throughput is the size over the invocation's duration; for the functions that includes their S3 calls before and after the transfer. Peak RSS is each process's VmHWM after all repetitions of a size, one fresh process per size, each warmed up with a 4 KiB upload; a new version of the object per repetition and function. Floors: **raw** copies the GetObject body into the signed POST with `io.Copy`; **read-it-all** reads the whole object into memory first.",
		"size", "reps", "template MiB/s", "message MiB/s", "raw MiB/s", "read-it-all MiB/s", "template / raw", "message / raw", "template peak RSS", "message peak RSS", "raw peak RSS", "read-it-all peak RSS")
	peaks := map[int][]float64{}
	creds := []string{"NXCLOUD_ACCESS_KEY=" + r.cred.AccessKey, "NXCLOUD_ACCESS_SECRET=" + r.cred.AccessSecret}
	ids := []string{localstack.UploadTemplateFileFunction, localstack.UploadMediaFunction, peerID, peerID}
	const message, raw = 1, 2
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
		var rts []*lambdart.Runtime // the functions, raw, read-it-all
		for i, env := range [][]string{uploadEnv, mediaEnv, creds, append(creds, "PEER_MODE=naive")} {
			if i == message && size*mib > 100*mib {
				rts = append(rts, nil) // over a message document's limit
				continue
			}
			rt, err := r.start(ctx, ids[i], env...)
			if err != nil {
				return err
			}
			defer rt.Close()
			o, err := r.putFor(ctx, rt, name, 4096)
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
			for j := range rts { // each in turn reads a fresh version first
				i := (j + rep) % len(rts)
				if rts[i] == nil {
					continue
				}
				o, err := r.putFor(ctx, rts[i], name, size*mib)
				v := 0.0
				if err == nil {
					v, err = r.upload(ctx, rts[i], o)
				}
				if err != nil {
					return err
				}
				tp[i] = append(tp[i], v)
			}
		}
		rss := make([]string, len(rts))
		for i, rt := range rts {
			if rt == nil {
				rss[i] = "n/a"
				continue
			}
			peak, err := rt.PeakRSS()
			if err != nil {
				return err
			}
			rss[i] = fmt.Sprintf("%.1f MiB", float64(peak)/mib)
			if i < raw {
				peaks[i] = append(peaks[i], float64(peak)/mib)
			}
			_ = rt.Close()
		}
		ratios := make([]string, raw)
		for i := range raw {
			ratios[i] = "n/a"
			if rts[i] == nil {
				continue
			}
			ratio := median(tp[i]) / median(tp[raw])
			ratios[i] = fmt.Sprintf("%.2fx", ratio)
			if goal, ok := map[int64]float64{1: 0.5, 16: 0.9}[size]; ok {
				r.target(fmt.Sprintf("%s %d MiB throughput vs raw io.Copy", []string{"template file", "message media"}[i], size),
					fmt.Sprintf("%.2fx (%.0f vs %.0f MiB/s)", ratio, median(tp[i]), median(tp[raw])), fmt.Sprintf(">= %.1fx", goal), ratio >= goal)
			}
		}
		msg := "n/a"
		if rts[message] != nil {
			msg = dist(tp[message], "%.0f")
		}
		t.row(fmt.Sprintf("%d MiB", size), reps, dist(tp[0], "%.0f"), msg, dist(tp[raw], "%.0f"), dist(tp[3], "%.0f"), ratios[0], ratios[1], rss[0], rss[1], rss[2], rss[3])
	}
	for i, what := range []string{"template file", "message media"} {
		lo, hi := slices.Min(peaks[i]), slices.Max(peaks[i])
		r.target(fmt.Sprintf("%s function peak RSS flat over the sizes", what),
			fmt.Sprintf("%.1f–%.1f MiB", lo, hi), "spread <= 8 MiB, all < 32 MiB", hi-lo <= 8 && hi < 32)
	}
	return nil
}

// putFor stores a new version of name for rt: under bench-media/ for the
// message media function, else under bench/.
func (r *runner) putFor(ctx context.Context, rt *lambdart.Runtime, name string, size int64) (object, error) {
	if rt.Name() == localstack.UploadMediaFunction {
		return r.putAt(ctx, "bench-media/", name, size)
	}
	return r.put(ctx, name, size)
}

// s3Requests counts the S3 requests of one successful upload of a small
// object by each warm upload function.
func (r *runner) s3Requests(ctx context.Context) error {
	defer r.removeAll(context.WithoutCancel(ctx))
	counter, err := r.st.CountS3()
	if err != nil {
		return err
	}
	t := r.table("Every S3 request an upload function makes for one successful upload of a 4 KiB object (a warm function, `AWS_ENDPOINT_URL_S3` pointed at a counting reverse proxy in front of MinIO), by operation.", "function", "operation", "requests")
	for _, c := range []struct {
		id  string
		env []string
	}{{localstack.UploadTemplateFileFunction, uploadEnv}, {localstack.UploadMediaFunction, mediaEnv}} {
		rt, err := r.start(ctx, c.id, append(c.env, "AWS_ENDPOINT_URL_S3="+counter.URL)...)
		if err != nil {
			return err
		}
		defer rt.Close()
		var total int
		var ops map[string]int
		for i := range 2 { // the first warms the function up, the second is counted
			o, err := r.putFor(ctx, rt, fmt.Sprintf("requests-%d.pdf", i), 4096)
			if err == nil {
				counter.Take()
				_, err = r.upload(ctx, rt, o)
			}
			if err != nil {
				return err
			}
			total, ops = counter.Take()
		}
		for _, op := range slices.Sorted(maps.Keys(ops)) {
			t.row(short[c.id], op, ops[op])
		}
		t.row(short[c.id], "**total**", total)
		r.target(fmt.Sprintf("S3 requests per successful upload (%s)", short[c.id]), fmt.Sprint(total), "<= 6", total <= 6)
	}
	return nil
}
