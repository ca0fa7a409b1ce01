package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/bench"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localstack"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
)

const (
	mib          = 1 << 20
	uploadPrefix = "bench/" // outside the stack's trigger prefix: no event fires, we invoke ourselves
)

// pattern is size bytes of a pseudo-random 1 MiB block repeated, readable and
// seekable without holding the object in memory.
type pattern struct {
	block []byte
	size  int64
	off   int64
}

func newPattern(size int64) *pattern {
	b := make([]byte, mib)
	rng := rand.NewChaCha8([32]byte{7, 7, 7})
	_, _ = rng.Read(b)
	return &pattern{block: b, size: size}
}

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.size {
		return 0, io.EOF
	}
	if rest := p.size - p.off; int64(len(b)) > rest {
		b = b[:rest]
	}
	n := 0
	for n < len(b) {
		i := (p.off + int64(n)) % int64(len(p.block))
		n += copy(b[n:], p.block[i:])
	}
	p.off += int64(n)
	return n, nil
}

func (p *pattern) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += p.off
	case io.SeekEnd:
		offset += p.size
	}
	if offset < 0 {
		return 0, errors.New("pattern: negative offset")
	}
	p.off = offset
	return offset, nil
}

// object is one object put for the benchmark.
type object struct {
	key, version, etag string
	size               int64
}

func (r *runner) putObject(ctx context.Context, key string, size int64) (object, error) {
	out, err := r.st.S3Client().PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(r.st.Bucket), Key: aws.String(key), Body: newPattern(size),
		ContentLength: aws.Int64(size), ContentType: aws.String("application/pdf"),
	})
	if err != nil {
		return object{}, fmt.Errorf("put %s: %w", key, err)
	}
	return object{key: key, version: aws.ToString(out.VersionId), etag: strings.Trim(aws.ToString(out.ETag), `"`), size: size}, nil
}

// deleteObject removes every version of key (and its delete markers), so the
// data leaves MinIO's disk.
func (r *runner) deleteObject(ctx context.Context, key string) error {
	cli := r.st.S3Client()
	out, err := cli.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(r.st.Bucket), Prefix: aws.String(key)})
	if err != nil {
		return err
	}
	for _, v := range out.Versions {
		if aws.ToString(v.Key) != key {
			continue
		}
		if _, err := cli.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(r.st.Bucket), Key: v.Key, VersionId: v.VersionId}); err != nil {
			return err
		}
	}
	for _, m := range out.DeleteMarkers {
		if aws.ToString(m.Key) == key {
			_, _ = cli.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(r.st.Bucket), Key: m.Key, VersionId: m.VersionId})
		}
	}
	return nil
}

// event is the S3 event of o.
func (r *runner) event(o object) ([]byte, error) {
	return json.Marshal(localstack.S3EventForObject(r.st.Bucket, o.key, o.size, o.etag, o.version))
}

// uploadOnce invokes the function for o, checks that NXCloud received the
// whole file and that the object is tagged, then removes the tags so the same
// event uploads again (a tagged object is skipped as a duplicate).
func (r *runner) uploadOnce(ctx context.Context, rt *lambdart.Runtime, o object) (*lambdart.Result, error) {
	ev, err := r.event(o)
	if err != nil {
		return nil, err
	}
	before := len(r.nx.Calls(nxcloud.ActionUploadTemplateFile))
	res, err := rt.Invoke(ctx, ev)
	if err != nil {
		return nil, err
	}
	if res.Error != nil {
		return nil, fmt.Errorf("upload %s: %s: %s", o.key, res.Error.Type, res.Error.Message)
	}
	calls := r.nx.Calls(nxcloud.ActionUploadTemplateFile)
	if len(calls) != before+1 || calls[len(calls)-1].FileSize != o.size || calls[len(calls)-1].Code != 0 {
		return nil, fmt.Errorf("upload %s: NXCloud did not receive the %d bytes once (%d new calls)", o.key, o.size, len(calls)-before)
	}
	cli := r.st.S3Client()
	tags, err := cli.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String(r.st.Bucket), Key: aws.String(o.key), VersionId: aws.String(o.version)})
	if err != nil {
		return nil, err
	}
	uploaded := false
	for _, t := range tags.TagSet {
		uploaded = uploaded || (aws.ToString(t.Key) == "nxcloud-status" && aws.ToString(t.Value) == "uploaded")
	}
	if !uploaded {
		return nil, fmt.Errorf("upload %s: object not tagged nxcloud-status=uploaded", o.key)
	}
	if _, err := cli.DeleteObjectTagging(ctx, &s3.DeleteObjectTaggingInput{Bucket: aws.String(r.st.Bucket), Key: aws.String(o.key), VersionId: aws.String(o.version)}); err != nil {
		return nil, err
	}
	return res, nil
}

// peerResult is one run of bench/peer.
type peerResult struct {
	seconds, cpu float64
	transfer     float64 // seconds NXCloud spent receiving the upload
	maxRSS       int64
}

// lastUpload is the latest upload call the local NXCloud recorded.
func (r *runner) lastUpload() nxcloudtest.Call {
	calls := r.nx.Calls(nxcloud.ActionUploadTemplateFile)
	if len(calls) == 0 {
		return nxcloudtest.Call{}
	}
	return calls[len(calls)-1]
}

func (r *runner) runPeer(ctx context.Context, mode string, o object) (peerResult, error) {
	cmd := exec.CommandContext(ctx, r.hostBin[peerID], "-mode="+mode, "-bucket="+r.st.Bucket, "-key="+o.key,
		"-version="+o.version, "-nxcloud="+r.nxURL, "-phone="+phone, "-type=application/pdf", "-name=bench.pdf")
	cmd.Env = append(r.functionEnv(), "NXCLOUD_ACCESS_KEY="+r.cred.AccessKey, "NXCLOUD_ACCESS_SECRET="+r.cred.AccessSecret)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return peerResult{}, fmt.Errorf("peer -mode=%s: %w: %s", mode, err, stderr.String())
	}
	var rep struct {
		Bytes   int64   `json:"bytes"`
		Seconds float64 `json:"seconds"`
		PeakRSS int64   `json:"peak_rss"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		return peerResult{}, fmt.Errorf("peer -mode=%s printed %q: %w", mode, out, err)
	}
	if rep.Bytes != o.size {
		return peerResult{}, fmt.Errorf("peer -mode=%s sent %d bytes, want %d", mode, rep.Bytes, o.size)
	}
	ps := cmd.ProcessState
	return peerResult{seconds: rep.Seconds, cpu: (ps.UserTime() + ps.SystemTime()).Seconds(), maxRSS: rep.PeakRSS,
		transfer: r.lastUpload().Duration.Seconds()}, nil
}

// uploads measures the streaming upload for every size.
func (r *runner) uploads(ctx context.Context) error {
	env := []string{"UPLOAD_PREFIX=" + uploadPrefix, "MAX_UPLOAD_BYTES=" + fmt.Sprint(int64(4096)*mib)}
	warm, err := r.putObject(ctx, uploadPrefix+phone+"/warmup.pdf", 4096)
	if err != nil {
		return err
	}
	defer func() { _ = r.deleteObject(context.WithoutCancel(ctx), warm.key) }()
	for _, sizeMiB := range r.plan.uploadSizesMiB {
		if err := r.uploadSize(ctx, sizeMiB, warm, env); err != nil {
			return fmt.Errorf("%d MiB: %w", sizeMiB, err)
		}
	}
	return nil
}

func (r *runner) uploadSize(ctx context.Context, sizeMiB int64, warm object, env []string) error {
	size := sizeMiB * mib
	reps := r.plan.uploadReps(sizeMiB)
	r.progress("upload %d MiB x %d", sizeMiB, reps)
	o, err := r.putObject(ctx, fmt.Sprintf("%s%s/object-%dmib.pdf", uploadPrefix, phone, sizeMiB), size)
	if err != nil {
		return err
	}
	defer func() {
		if err := r.deleteObject(context.WithoutCancel(ctx), o.key); err != nil {
			r.progress("could not delete %s from MinIO: %v", o.key, err)
		}
	}()
	rt, err := lambdart.Start(ctx, lambdart.Function{
		Name: localstack.UploadTemplateFileFunction, Path: r.hostBin[localstack.UploadTemplateFileFunction],
		Env: r.functionEnv(env...), Timeout: 15 * time.Minute,
	})
	if err != nil {
		return err
	}
	defer rt.Close()
	// A small object first: the secret fetch and the connections are not
	// part of the measurement (a warm function).
	if _, err := r.uploadOnce(ctx, rt, warm); err != nil {
		return err
	}
	row := uploadRow{sizeMiB: sizeMiB, reps: int64(reps)}
	var fnTP, fnCPU, rawTP, rawCPU, naiveTP, naiveCPU []float64
	var rawRSS, naiveRSS, fnXfer, rawXfer, fnFixed, rawFixed []float64
	for i := 0; i < reps; i++ {
		cpu0, err := procCPU(rt.PID(), r.rep.machine.clockTicks)
		if err != nil {
			return err
		}
		res, err := r.uploadOnce(ctx, rt, o)
		if err != nil {
			return err
		}
		cpu1, err := procCPU(rt.PID(), r.rep.machine.clockTicks)
		if err != nil {
			return err
		}
		gib := float64(size) / (1 << 30)
		xfer := r.lastUpload().Duration.Seconds()
		fnXfer = append(fnXfer, float64(size)/mib/xfer)
		fnFixed = append(fnFixed, (res.Duration.Seconds()-xfer)*1000)
		fnTP = append(fnTP, float64(size)/mib/res.Duration.Seconds())
		fnCPU = append(fnCPU, (cpu1-cpu0)/gib)
		for _, mode := range []string{"raw", "naive"} {
			p, err := r.runPeer(ctx, mode, o)
			if err != nil {
				return err
			}
			if mode == "raw" {
				rawXfer = append(rawXfer, float64(size)/mib/p.transfer)
				rawFixed = append(rawFixed, (p.seconds-p.transfer)*1000)
				rawTP, rawCPU, rawRSS = append(rawTP, float64(size)/mib/p.seconds), append(rawCPU, p.cpu/gib), append(rawRSS, float64(p.maxRSS)/mib)
			} else {
				naiveTP, naiveCPU, naiveRSS = append(naiveTP, float64(size)/mib/p.seconds), append(naiveCPU, p.cpu/gib), append(naiveRSS, float64(p.maxRSS)/mib)
			}
		}
	}
	peak, err := rt.PeakRSS()
	if err != nil {
		return err
	}
	row.fnTP, row.fnCPU, row.fnRSS = bench.Summarize(fnTP), bench.Summarize(fnCPU), float64(peak)/mib
	row.rawTP, row.rawCPU, row.rawRSS = bench.Summarize(rawTP), bench.Summarize(rawCPU), bench.Summarize(rawRSS)
	row.naiveTP, row.naiveCPU, row.naiveRSS = bench.Summarize(naiveTP), bench.Summarize(naiveCPU), bench.Summarize(naiveRSS)
	row.fnXfer, row.rawXfer = bench.Summarize(fnXfer), bench.Summarize(rawXfer)
	row.fnFixed, row.rawFixed = bench.Summarize(fnFixed), bench.Summarize(rawFixed)
	r.rep.uploads = append(r.rep.uploads, row)
	return nil
}
