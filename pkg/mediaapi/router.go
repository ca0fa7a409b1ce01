package mediaapi

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"
)

// route is one route a function serves: a net/http.ServeMux pattern
// ("GET /media/{mediaId}"), the endpoint that answers it and, when the
// pattern is not the route as API Gateway and the logs name it, that name.
type route struct {
	pattern string
	serve   endpoint
	name    string // default: the pattern's path
}

// endpoint answers one request of its route: it writes a successful answer
// itself and returns the failure to answer otherwise (the status table makes
// it an error document).
type endpoint func(w http.ResponseWriter, r *http.Request) error

// named is an endpoint under its route's name.
type named struct {
	name  string
	serve endpoint
}

// ServeHTTP implements http.Handler.
func (n named) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	exchangeOf(r).route = n.name
	if err := n.serve(w, r); err != nil {
		fail(w, r, err)
	}
}

// newRouter returns the handler of one function: routes on a ServeMux, a
// JSON 404 for a path none of them matches and a JSON 405 (with Allow) for a
// method none of them serves on the path, behind the middleware that removes
// API Gateway's stage prefix and the one that writes one log line (msg) per
// request.
func newRouter(log *slog.Logger, msg string, routes ...route) http.Handler {
	rt := &router{mux: http.NewServeMux()}
	for _, r := range routes {
		method, path, _ := strings.Cut(r.pattern, " ")
		rt.mux.Handle(r.pattern, named{cmp.Or(r.name, path), r.serve})
		if !slices.Contains(rt.methods, method) {
			rt.methods = append(rt.methods, method)
		}
	}
	slices.Sort(rt.methods)
	if log == nil {
		log = slog.Default()
	}
	return logRequests(log, msg)(stripStage(rt))
}

// router dispatches to the routes' endpoints.
type router struct {
	mux     *http.ServeMux
	methods []string // of the routes, sorted
}

// ServeHTTP implements http.Handler. The ServeMux matches the escaped path
// segment by segment, so an escaped slash (%2F) stays inside a path value.
// What it would answer itself is answered here with the error document
// instead: a 404 or 405 in text, and the redirect of a path that is not
// clean (//x, /a/../b) or that lacks a trailing slash a route has, which
// API Gateway never sends and which is a 404.
// HEAD is not served: the ServeMux would serve it on a GET route.
func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err, ok := r.Context().Value(eventErrorKey{}).(error); ok {
		fail(w, r, err) // an event NewLambdaHandler could not convert
		return
	}
	if h, _ := rt.mux.Handler(r); isNamed(h) && r.Method != http.MethodHead {
		rt.mux.ServeHTTP(w, r)
		return
	}
	// Another method may be served on the path: a 405 naming the route and
	// those methods.
	var allow []string
	for _, m := range rt.methods {
		if h, _ := rt.mux.Handler(&http.Request{Method: m, URL: r.URL, Host: r.Host}); isNamed(h) {
			allow = append(allow, m)
			exchangeOf(r).route = h.(named).name
		}
	}
	if len(allow) == 0 {
		fail(w, r, errNotFound)
		return
	}
	fail(w, r, &methodError{method: r.Method, route: exchangeOf(r).route, allow: allow})
}

// isNamed reports a route's endpoint, not a handler the ServeMux made up (a
// 404, a 405, a redirect).
func isNamed(h http.Handler) bool { _, ok := h.(named); return ok }

// stripStage removes the "/<stage>" prefix API Gateway puts in rawPath for a
// named stage (not for $default), as http.StripPrefix does.
func stripStage(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gw, ok := core.GetAPIGatewayV2ContextFromContext(r.Context())
		if ok && gw.Stage != "" && gw.Stage != "$default" {
			prefix := "/" + gw.Stage
			if strings.HasPrefix(r.URL.Path, prefix+"/") && (r.URL.RawPath == "" || strings.HasPrefix(r.URL.RawPath, prefix+"/")) {
				http.StripPrefix(prefix, next).ServeHTTP(w, r)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// exchange is what a request came to, filled in as it is served, for its log
// line.
type exchange struct {
	route string      // the route's path pattern, or "unmatched"
	err   error       // the failure answered, if any
	call  call        // what the request asked for, for the error messages
	attrs []slog.Attr // more attributes for the log line (media_id, ...)
}

type exchangeKey struct{}

// exchangeOf returns the exchange of r (a throwaway one outside
// logRequests).
func exchangeOf(r *http.Request) *exchange {
	if x, ok := r.Context().Value(exchangeKey{}).(*exchange); ok {
		return x
	}
	return &exchange{}
}

// logRequests writes one log line (msg) per request: request_id, method,
// route, status, nxcloud_code (when NXCloud answered with one), latency_ms,
// cold_start (true for the first request of the handler: a function builds
// one per process), the attributes the endpoint added and, for a failure,
// cause and error. A failure is logged at WARN (4xx) or ERROR (5xx): the
// error's text (credentials and transport problems included) is for the
// operator; the caller only gets the table's message.
func logRequests(log *slog.Logger, msg string) func(http.Handler) http.Handler {
	var served atomic.Bool
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			cold := !served.Swap(true)
			x := &exchange{route: "unmatched"}
			r = r.WithContext(context.WithValue(r.Context(), exchangeKey{}, x))
			sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
			next.ServeHTTP(sw, r)

			attrs := make([]slog.Attr, 0, 10+len(x.attrs))
			attrs = append(attrs,
				slog.String("request_id", requestID(r.Context())),
				slog.String("method", r.Method),
				slog.String("route", x.route),
				slog.Int("status", sw.status),
			)
			if code, ok := nxcloudCode(x.err); ok {
				attrs = append(attrs, slog.Int("nxcloud_code", code))
			}
			attrs = append(attrs,
				slog.Int64("latency_ms", time.Since(start).Milliseconds()),
				slog.Bool("cold_start", cold),
			)
			attrs = append(attrs, x.attrs...)
			level := slog.LevelInfo
			if x.err != nil {
				attrs = append(attrs, slog.String("cause", classify(x.err).cause), slog.String("error", x.err.Error()))
				level = slog.LevelWarn
				if sw.status >= 500 {
					level = slog.LevelError
				}
			}
			log.LogAttrs(r.Context(), level, msg, attrs...)
		})
	}
}

// statusWriter records the status written through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

// fail answers err with the error document and its status (statusTable),
// and records it for the log line.
func fail(w http.ResponseWriter, r *http.Request, err error) {
	x := exchangeOf(r)
	x.err = err
	row := classify(err)
	var b errorBody
	b.Error.Message = row.message(err, x.call)
	if code, ok := nxcloudCode(err); ok {
		b.Error.NXCloudCode = &code
	}
	if me := (*methodError)(nil); errors.As(err, &me) {
		w.Header().Set("Allow", strings.Join(me.allow, ", "))
	}
	writeJSON(w, row.status, marshal(b))
}

// errorBody is the JSON of every error response.
type errorBody struct {
	Error struct {
		Message     string `json:"message"`
		NXCloudCode *int   `json:"nxcloud_code,omitempty"`
	} `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// marshal encodes v without HTML escaping: URLs keep their & readable and
// messages their "<5-20 digits>".
func marshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the answer types always encode
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
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
