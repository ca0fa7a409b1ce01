// Command upload-template-file is UploadTemplateFileFunction: for every S3
// ObjectCreated record under UPLOAD_PREFIX it streams the object version to
// NXCloud's uploadTemplateFile and tags it with the media id (pkg/upload).
//
// It only wires things together, once per container at init: configuration,
// credentials, the NXCloud client and the metrics from pkg/app, an S3 client
// (path-style addressing when AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL points
// at a local S3 endpoint), and the upload pipeline with its one destination,
// whose every Result is recorded as a metric, given to app.Start.
package main

import (
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/app"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/upload"
)

func main() {
	a := app.Main()
	p := upload.New(upload.ConfigFrom(a), upload.S3Client(a.AWS), upload.Template(a.Config.UploadPrefix, a.NXCloud))
	app.Start(p.HandleEvent, a.Metrics)
}
