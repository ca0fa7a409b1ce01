// Command reconcile is ReconcileFunction: on a schedule, or invoked with any
// JSON event, it sends through the upload pipeline every version under
// UPLOAD_PREFIX and MEDIA_PREFIX in MEDIA_BUCKET that its event left without
// a verdict, each to its prefix's destination (pkg/reconcile), and answers
// {"examined","pending","uploaded","rejected","failed"}.
//
// It only wires things together, once per container at init: the pipeline
// of both destinations, as the upload functions build theirs but with a
// short wait for claims held elsewhere, and the sweep given to app.Start.
package main

import (
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/app"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/config"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/reconcile"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/upload"
)

func main() {
	a := app.Main(config.EnvMediaBucket)
	c, client := a.Config, upload.S3Client(a.AWS)
	cfg := upload.ConfigFrom(a)
	cfg.ClaimWait = reconcile.DefaultClaimWait
	p := upload.New(cfg, client, upload.Template(c.UploadPrefix, a.NXCloud), upload.Message(c.MediaPrefix, a.NXCloud))
	sw := reconcile.New(reconcile.Config{Bucket: c.MediaBucket, Prefixes: []string{c.UploadPrefix, c.MediaPrefix}, Settle: c.Settle},
		client, p.Ledger(), p, a.Logger)
	app.Start(sw.Handle, a.Metrics)
}
