// Command archive-media is ArchiveMediaFunction: API Gateway HTTP API
// `POST /media/{mediaId}/archive`, which copies a media file from NXCloud
// (getMedia, then the file it points to) into the stack's bucket under
// ARCHIVE_PREFIX.
//
// It only wires things together, once per container at init: configuration
// (NXCLOUD_SECRET_ID and MEDIA_BUCKET required), credentials and the NXCloud
// client from pkg/app; an S3 client (path-style, and a payload streamed
// unsigned, when AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL names a local
// endpoint without TLS); the download client of pkg/archive/download, whose
// policy follows NXCLOUD_BASE_URL; the archiver of pkg/archive/s3archive;
// the HTTP handler of pkg/mediaapi and mediaapi.NewLambdaHandler.
package main

import (
	"cmp"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/app"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/archive/download"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/archive/s3archive"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/config"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/mediaapi"
)

func main() {
	a := app.Main(config.EnvMediaBucket)
	endpoint := cmp.Or(os.Getenv("AWS_ENDPOINT_URL_S3"), os.Getenv("AWS_ENDPOINT_URL"))
	client := s3.NewFromConfig(a.AWS, s3archive.S3Options(endpoint != "", strings.HasPrefix(endpoint, "http://")))
	archiver := s3archive.New(s3archive.Config{
		Bucket:   a.Config.MediaBucket,
		Prefix:   a.Config.ArchivePrefix,
		MaxBytes: a.Config.MaxUploadBytes,
	}, a.NXCloud, client, download.NewClient(download.Config{
		Policy:  download.PolicyFor(a.Config.BaseURL),
		Timeout: a.Config.Timeout,
	}))
	h := mediaapi.NewArchiveHandler(archiver, mediaapi.ArchiveOptions{
		DefaultBusinessPhone: a.Config.BusinessPhone,
		Logger:               a.Logger,
	})
	app.Start(mediaapi.NewLambdaHandler(h), a.Metrics)
}
