// Command upload-sessions is UploadSessionsFunction: API Gateway HTTP API
// `POST /uploads` (a presigned S3 PUT of the file under UPLOAD_PREFIX, or
// MEDIA_PREFIX for purpose message) and
// `GET /uploads/{uploadId}` (the upload's status and media id).
//
// It only wires things together, once per container at init: configuration
// (MEDIA_BUCKET required; no secret is read and NXCloud is never called), an
// S3 client (upload.S3Options: path-style addressing when AWS_ENDPOINT_URL_S3
// or AWS_ENDPOINT_URL points at a local S3 endpoint, so that upload URLs name
// it) and its presign client, the store of pkg/sessions, the HTTP handler of
// pkg/mediaapi and mediaapi.NewLambdaHandler, given to app.Start with the
// metrics (the cold start).
package main

import (
	"context"
	"os"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/app"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/config"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/mediaapi"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/metrics"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/sessions"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/upload"
)

func main() {
	logger := app.NewLogger(os.Getenv)
	cfg, err := config.FromEnv(os.Getenv, config.EnvMediaBucket)
	if err != nil {
		app.InitFailed(logger, os.Getenv, err)
	}
	awsCfg, err := app.LoadAWS(context.Background(), os.Getenv)
	if err != nil {
		app.InitFailed(logger, os.Getenv, err)
	}
	client := upload.S3Client(awsCfg)
	store := sessions.NewStore(sessions.Config{
		Bucket:      cfg.MediaBucket,
		Prefix:      cfg.UploadPrefix,
		MediaPrefix: cfg.MediaPrefix,
		TTL:         cfg.UploadURLTTL,
	}, client, s3.NewPresignClient(client))
	h := mediaapi.NewUploadsHandler(store, mediaapi.UploadsOptions{
		DefaultBusinessPhone: cfg.BusinessPhone,
		MaxUploadBytes:       cfg.MaxUploadBytes,
		Logger:               logger,
	})
	app.Start(mediaapi.NewLambdaHandler(h), metrics.New(logger, cfg.Namespace, app.Service(os.Getenv)))
}
