package mediaapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"

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

// Route is the path pattern the handler serves, as API Gateway and the logs
// name it.
const Route = "/media/{mediaId}"

// MaxMediaIDLength is the longest mediaId accepted, in characters.
const MaxMediaIDLength = 256

// deadlineMargin is kept free before the invocation's deadline (when the
// request's context has one, as Lambda's does) so that a 504 is written
// before Lambda ends the invocation.
const deadlineMargin = 500 * time.Millisecond

const routePrefix = "/media/"

// handler implements the routes; see NewHandler.
type handler struct {
	svc          MediaService
	defaultPhone string
	log          *slog.Logger
	allow        []string // served methods, sorted
	served       atomic.Bool
	now          func() time.Time
}

// NewHandler returns the http.Handler of GET and DELETE /media/{mediaId}.
//
// A request goes through these steps, each answering at once when it fails:
//
//  1. Route: the path (taken from the URL, as the API Gateway v2 adapter
//     builds it from rawPath; a stage prefix "/<stage>" is removed when the
//     API Gateway context names a stage other than $default) must be
//     /media/{mediaId}, else 404; the method must be one of opts.Methods, else
//     405 with an Allow header.
//  2. Input: mediaId (percent-decoded, so %2F is a slash inside the id) must
//     be non-empty, valid UTF-8, at most MaxMediaIDLength characters and free
//     of control characters; business_phone (the query parameter, else
//     opts.DefaultBusinessPhone) must be 5 to 20 digits. Else 400, and NXCloud
//     is not called.
//  3. NXCloud: GET answers 200 with NXCloud's data object as is; DELETE
//     answers 200 with {"success": true}.
//
// Failures map to statuses through one table: bad input 400; NXCloud 9000
// 400; 9002 and 9006 422; an authentication code still failing after the
// client's refresh and retry, -1, 9001, any other code, a non-2xx status or a
// body that is not the documented JSON 502; no answer in time 504; the
// credentials unavailable or malformed 503; any other failure 502.
//
// Every response is application/json; errors are
// {"error": {"message": "...", "nxcloud_code": <int>}} with nxcloud_code only
// when NXCloud answered with a code. Each request writes one log line with
// request_id, method, route, status, nxcloud_code (when any), latency_ms and
// cold_start (true for the first request this handler serves: main builds one
// handler per process).
//
// NewHandler panics when opts.Methods names a method other than GET or
// DELETE: that is a programming error.
func NewHandler(svc MediaService, opts Options) http.Handler {
	h := &handler{
		svc:          svc,
		defaultPhone: opts.DefaultBusinessPhone,
		log:          opts.Logger,
		now:          time.Now,
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	methods := opts.Methods
	if len(methods) == 0 {
		methods = []string{http.MethodGet, http.MethodDelete}
	}
	for _, m := range methods {
		m = strings.ToUpper(m)
		if m != http.MethodGet && m != http.MethodDelete {
			panic(fmt.Sprintf("mediaapi: Options.Methods: %q is not served: use http.MethodGet and/or http.MethodDelete", m))
		}
		if !slices.Contains(h.allow, m) {
			h.allow = append(h.allow, m)
		}
	}
	slices.Sort(h.allow)
	return h
}

// ServeHTTP implements http.Handler.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	cold := !h.served.Swap(true)
	ctx := r.Context()

	c, route, err := h.parse(r)
	if err == nil {
		err = h.serve(ctx, w, c)
	}
	status := http.StatusOK
	var row *rule
	if err != nil {
		row = classify(err)
		status = row.status
		h.writeError(w, err, row, c)
	}

	attrs := make([]slog.Attr, 0, 10)
	attrs = append(attrs,
		slog.String("request_id", requestID(ctx)),
		slog.String("method", r.Method),
		slog.String("route", route),
		slog.Int("status", status),
	)
	if code, ok := nxcloudCode(err); ok {
		attrs = append(attrs, slog.Int("nxcloud_code", code))
	}
	attrs = append(attrs,
		slog.Int64("latency_ms", h.now().Sub(start).Milliseconds()),
		slog.Bool("cold_start", cold),
	)
	if c.mediaID != "" {
		attrs = append(attrs, slog.String("media_id", c.mediaID))
	}
	level := slog.LevelInfo
	if row != nil {
		attrs = append(attrs, slog.String("cause", row.cause))
		switch {
		case status >= 500:
			level = slog.LevelError
			// The error's text (credentials and transport problems
			// included) is for the operator; the caller only gets the
			// table's message.
			attrs = append(attrs, slog.String("error", err.Error()))
		case status >= 400:
			level = slog.LevelWarn
			attrs = append(attrs, slog.String("error", err.Error()))
		}
	}
	h.log.LogAttrs(ctx, level, "media request", attrs...)
}

// parse routes the request and validates its input. route is the matched
// route pattern, or "unmatched".
func (h *handler) parse(r *http.Request) (c call, route string, err error) {
	if err, ok := r.Context().Value(eventErrorKey{}).(error); ok {
		return c, "unmatched", err // an event NewLambdaHandler could not convert
	}
	path := stripStage(r.Context(), r.URL.EscapedPath())
	rawID, ok := strings.CutPrefix(path, routePrefix)
	if !ok || strings.Contains(rawID, "/") {
		return c, "unmatched", errNotFound
	}
	route = Route
	if !slices.Contains(h.allow, r.Method) {
		return c, route, &methodError{method: r.Method, allow: h.allow}
	}
	c.action = nxcloud.ActionGetMedia
	if r.Method == http.MethodDelete {
		c.action = nxcloud.ActionDeleteMedia
	}

	id, uerr := url.PathUnescape(rawID)
	if uerr != nil {
		return c, route, badInput("mediaId is not a valid percent-encoded path segment: escape reserved characters as %%XX (e.g. / as %%2F)")
	}
	if err := validMediaID(id); err != nil {
		return c, route, err
	}
	c.mediaID = id

	c.phone, c.phoneFromUser, c.phoneFromEnv, err = h.businessPhone(r.URL.RawQuery)
	return c, route, err
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
func (h *handler) businessPhone(rawQuery string) (phone string, fromUser, fromEnv bool, err error) {
	q, qerr := url.ParseQuery(rawQuery)
	if qerr != nil {
		return "", false, false, badInput("the query string is not valid URL encoding: percent-encode its parameters (e.g. ?business_phone=8615812341795)")
	}
	switch vals := q["business_phone"]; {
	case len(vals) > 1:
		return "", false, false, badInput("business_phone is given %d times: pass it once", len(vals))
	case len(vals) == 1 && vals[0] != "":
		phone, fromUser = vals[0], true
	case h.defaultPhone != "":
		phone, fromEnv = h.defaultPhone, true
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

// serve calls NXCloud and writes the 200 answer.
func (h *handler) serve(ctx context.Context, w http.ResponseWriter, c call) error {
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-deadlineMargin))
		defer cancel()
	}
	switch c.action {
	case nxcloud.ActionGetMedia:
		m, err := h.svc.GetMedia(ctx, c.phone, c.mediaID)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, m.Raw)
	default:
		if err := h.svc.DeleteMedia(ctx, c.phone, c.mediaID); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, []byte(`{"success":true}`))
	}
	return nil
}

// errorBody is the JSON of every error response.
type errorBody struct {
	Error struct {
		Message     string `json:"message"`
		NXCloudCode *int   `json:"nxcloud_code,omitempty"`
	} `json:"error"`
}

func (h *handler) writeError(w http.ResponseWriter, err error, row *rule, c call) {
	var b errorBody
	b.Error.Message = row.message(err, c)
	if code, ok := nxcloudCode(err); ok {
		b.Error.NXCloudCode = &code
	}
	if me := (*methodError)(nil); errors.As(err, &me) {
		w.Header().Set("Allow", strings.Join(me.allow, ", "))
	}
	// Messages quote "<5-20 digits>" and the like: keep them readable
	// rather than HTML-escaped (\u003c). A struct of a string and an *int
	// always encodes.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(b)
	writeJSON(w, row.status, bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// stripStage removes the "/<stage>" prefix API Gateway puts in rawPath for a
// named stage (not for $default).
func stripStage(ctx context.Context, path string) string {
	gw, ok := core.GetAPIGatewayV2ContextFromContext(ctx)
	if !ok || gw.Stage == "" || gw.Stage == "$default" {
		return path
	}
	if rest, ok := strings.CutPrefix(path, "/"+gw.Stage); ok && strings.HasPrefix(rest, "/") {
		return rest
	}
	return path
}

// requestID is API Gateway's request id, else Lambda's, else a new random
// one.
func requestID(ctx context.Context) string {
	if gw, ok := core.GetAPIGatewayV2ContextFromContext(ctx); ok && gw.RequestID != "" {
		return gw.RequestID
	}
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		return lc.AwsRequestID
	}
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}
