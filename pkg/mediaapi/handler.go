package mediaapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/config"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

// MediaService is what the handler needs from NXCloud; *nxcloud.Client
// implements it.
type MediaService interface {
	// GetMedia returns the media's data object; the handler answers
	// Media.Raw, which holds it exactly as NXCloud sent it.
	GetMedia(ctx context.Context, businessPhone, mediaID string) (*nxcloud.Media, error)
	// DeleteMedia deletes the media.
	DeleteMedia(ctx context.Context, businessPhone, mediaID string) error
}

// Options configures the handler built by NewHandler.
type Options struct {
	// DefaultBusinessPhone is the merchant phone used when a request has no
	// ?business_phone= (NXCLOUD_BUSINESS_PHONE). Empty means none: such a
	// request is a 400.
	DefaultBusinessPhone string
	// Logger receives one structured line per request (default
	// slog.Default()).
	Logger *slog.Logger
	// Methods are the routes this handler serves on /media/{mediaId}:
	// http.MethodGet, http.MethodDelete or both. Empty means both. Any other
	// method answers 405 with an Allow header listing these.
	Methods []string
}

// Route and ContentRoute are the path patterns the handler serves, as API
// Gateway and the logs name them.
const (
	Route        = "/media/{mediaId}"
	ContentRoute = "/media/{mediaId}/content"
)

// MaxMediaIDLength is the longest mediaId accepted, in characters.
const MaxMediaIDLength = 256

// deadlineMargin is kept free before the invocation's deadline (when the
// request's context has one, as Lambda's does) so that a 504 is written
// before Lambda ends the invocation.
const deadlineMargin = 500 * time.Millisecond

// NewHandler returns the http.Handler of GET and DELETE /media/{mediaId}
// and, when it serves GET, of GET /media/{mediaId}/content.
//
// A request goes through these steps, each answering at once when it fails:
//
//  1. Route: the path (taken from the URL, as the API Gateway v2 adapter
//     builds it from rawPath; a stage prefix "/<stage>" is removed when the
//     API Gateway context names a stage other than $default) must be
//     /media/{mediaId} or /media/{mediaId}/content, else 404; the method must
//     be one of opts.Methods (GET only on /content), else 405 with an Allow
//     header.
//  2. Input: mediaId (percent-decoded, so %2F is a slash inside the id) must
//     be non-empty, valid UTF-8, at most MaxMediaIDLength characters and free
//     of control characters; business_phone (the query parameter, else
//     opts.DefaultBusinessPhone) must be 5 to 20 digits. Else 400, and NXCloud
//     is not called.
//  3. NXCloud: GET answers 200 with NXCloud's data object as is; DELETE
//     answers 200 with {"success": true}; GET /content calls getMedia afresh
//     and answers 302 with Location: the url NXCloud returned (an answer
//     without an http(s) url is a 502), the data object as the body.
//
// Failures map to statuses through one table: bad input 400; NXCloud 9000
// 400; 9002 and 9006 422; an authentication code still failing after the
// client's refresh and retry, -1, 9001, any other code, a non-2xx status or a
// body that is not the documented JSON 502; no answer in time 504; the
// credentials unavailable or malformed 503; any other failure 502.
//
// Every response is application/json; errors are
// {"error": {"message": "...", "nxcloud_code": <int>}} with nxcloud_code only
// when NXCloud answered with a code. Each request writes one log line,
// "media request", with request_id, method, route, status, nxcloud_code
// (when any), latency_ms, cold_start and media_id.
//
// NewHandler panics when opts.Methods names a method other than GET or
// DELETE: that is a programming error.
func NewHandler(svc MediaService, opts Options) http.Handler {
	h := &mediaHandler{svc: svc, defaultPhone: opts.DefaultBusinessPhone}
	methods := []string{http.MethodGet, http.MethodDelete}
	if len(opts.Methods) > 0 {
		methods = nil
		for _, m := range opts.Methods {
			methods = append(methods, strings.ToUpper(m))
		}
		slices.Sort(methods)
		methods = slices.Compact(methods)
	}
	var routes []route
	for _, m := range methods {
		switch m {
		case http.MethodGet:
			routes = append(routes, route{pattern: "GET " + Route, serve: h.get}, route{pattern: "GET " + ContentRoute, serve: h.content})
		case http.MethodDelete:
			routes = append(routes, route{pattern: "DELETE " + Route, serve: h.delete})
		default:
			panic(fmt.Sprintf("mediaapi: Options.Methods: %q is not served: use http.MethodGet and/or http.MethodDelete", m))
		}
	}
	return newRouter(opts.Logger, "media request", withEmptyID(routes)...)
}

// withEmptyID adds to routes on /media/{mediaId} the same route for an
// empty id (/media/, which no wildcard matches), so that it is the
// endpoint's 400 "mediaId is required" rather than a 404.
func withEmptyID(routes []route) []route {
	for _, r := range routes {
		if p, ok := strings.CutSuffix(r.pattern, "/{mediaId}"); ok {
			_, name, _ := strings.Cut(r.pattern, " ")
			routes = append(routes, route{pattern: p + "/{$}", serve: r.serve, name: name})
		}
	}
	return routes
}

// mediaHandler serves the media routes.
type mediaHandler struct {
	svc          MediaService
	defaultPhone string
}

// get serves GET /media/{mediaId}: NXCloud's data object as is.
func (h *mediaHandler) get(w http.ResponseWriter, r *http.Request) error {
	m, err := h.getMedia(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m.Raw)
	return nil
}

// content serves GET /media/{mediaId}/content: a 302 to the url of a fresh
// getMedia.
func (h *mediaHandler) content(w http.ResponseWriter, r *http.Request) error {
	m, err := h.getMedia(r)
	if err != nil {
		return err
	}
	if err := checkMediaURL(m.URL); err != nil {
		return err
	}
	w.Header().Set("Location", m.URL)
	writeJSON(w, http.StatusFound, m.Raw)
	return nil
}

// checkMediaURL refuses a getMedia url that is not http(s) with a host.
// (url.Parse refuses control characters: such a URL is safe in a header.)
func checkMediaURL(raw string) error {
	if u, err := url.Parse(raw); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return &nxcloud.ResponseError{Action: nxcloud.ActionGetMedia, HTTPStatus: http.StatusOK, Excerpt: clean(raw),
			Reason: "data.url is not an http(s) URL"}
	}
	return nil
}

// getMedia validates the request and calls getMedia.
func (h *mediaHandler) getMedia(r *http.Request) (*nxcloud.Media, error) {
	c, err := parseCall(r, nxcloud.ActionGetMedia, h.defaultPhone)
	if err != nil {
		return nil, err
	}
	ctx, cancel := withMargin(r.Context())
	defer cancel()
	return h.svc.GetMedia(ctx, c.phone, c.mediaID)
}

// delete serves DELETE /media/{mediaId}.
func (h *mediaHandler) delete(w http.ResponseWriter, r *http.Request) error {
	c, err := parseCall(r, nxcloud.ActionDeleteMedia, h.defaultPhone)
	if err != nil {
		return err
	}
	ctx, cancel := withMargin(r.Context())
	defer cancel()
	if err := h.svc.DeleteMedia(ctx, c.phone, c.mediaID); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, []byte(`{"success":true}`))
	return nil
}

// withMargin returns ctx with its deadline, if any, deadlineMargin earlier.
func withMargin(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok {
		return context.WithDeadline(ctx, dl.Add(-deadlineMargin))
	}
	return context.WithCancel(ctx)
}

// parseCall validates the {mediaId} and the business_phone of a media route
// and records them for the messages and the log line.
func parseCall(r *http.Request, action, defaultPhone string) (call, error) {
	x := exchangeOf(r)
	x.call.action = action
	id := r.PathValue("mediaId")
	if err := validMediaID(id); err != nil {
		return x.call, err
	}
	x.call.mediaID = id
	x.attrs = append(x.attrs, slog.String("media_id", id))
	var err error
	x.call.phone, x.call.phoneFromUser, x.call.phoneFromEnv, err = businessPhone(r.URL.RawQuery, defaultPhone)
	return x.call, err
}

// validMediaID checks a decoded mediaId.
func validMediaID(id string) error {
	switch {
	case id == "":
		return badInput("mediaId is required: call /media/{mediaId} with the media id NXCloud returned")
	case !utf8.ValidString(id):
		return badInput("mediaId is not valid UTF-8: pass the media id NXCloud returned, percent-encoded as UTF-8")
	case utf8.RuneCountInString(id) > MaxMediaIDLength:
		return badInput("mediaId has %d characters: at most %d are accepted", utf8.RuneCountInString(id), MaxMediaIDLength)
	case strings.ContainsFunc(id, unicode.IsControl):
		return badInput("mediaId contains control characters: pass the media id NXCloud returned")
	}
	return nil
}

// businessPhone picks and validates the merchant phone.
func businessPhone(rawQuery, defaultPhone string) (phone string, fromUser, fromEnv bool, err error) {
	q, qerr := url.ParseQuery(rawQuery)
	if qerr != nil {
		return "", false, false, badInput("the query string is not valid URL encoding: percent-encode its parameters (e.g. ?business_phone=8615812341795)")
	}
	switch vals := q["business_phone"]; {
	case len(vals) > 1:
		return "", false, false, badInput("business_phone is given %d times: pass it once", len(vals))
	case len(vals) == 1 && vals[0] != "":
		phone, fromUser = vals[0], true
	case defaultPhone != "":
		phone, fromEnv = defaultPhone, true
	default:
		return "", false, false, badInput("business_phone is required: pass ?business_phone=<5-20 digits> or set NXCLOUD_BUSINESS_PHONE")
	}
	if !config.ValidPhone(phone) {
		src := "business_phone " + quote(phone)
		if fromEnv {
			src = "NXCLOUD_BUSINESS_PHONE"
		}
		return "", false, false, badInput("%s is not a merchant phone: pass 5 to 20 digits with the country code and no + or spaces (e.g. ?business_phone=8615812341795)", src)
	}
	return phone, fromUser, fromEnv, nil
}
