// Command peer is the floor of the upload function: a Lambda function that
// cmd/bench invokes through the Runtime API like the upload function, with
// the same S3 events, so that its duration and peak memory compare with the
// function's. It copies the event's object version from S3 into one signed
// NXCloud uploadTemplateFile POST with an exact Content-Length, without the
// function's checks, claim or tagging: with io.Copy (the raw floor), or,
// with PEER_MODE=naive, after reading the whole object into memory (the
// read-it-all floor). It is configured like the functions (NXCLOUD_BASE_URL,
// NXCLOUD_BUSINESS_PHONE, the AWS_* variables), plus NXCLOUD_ACCESS_KEY and
// NXCLOUD_ACCESS_SECRET.
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/bench"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/upload"
)

func main() {
	cfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "peer:", err)
		os.Exit(1)
	}
	cli := s3.NewFromConfig(cfg, upload.S3Options(os.Getenv("AWS_ENDPOINT_URL_S3") != ""))
	cred := nxcloud.Credentials{AccessKey: os.Getenv("NXCLOUD_ACCESS_KEY"), AccessSecret: os.Getenv("NXCLOUD_ACCESS_SECRET")}
	hc := &http.Client{}
	lambda.Start(func(ctx context.Context, ev events.S3Event) (int64, error) {
		rec := ev.Records[0].S3
		obj, err := cli.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(rec.Bucket.Name), Key: aws.String(rec.Object.URLDecodedKey), VersionId: aws.String(rec.Object.VersionID)})
		if err != nil {
			return 0, err
		}
		defer obj.Body.Close()
		var file io.Reader = obj.Body
		if os.Getenv("PEER_MODE") == "naive" {
			content, err := io.ReadAll(obj.Body)
			if err != nil {
				return 0, err
			}
			file = bytes.NewReader(content)
		}
		size := aws.ToInt64(obj.ContentLength)
		req, err := bench.NewUploadRequest(ctx, os.Getenv("NXCLOUD_BASE_URL"), cred, os.Getenv("NXCLOUD_BUSINESS_PHONE"), "bench.pdf", file, size)
		if err == nil {
			err = bench.Do(hc, req)
		}
		return size, err
	})
}
