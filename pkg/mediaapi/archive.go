package mediaapi

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/archive"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

// ArchiveRoute is the path pattern of the archive, as API Gateway and the
// logs name it.
const ArchiveRoute = "/media/{mediaId}/archive"

// ArchiveService is what the archive route needs; *s3archive.Archiver
// implements it.
type ArchiveService interface {
	// Archive archives the media file mediaID of the merchant phone unless
	// it is archived already; created reports that this call stored it.
	Archive(ctx context.Context, businessPhone, mediaID string) (obj *archive.Object, created bool, err error)
}

// ArchiveOptions configures the handler built by NewArchiveHandler.
type ArchiveOptions struct {
	// DefaultBusinessPhone is the phone of a request that names none
	// (NXCLOUD_BUSINESS_PHONE); empty means such a request is a 400.
	DefaultBusinessPhone string
	// Logger receives one structured line per request (default
	// slog.Default()).
	Logger *slog.Logger
}

// NewArchiveHandler returns the http.Handler of
//
//	POST /media/{mediaId}/archive?business_phone=8615812341795
//
// which copies the media file from NXCloud into the stack's bucket: 201 with
// the archive.Object document when this request stored it, 200 with the same
// document when it was archived already. The input is validated as in
// NewHandler (400 before anything is called); NXCloud's failures of getMedia
// map to the same statuses as for GET /media/{mediaId}; a failed download
// is a 502 whose message says what the media URL answered, a file over
// MAX_UPLOAD_BYTES a 413, an archive past the time budget a 504, the bucket
// failing a 503. The log line is "archive request", with media_id and, on
// success, key, size and created.
func NewArchiveHandler(svc ArchiveService, opts ArchiveOptions) http.Handler {
	h := &archiveHandler{svc: svc, defaultPhone: opts.DefaultBusinessPhone}
	return newRouter(opts.Logger, "archive request", route{pattern: "POST " + ArchiveRoute, serve: h.archive})
}

type archiveHandler struct {
	svc          ArchiveService
	defaultPhone string
}

// archive serves POST /media/{mediaId}/archive.
func (h *archiveHandler) archive(w http.ResponseWriter, r *http.Request) error {
	c, err := parseCall(r, nxcloud.ActionGetMedia, h.defaultPhone)
	if err != nil {
		return err
	}
	ctx, cancel := withMargin(r.Context())
	defer cancel()
	obj, created, err := h.svc.Archive(ctx, c.phone, c.mediaID)
	if err != nil {
		return err
	}
	x := exchangeOf(r)
	x.attrs = append(x.attrs, slog.String("key", obj.Key), slog.Int64("size", obj.Size), slog.Bool("created", created))
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, marshal(obj))
	return nil
}
