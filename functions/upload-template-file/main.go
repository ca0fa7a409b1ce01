// Command upload-template-file is UploadTemplateFileFunction: for every S3
// ObjectCreated record under UPLOAD_PREFIX it streams the object to NXCloud's
// uploadTemplateFile and tags it with the media id (pkg/upload).
//
// It only wires things together, once per container at init: configuration,
// credentials, the NXCloud client and the metrics from pkg/app, an S3 client
// (path-style addressing when AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL points
// at a local S3 endpoint), and the upload handler, whose every Result is
// recorded as a metric, given to app.Start.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/app"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/upload"
)

func main() {
	a := app.Main()
	// A local S3 endpoint (MinIO) is addressed path-style.
	client := s3.NewFromConfig(a.AWS, upload.S3Options(app.LocalEndpoint(os.Getenv, "AWS_ENDPOINT_URL_S3")))
	cfg := upload.ConfigFrom(a.Config)
	cfg.Observe = func(ctx context.Context, r upload.Result) { a.Metrics.Upload(ctx, string(r.Outcome), r.BytesSent()) }
	app.Start(upload.NewHandler(cfg, client, a.NXCloud, a.Logger).Handle, a.Metrics)
}
