// Command upload-media is UploadMediaFunction: for every S3 ObjectCreated
// record under MEDIA_PREFIX it streams the object version to NXCloud's
// uploadMedia (a media id a WhatsApp message can carry) and tags it with the
// media id (pkg/upload).
//
// It only wires things together, once per container at init, as
// upload-template-file does, with the message destination.
package main

import (
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/app"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/upload"
)

func main() {
	a := app.Main()
	p := upload.New(upload.ConfigFrom(a), upload.S3Client(a.AWS), upload.Message(a.Config.MediaPrefix, a.NXCloud))
	app.Start(p.HandleEvent, a.Metrics)
}
