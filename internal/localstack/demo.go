package localstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/miniotest"
)

// EnsureMinIO builds the pinned MinIO server with `make minio` when it is not
// installed yet, printing a progress line while the build runs.
func EnsureMinIO(ctx context.Context, w io.Writer) error {
	if _, err := miniotest.FindBinary(); err == nil {
		return nil
	}
	root, err := FindRepoRoot()
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "local: MinIO is not installed: building the pinned version once with `make minio` (about 4 minutes)")
	cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "minio")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = w, w
	done := make(chan error, 1)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("make minio: %w", err)
			}
			fmt.Fprintf(w, "local: MinIO built in %s\n", time.Since(start).Round(time.Second))
			_, err = miniotest.FindBinary()
			return err
		case <-tick.C:
			fmt.Fprintf(w, "local: still building MinIO (%s)\n", time.Since(start).Round(time.Second))
		}
	}
}

// samplePDF is a minimal, valid one-page PDF.
const samplePDF = "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n" +
	"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n" +
	"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n" +
	"trailer<</Root 1 0 R>>\n%%EOF\n"

// Demo walks through the bundle against a running stack: upload a sample PDF,
// read its NXCloud id back from the object's tags, GET it, DELETE it, GET it
// again and show the error. Each step prints what it did and what came back.
func Demo(ctx context.Context, st *Stack, w io.Writer, phone string) error {
	if phone == "" {
		phone = DefaultPhone
	}
	cli := st.S3Client()
	key := st.Prefix + phone + "/menu card.pdf"

	fmt.Fprintf(w, "\n1. upload a sample PDF to s3://%s/%s\n", st.Bucket, key)
	put, err := cli.PutObject(ctx, &s3.PutObjectInput{
		Bucket:      aws.String(st.Bucket),
		Key:         aws.String(key),
		Body:        bytes.NewReader([]byte(samplePDF)),
		ContentType: aws.String("application/pdf"),
	})
	if err != nil {
		return fmt.Errorf("put object: %w", err)
	}
	fmt.Fprintf(w, "   version %s, %d bytes\n", aws.ToString(put.VersionId), len(samplePDF))

	fmt.Fprintln(w, "\n2. wait for the upload function to tag the object")
	tags, err := WaitForTag(ctx, cli, st.Bucket, key, "nxcloud-status", 60*time.Second)
	if err != nil {
		return err
	}
	for _, k := range []string{"nxcloud-status", "nxcloud-media-id", "nxcloud-error"} {
		if v, ok := tags[k]; ok {
			fmt.Fprintf(w, "   %s = %s\n", k, v)
		}
	}
	id := tags["nxcloud-media-id"]
	if tags["nxcloud-status"] != "uploaded" || id == "" {
		return fmt.Errorf("the upload was not accepted: %v", tags)
	}

	url := st.APIURL + "/media/" + id + "?business_phone=" + phone
	steps := []struct{ title, method string }{
		{"3. GET the media from NXCloud through the HTTP API", http.MethodGet},
		{"4. DELETE it", http.MethodDelete},
		{"5. GET it again: NXCloud no longer knows it", http.MethodGet},
	}
	for _, s := range steps {
		fmt.Fprintf(w, "\n%s\n   %s %s\n", s.title, s.method, url)
		status, body, err := call(ctx, s.method, url)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "   %d %s\n", status, body)
	}
	fmt.Fprintln(w, "\ndone")
	return nil
}

// WaitForTag polls the object's tags until tag is set or the wait ends.
func WaitForTag(ctx context.Context, cli *s3.Client, bucket, key, tag string, wait time.Duration) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		out, err := cli.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err == nil {
			tags := map[string]string{}
			for _, t := range out.TagSet {
				tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			if _, ok := tags[tag]; ok {
				return tags, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, errors.New("the object was not tagged in time: see the UploadTemplateFileFunction log lines above")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func call(ctx context.Context, method, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(bytes.TrimSpace(b)), err
}
