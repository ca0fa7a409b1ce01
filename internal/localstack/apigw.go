package localstack

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart"
)

// route is the HTTP API's integration of a route with fn: the request as a
// payload format 2.0 event, the function invoked, its answer written back.
func (s *Stack) route(fn string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(r)
		if err != nil {
			writeGatewayError(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
			return
		}
		params := map[string]string{}
		for _, m := range wildcard.FindAllStringSubmatch(r.Pattern, -1) {
			params[m[1]] = r.PathValue(m[1])
		}
		ev := NewAPIGatewayEvent(r, r.Pattern, params, body)
		payload, _ := json.Marshal(ev)
		w.Header().Set("Apigw-Requestid", ev.RequestContext.RequestID)
		res, err := s.Invoke(r.Context(), fn, payload)
		switch {
		case err == nil && res.Error == nil:
			WriteAPIGatewayResponse(w, res.Payload)
		case err == nil && res.Error.Type == lambdart.ErrorTypeTimeout:
			writeGatewayError(w, http.StatusServiceUnavailable, "Service Unavailable")
		default:
			writeGatewayError(w, http.StatusInternalServerError, "Internal Server Error")
		}
	}
}

// wildcard is a {name} of a route pattern.
var wildcard = regexp.MustCompile(`\{(\w+)\}`)

// serveInvoke answers Lambda's Invoke API
// (/2015-03-31/functions/{name}/invocations) as Lambda does for a
// synchronous invocation: 200 with the payload, X-Amz-Function-Error for a
// function error, 404 for an unknown function.
func (s *Stack) serveInvoke(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		writeGatewayError(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	res, err := s.Invoke(r.Context(), r.PathValue("name"), body)
	if err != nil {
		writeGatewayError(w, http.StatusNotFound, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amz-Executed-Version", "$LATEST")
	if res.Error != nil {
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
	}
	_, _ = w.Write(res.Payload)
}

// maxPayload is Lambda's synchronous invocation payload limit.
const maxPayload = 6 << 20

// NewAPIGatewayEvent builds the payload format 2.0 event that an API Gateway
// HTTP API sends for r on the route routeKey ("GET /media/{mediaId}"), as
// `sam local start-api` does:
// header names lower-cased and joined with commas, query parameters decoded
// (repeated ones joined with commas), path parameters URL-decoded, a binary
// body base64-encoded.
func NewAPIGatewayEvent(r *http.Request, routeKey string, params map[string]string, body []byte) events.APIGatewayV2HTTPRequest {
	headers := map[string]string{}
	var cookies []string
	for name, vals := range r.Header {
		lname := strings.ToLower(name)
		if lname == "cookie" {
			for _, v := range vals {
				for _, c := range strings.Split(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						cookies = append(cookies, c)
					}
				}
			}
			continue
		}
		headers[lname] = strings.Join(vals, ",")
	}
	if r.Host != "" {
		headers["host"] = r.Host
	}
	var query map[string]string
	if q := r.URL.Query(); len(q) > 0 {
		query = map[string]string{}
		for k, v := range q {
			query[k] = strings.Join(v, ",")
		}
	}
	now := time.Now().UTC()
	ev := events.APIGatewayV2HTTPRequest{
		Version:               "2.0",
		RouteKey:              routeKey,
		RawPath:               r.URL.EscapedPath(),
		RawQueryString:        r.URL.RawQuery,
		Cookies:               cookies,
		Headers:               headers,
		QueryStringParameters: query,
		PathParameters:        params,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     routeKey,
			AccountID:    "000000000000",
			Stage:        "$default",
			RequestID:    newRequestID(),
			APIID:        "local",
			DomainName:   r.Host,
			DomainPrefix: strings.Split(r.Host, ".")[0],
			Time:         now.Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      r.URL.Path,
				Protocol:  r.Proto,
				SourceIP:  strings.Split(r.RemoteAddr, ":")[0],
				UserAgent: r.UserAgent(),
			},
		},
	}
	if len(body) > 0 {
		if utf8.Valid(body) {
			ev.Body = string(body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}
	return ev
}

// APIResponse is a function's payload format 2.0 answer, as API Gateway
// answers the caller.
type APIResponse struct {
	Status int
	Header http.Header
	Body   []byte
	// Base64 reports that the function sent the body base64-encoded.
	Base64 bool
}

func (r APIResponse) String() string { return fmt.Sprintf("%d %s", r.Status, r.Body) }

// ParseAPIGatewayResponse reads a function's payload format 2.0 answer:
// headers, multi-value headers and cookies merged, the body decoded.
func ParseAPIGatewayResponse(payload []byte) (APIResponse, error) {
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(payload, &resp); err != nil || resp.StatusCode == 0 {
		return APIResponse{}, fmt.Errorf("the answer %.300s is not an API Gateway payload format 2.0 response", payload)
	}
	r := APIResponse{Status: resp.StatusCode, Header: http.Header{}, Body: []byte(resp.Body), Base64: resp.IsBase64Encoded}
	for k, v := range resp.Headers {
		r.Header.Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		r.Header.Del(k)
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	for _, c := range resp.Cookies {
		r.Header.Add("Set-Cookie", c)
	}
	if r.Base64 {
		var err error
		if r.Body, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			return APIResponse{}, fmt.Errorf("the answer's body is not base64: %w", err)
		}
	}
	return r, nil
}

// WriteAPIGatewayResponse writes a function's payload format 2.0 answer to w as
// API Gateway does. A payload that is not a valid response is a 500 with API
// Gateway's own body.
func WriteAPIGatewayResponse(w http.ResponseWriter, payload []byte) {
	resp, err := ParseAPIGatewayResponse(payload)
	if err != nil {
		writeGatewayError(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	maps.Copy(w.Header(), resp.Header)
	w.WriteHeader(resp.Status)
	_, _ = w.Write(resp.Body)
}

// MediaEvent is the payload format 2.0 event the HTTP API sends for a
// request of method to target (an escaped path, with its query) on the
// route /media/{mediaId}.
func MediaEvent(method, target string) []byte {
	req := httptest.NewRequest(method, target, nil)
	id, _ := strings.CutPrefix(req.URL.Path, "/media/")
	b, _ := json.Marshal(NewAPIGatewayEvent(req, method+" /media/{mediaId}", map[string]string{"mediaId": id}, nil))
	return b
}

// writeGatewayError answers as API Gateway itself does when no function
// answered: {"message": "..."}.
func writeGatewayError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, "{\"message\":%q}", msg)
}

// readBody reads a request body up to Lambda's payload limit.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxPayload+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxPayload {
		return nil, fmt.Errorf("request body over %d bytes", maxPayload)
	}
	return b, nil
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
