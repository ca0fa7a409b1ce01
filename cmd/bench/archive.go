package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localstack"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/archive/s3archive"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
)

// archiveEnv lets the archive take every size measured.
var archiveEnv = []string{"MAX_UPLOAD_BYTES=" + fmt.Sprint(1024*mib)}

// fileHost serves /<size>, a file of that many bytes (the pseudo-random MiB
// repeated), with its Content-Length, or chunked under /chunked/<size>.
func fileHost() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, chunked := strings.CutPrefix(r.URL.Path, "/chunked")
		size, err := strconv.ParseInt(strings.TrimPrefix(p, "/"), 10, 64)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		if !chunked {
			w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		}
		w.Header().Set("Content-Type", "video/mp4")
		_, _ = io.Copy(w, io.NewSectionReader(content, 0, size))
	}))
}

// archiveOnce archives a new media id of size bytes from host with rt and
// fails unless the function stored it (201 with its size); it returns MiB/s
// over the invocation.
func (r *runner) archiveOnce(ctx context.Context, rt *lambdart.Runtime, host string, size int64, chunked bool, n int) (float64, error) {
	file := host + "/" + strconv.FormatInt(size, 10)
	if chunked {
		file = host + "/chunked/" + strconv.FormatInt(size, 10)
	}
	id := r.nx.AddMedia(nxcloudtest.Media{ID: fmt.Sprintf("bench-archive-%d-%t-%d", size, chunked, n), MimeType: "video/mp4",
		FileName: "clip.mp4", BusinessPhone: phone, URL: file + "?Signature=bench"})
	req := httptest.NewRequest(http.MethodPost, "/media/"+url.PathEscape(id)+"/archive?business_phone="+phone, nil)
	ev, _ := json.Marshal(localstack.NewAPIGatewayEvent(req, "POST /media/{mediaId}/archive", map[string]string{"mediaId": id}, nil))
	res, err := rt.Invoke(ctx, ev)
	if err != nil {
		return 0, err
	}
	resp, err := localstack.ParseAPIGatewayResponse(res.Payload)
	var doc struct {
		Size int64 `json:"size"`
	}
	if err != nil || res.Error != nil || resp.Status != http.StatusCreated || json.Unmarshal(resp.Body, &doc) != nil || doc.Size != size {
		return 0, fmt.Errorf("%s archiving %d bytes answered %s", rt.Name(), size, res.Payload)
	}
	return float64(size) / mib / res.Duration.Seconds(), nil
}

// copyOnce has the floor copy size bytes from host into the bucket.
func (r *runner) copyOnce(ctx context.Context, rt *lambdart.Runtime, host string, size int64, n int) (float64, error) {
	ev, _ := json.Marshal(map[string]string{"url": host + "/" + strconv.FormatInt(size, 10), "bucket": r.st.Bucket,
		"key": fmt.Sprintf("%sbench-floor/%d-%d", r.st.ArchivePrefix, size, n)})
	res, err := rt.Invoke(ctx, ev)
	if err != nil {
		return 0, err
	}
	if res.Error != nil || string(res.Payload) != strconv.FormatInt(size, 10) {
		return 0, fmt.Errorf("%s copying %d bytes answered %s", rt.Name(), size, res.Payload)
	}
	return float64(size) / mib / res.Duration.Seconds(), nil
}

// removeArchives deletes every version the section stored.
func (r *runner) removeArchives(ctx context.Context) {
	cli := r.st.S3Client()
	for _, prefix := range []string{r.st.ArchivePrefix} {
		out, err := cli.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(r.st.Bucket), Prefix: aws.String(prefix)})
		if err != nil {
			progress("could not list %s in MinIO: %v", prefix, err)
			continue
		}
		for _, v := range out.Versions {
			_, _ = cli.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(r.st.Bucket), Key: v.Key, VersionId: v.VersionId})
		}
	}
}

func (r *runner) archives(ctx context.Context) error {
	defer r.removeArchives(context.WithoutCancel(ctx))
	host := fileHost()
	defer host.Close()
	t := r.table("ArchiveMediaFunction (host build) and its floor, `bench/archivepeer` built the same way, invoked in turn (each repetition starting with the next one) through the Runtime API: the function with the POST /media/{mediaId}/archive event of a new media id each time (getMedia to the local NXCloud of the benchmark process, HeadObject, the download, the conditional PutObject into MinIO), the floor with the same file's URL (a plain GET whose body goes into one PutObject with `io.Copy`). The file host runs in the benchmark process and serves the pseudo-random MiB repeated, with its Content-Length; the rows *no Content-Length* serve it chunked (the function's multipart upload through the SDK's upload manager, 5 MiB parts; the floor cannot put a body of unknown length). Throughput is the size over the invocation's duration. Peak RSS is each process's VmHWM after all repetitions of a size, one fresh process per size, each warmed up with a 4 KiB file.",
		"size", "reps", "function MiB/s", "raw MiB/s", "function / raw", "function peak RSS", "raw peak RSS")
	var peaks, multipartPeaks []float64
	type run struct {
		size    int64
		chunked bool
	}
	var runs, chunked []run
	for _, m := range r.archiveMiB {
		runs = append(runs, run{m * mib, false})
		if m*mib > 2*s3archive.PartSize {
			chunked = append(chunked, run{m * mib, true})
		}
	}
	runs = append(runs, chunked...)
	for _, c := range runs {
		reps := r.uploadReps
		if c.size <= 16*mib {
			reps *= 3 // small files are quick but noisy: more of them
		}
		progress("archive %d MiB (chunked %t) x %d", c.size/mib, c.chunked, reps)
		fn, err := r.start(ctx, localstack.ArchiveMediaFunction, archiveEnv...)
		if err != nil {
			return err
		}
		defer fn.Close()
		peer, err := r.start(ctx, archivePeerID)
		if err != nil {
			return err
		}
		defer peer.Close()
		if _, err := r.archiveOnce(ctx, fn, host.URL, 4096, c.chunked, -1); err != nil {
			return err
		}
		if _, err := r.copyOnce(ctx, peer, host.URL, 4096, -1); err != nil {
			return err
		}
		var ftp, ptp []float64
		for rep := range reps {
			for j := range 2 {
				if (j+rep)%2 == 0 {
					v, err := r.archiveOnce(ctx, fn, host.URL, c.size, c.chunked, rep)
					if err != nil {
						return err
					}
					ftp = append(ftp, v)
				} else if !c.chunked {
					v, err := r.copyOnce(ctx, peer, host.URL, c.size, rep)
					if err != nil {
						return err
					}
					ptp = append(ptp, v)
				}
			}
		}
		fpeak, err := fn.PeakRSS()
		if err != nil {
			return err
		}
		ppeak, err := peer.PeakRSS()
		if err != nil {
			return err
		}
		_, _ = fn.Close(), peer.Close()
		r.removeArchives(ctx) // MinIO's disk is the machine's
		name := fmt.Sprintf("%d MiB", c.size/mib)
		if c.chunked {
			t.row(name+", no Content-Length", reps, dist(ftp, "%.0f"), "—", "—", fmt.Sprintf("%.1f MiB", float64(fpeak)/mib), "—")
			multipartPeaks = append(multipartPeaks, float64(fpeak)/mib)
			continue
		}
		peaks = append(peaks, float64(fpeak)/mib)
		ratio := median(ftp) / median(ptp)
		t.row(name, reps, dist(ftp, "%.0f"), dist(ptp, "%.0f"), fmt.Sprintf("%.2fx", ratio), fmt.Sprintf("%.1f MiB", float64(fpeak)/mib), fmt.Sprintf("%.1f MiB", float64(ppeak)/mib))
		if c.size >= 16*mib {
			r.target(fmt.Sprintf("%d MiB archive throughput vs raw io.Copy", c.size/mib), fmt.Sprintf("%.2fx (%.0f vs %.0f MiB/s)", ratio, median(ftp), median(ptp)), ">= 0.9x", ratio >= 0.9)
		}
	}
	lo, hi := slices.Min(peaks), slices.Max(peaks)
	r.target(fmt.Sprintf("archive peak RSS flat from %d to %d MiB", r.archiveMiB[0], slices.Max(r.archiveMiB)),
		fmt.Sprintf("%.1f–%.1f MiB", lo, hi), "spread <= 8 MiB, all < 32 MiB", hi-lo <= 8 && hi < 32)
	if len(chunked) > 0 {
		lo, hi := slices.Min(multipartPeaks), slices.Max(multipartPeaks)
		r.target(fmt.Sprintf("archive peak RSS without Content-Length (multipart) flat from %d to %d MiB", chunked[0].size/mib, chunked[len(chunked)-1].size/mib),
			fmt.Sprintf("%.1f–%.1f MiB", lo, hi), "spread <= 8 MiB", hi-lo <= 8)
	}
	return nil
}
