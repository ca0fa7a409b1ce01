// Command upload-template-file is UploadTemplateFileFunction: for every S3
// ObjectCreated record under UPLOAD_PREFIX it streams the object to NXCloud's
// uploadTemplateFile and tags it with the media id (pkg/upload).
//
// It only wires things together, once per container at init: configuration,
// credentials, the NXCloud client and the metrics from pkg/app, an S3 client
// (path-style addressing when AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL points
// at a local S3 endpoint), and the upload handler, whose every Result is
// recorded as a metric, given to lambda.Start.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/app"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/upload"
)

func main() {
	logger := app.NewLogger(os.Getenv)
	a, err := app.New(context.Background(), os.Getenv, logger)
	if err != nil {
		app.InitFailed(logger, os.Getenv, err)
	}
	// A local S3 endpoint (MinIO) is addressed path-style.
	client := s3.NewFromConfig(a.AWS, upload.S3Options(app.LocalEndpoint(os.Getenv, "AWS_ENDPOINT_URL_S3")))
	h := upload.NewHandler(upload.Config{
		Prefix:               a.Config.UploadPrefix,
		DefaultBusinessPhone: a.Config.BusinessPhone,
		MaxUploadBytes:       a.Config.MaxUploadBytes,
		Lease:                a.Config.ClaimLease,
		Observe: func(ctx context.Context, r upload.Result) {
			a.Metrics.Upload(ctx, string(r.Outcome), r.BytesSent())
		},
	}, client, a.NXCloud, logger)
	lambda.Start(h.Handle)
}
