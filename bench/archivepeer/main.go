// Command archivepeer is the floor of the archive function: a Lambda
// function that cmd/bench invokes through the Runtime API like
// ArchiveMediaFunction, so that their durations and peak memory compare. It
// downloads {"url"} with a plain http.Client and copies the body into one
// S3 PutObject of {"bucket","key"} with its Content-Length (the SDK reads it
// with io.Copy): no getMedia, no check of the address, the size or the
// answer, no conditional write. It uses the S3 options of the archive
// (s3archive.S3Options) and is configured like the functions (the AWS_*
// variables); it answers the bytes stored.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/archive/s3archive"
)

type event struct {
	URL    string `json:"url"`
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
}

func main() {
	cfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "archivepeer:", err)
		os.Exit(1)
	}
	endpoint := os.Getenv("AWS_ENDPOINT_URL_S3")
	cli := s3.NewFromConfig(cfg, s3archive.S3Options(endpoint != "", len(endpoint) > 7 && endpoint[:7] == "http://"))
	hc := &http.Client{}
	lambda.Start(func(ctx context.Context, ev event) (int64, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ev.URL, nil)
		if err != nil {
			return 0, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, err = cli.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(ev.Bucket), Key: aws.String(ev.Key), Body: resp.Body, ContentLength: aws.Int64(resp.ContentLength)})
		return resp.ContentLength, err
	})
}
