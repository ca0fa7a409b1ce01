package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localstack"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

// burst stores burstFiles files of 64 KiB at once and delivers each event
// twice (S3 delivers at least once) to 8 upload function instances: every
// file must reach NXCloud exactly once.
func (r *runner) burst(ctx context.Context) error {
	defer r.removeAll(context.WithoutCancel(ctx))
	const instances, size = 8, 64 << 10
	counter, err := r.st.CountS3()
	if err != nil {
		return err
	}
	rts := make([]*lambdart.Runtime, instances)
	for i := range rts {
		if rts[i], err = r.start(ctx, localstack.UploadTemplateFileFunction, append(uploadEnv, "AWS_ENDPOINT_URL_S3="+counter.URL)...); err != nil {
			return err
		}
		defer rts[i].Close()
	}
	progress("burst: storing %d files of 64 KiB", r.burstFiles)
	objs := make([]object, r.burstFiles)
	var g errgroup.Group
	g.SetLimit(16)
	for i := range objs {
		g.Go(func() (err error) {
			objs[i], err = r.put(ctx, fmt.Sprintf("burst-%05d.pdf", i), size)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	before := len(r.nx.Calls(nxcloud.ActionUploadTemplateFile))
	counter.Take()
	// Two deliveries of every event, the second on another instance, all
	// instances busy at once.
	queue := make(chan []byte, 2*len(objs))
	for _, o := range objs {
		queue <- o.event
	}
	for _, o := range objs {
		queue <- o.event
	}
	close(queue)
	var mu sync.Mutex
	var failures []string
	start := time.Now()
	var wg sync.WaitGroup
	for _, rt := range rts {
		wg.Go(func() {
			for ev := range queue {
				res, err := rt.Invoke(ctx, ev)
				if err != nil || res.Error != nil {
					mu.Lock()
					failures = append(failures, fmt.Sprint(err, res))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	calls := r.nx.Calls(nxcloud.ActionUploadTemplateFile)[before:]
	requests, _ := counter.Take()
	perFile := map[string]int{}
	for _, c := range calls {
		if c.Code == 0 {
			perFile[c.FileName]++
		}
	}
	once := 0
	for _, n := range perFile {
		if n == 1 {
			once++
		}
	}
	// The most calls NXCloud had in flight at once, from their arrival and
	// duration.
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for _, c := range calls {
		edges = append(edges, edge{c.Time, 1}, edge{c.Time.Add(c.Duration), -1})
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.delta - b.delta
	})
	inFlight, most := 0, 0
	for _, e := range edges {
		inFlight += e.delta
		most = max(most, inFlight)
	}
	t := r.table(fmt.Sprintf("%d files of 64 KiB stored at once under the upload prefix, each event delivered twice (the second delivery on another instance) to %d instances of the upload function invoked concurrently through the Runtime API; the local NXCloud counts what it stored, a counting proxy in front of MinIO the S3 requests.", len(objs), instances),
		"files", "deliveries", "failed deliveries", "uploaded exactly once", "NXCloud upload calls", "files per second", "S3 requests per file", "most NXCloud calls in flight")
	t.row(len(objs), 2*len(objs), len(failures), once, len(calls), fmt.Sprintf("%.0f", float64(len(objs))/took.Seconds()),
		fmt.Sprintf("%.2f", float64(requests)/float64(len(objs))), most)
	r.target(fmt.Sprintf("burst of %d files, two deliveries each, %d instances", len(objs), instances),
		fmt.Sprintf("%d of %d exactly once, %d calls", once, len(objs), len(calls)), "every file exactly once", once == len(objs) && len(calls) == len(objs) && len(failures) == 0)
	r.target("burst: S3 requests per file (both deliveries)", fmt.Sprintf("%.2f", float64(requests)/float64(len(objs))), "<= 9 (6 for the upload, 3 for the duplicate)", float64(requests) <= 9*float64(len(objs)))
	if len(failures) > 0 {
		progress("burst: %d failed deliveries, the first: %s", len(failures), failures[0])
	}
	return nil
}

// rejections times the decision on objects over their limit and counts the
// bytes of them read from S3: a template file over MAX_UPLOAD_BYTES (100 MiB,
// the default) and an image over 5 MB.
func (r *runner) rejections(ctx context.Context) error {
	defer r.removeAll(context.WithoutCancel(ctx))
	counter, err := r.st.CountS3()
	if err != nil {
		return err
	}
	t := r.table("One object over its limit per row, stored in MinIO, its event given to a warm function whose S3 endpoint is a counting proxy: the invocation's duration and the object's body bytes the proxy served (GetObject).",
		"function", "object", "decision", "invocation", "body bytes read")
	for _, c := range []struct {
		id, prefix, name string
		size             int64
		env              []string
	}{
		{localstack.UploadTemplateFileFunction, "bench/", "over-limit.pdf", r.rejectMiB*mib + 1, []string{"UPLOAD_PREFIX=bench/", "MAX_UPLOAD_BYTES=" + strconv.FormatInt(r.rejectMiB*mib, 10)}},
		{localstack.UploadMediaFunction, "bench-media/", "over-limit.jpg", 5*mib + 1, mediaEnv},
	} {
		rt, err := r.start(ctx, c.id, append(c.env, "AWS_ENDPOINT_URL_S3="+counter.URL)...)
		if err != nil {
			return err
		}
		defer rt.Close()
		warm, err := r.putAt(ctx, c.prefix, "warm.pdf", 4096)
		if err == nil {
			_, err = r.upload(ctx, rt, warm)
		}
		if err != nil {
			return err
		}
		o, err := r.putAt(ctx, c.prefix, c.name, c.size)
		if err != nil {
			return err
		}
		res, err := rt.Invoke(ctx, o.event)
		if err != nil {
			return err
		}
		if res.Error != nil {
			return fmt.Errorf("%s on %s: %s", c.id, o.key, res.Error.Message)
		}
		read := counter.BytesRead(r.st.Bucket, o.key)
		t.row(short[c.id], fmt.Sprintf("%s, %d bytes", o.key, c.size), "rejected", res.Duration.Round(time.Millisecond), read)
		r.target(fmt.Sprintf("%s over its limit (%d MiB + 1 byte): decision", short[c.id], c.size/mib),
			fmt.Sprintf("%s, %d body bytes read", res.Duration.Round(time.Millisecond), read), "< 1 s, 0 bytes", res.Duration < time.Second && read == 0)
	}
	return nil
}
