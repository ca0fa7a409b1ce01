package bench

import (
	"net/http"
	"strings"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
)

// StickyMedia wraps a local NXCloud so that the media m exists again after
// every deleteMedia call: repeated delete benchmarks then measure the
// successful path each time. Every other call is served unchanged.
func StickyMedia(srv *nxcloudtest.Server, m nxcloudtest.Media) http.Handler {
	srv.AddMedia(m)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.ServeHTTP(w, r)
		if strings.HasSuffix(r.URL.Path, "/"+nxcloud.ActionDeleteMedia) {
			srv.AddMedia(m)
		}
	})
}
