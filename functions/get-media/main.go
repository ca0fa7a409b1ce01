// Command get-media is GetMediaFunction: API Gateway HTTP API
// `GET /media/{mediaId}` answered through NXCloud's getMedia.
//
// It only wires things together: configuration, credentials and the NXCloud
// client come from pkg/app, the HTTP handler from pkg/mediaapi, and
// mediaapi.NewLambdaHandler (aws-lambda-go-api-proxy's httpadapter.NewV2)
// adapts the payload format 2.0 event to it. Everything is built once per
// container, at init.
package main

import (
	"net/http"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/app"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/mediaapi"
)

func main() {
	a := app.Main()
	h := mediaapi.NewHandler(a.NXCloud, mediaapi.Options{
		DefaultBusinessPhone: a.Config.BusinessPhone,
		Logger:               a.Logger,
		Methods:              []string{http.MethodGet},
	})
	app.Start(mediaapi.NewLambdaHandler(h), a.Metrics)
}
