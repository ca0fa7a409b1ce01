// Command reconcile is ReconcileFunction: on a schedule, or invoked with any
// JSON event, it sends through the upload pipeline every version under
// UPLOAD_PREFIX in MEDIA_BUCKET that its event left without a verdict
// (pkg/reconcile), and answers {"examined","pending","uploaded","rejected","failed"}.
//
// It only wires things together, once per container at init: configuration,
// credentials, the NXCloud client and the metrics from pkg/app, an S3 client
// (path-style for a local S3 endpoint), the upload handler (the same as
// UploadTemplateFileFunction's, with a short wait for claims held elsewhere)
// and the sweep given to app.Start.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/app"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/config"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/reconcile"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/upload"
)

func main() {
	a := app.Main(config.EnvMediaBucket)
	client := s3.NewFromConfig(a.AWS, upload.S3Options(app.LocalEndpoint(os.Getenv, "AWS_ENDPOINT_URL_S3")))
	cfg := upload.ConfigFrom(a.Config)
	cfg.ClaimWait = reconcile.DefaultClaimWait // a short wait for claims held elsewhere
	cfg.Observe = func(ctx context.Context, r upload.Result) { a.Metrics.Upload(ctx, string(r.Outcome), r.BytesSent()) }
	sw := reconcile.New(reconcile.Config{Bucket: a.Config.MediaBucket, Prefix: a.Config.UploadPrefix, Settle: a.Config.Settle},
		client, upload.NewHandler(cfg, client, a.NXCloud, a.Logger), a.Logger)
	app.Start(sw.Handle, a.Metrics)
}
