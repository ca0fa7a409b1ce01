package mediaapi_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
)

// eventsDir holds the events `sam local invoke -e` reads: the handler tests
// start from the same files so that fixtures and code cannot drift apart.
var eventsDir = filepath.Join("..", "..", "events")

// Fixture names in eventsDir.
const (
	getEvent    = "get-media.json"
	deleteEvent = "delete-media.json"
)

// loadEvent reads one API Gateway HTTP API (payload 2.0) event from eventsDir.
func loadEvent(t *testing.T, name string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(eventsDir, name))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("fixture %s is not an API Gateway v2 event: %v", name, err)
	}
	if ev.RequestContext.HTTP.Method == "" || (ev.RawPath == "" && ev.RequestContext.HTTP.Path == "") {
		t.Fatalf("fixture %s has no requestContext.http.method or rawPath", name)
	}
	// The maps are shared with nothing, but copy them so that modifiers can
	// write to them even when the fixture has none.
	ev.PathParameters = maps.Clone(ev.PathParameters)
	if ev.PathParameters == nil {
		ev.PathParameters = map[string]string{}
	}
	ev.QueryStringParameters = maps.Clone(ev.QueryStringParameters)
	return ev
}

// eventMod changes one aspect of a fixture, consistently across the fields
// API Gateway fills (pathParameters, rawPath, requestContext.http.path, ...).
type eventMod func(*events.APIGatewayV2HTTPRequest)

// withMediaID sets the mediaId as a client would send it: percent-encoded
// in rawPath, decoded in pathParameters.
func withMediaID(id string) eventMod {
	return func(ev *events.APIGatewayV2HTTPRequest) {
		ev.PathParameters["mediaId"] = id
		ev.RawPath = "/media/" + url.PathEscape(id)
		ev.RequestContext.HTTP.Path = "/media/" + id
	}
}

// withRawPath sets rawPath as sent on the wire.
func withRawPath(raw string) eventMod {
	return func(ev *events.APIGatewayV2HTTPRequest) {
		ev.RawPath = raw
		if p, err := url.PathUnescape(raw); err == nil {
			ev.RequestContext.HTTP.Path = p
		}
		if id, ok := strings.CutPrefix(raw, "/media/"); ok {
			if dec, err := url.PathUnescape(id); err == nil {
				ev.PathParameters["mediaId"] = dec
			}
		}
	}
}

// withQuery sets the raw query string and, as API Gateway does, the
// queryStringParameters (repeated values joined with commas).
func withQuery(raw string) eventMod {
	return func(ev *events.APIGatewayV2HTTPRequest) {
		ev.RawQueryString = raw
		ev.QueryStringParameters = nil
		if q, err := url.ParseQuery(raw); err == nil && len(q) > 0 {
			ev.QueryStringParameters = map[string]string{}
			for k, v := range q {
				ev.QueryStringParameters[k] = strings.Join(v, ",")
			}
		}
	}
}

// withPhone sets ?business_phone=phone (escaped).
func withPhone(phone string) eventMod {
	return withQuery("business_phone=" + url.QueryEscape(phone))
}

// withMethod sets the HTTP method (and the route key with it).
func withMethod(m string) eventMod {
	return func(ev *events.APIGatewayV2HTTPRequest) {
		ev.RequestContext.HTTP.Method = m
		ev.RouteKey = m + " /media/{mediaId}"
		ev.RequestContext.RouteKey = ev.RouteKey
	}
}

// invoke drives h exactly as Lambda does in the functions: through
// httpadapter.NewV2(h).ProxyWithContext. Every response must be JSON.
func invoke(ctx context.Context, t *testing.T, h http.Handler, ev events.APIGatewayV2HTTPRequest, mods ...eventMod) events.APIGatewayV2HTTPResponse {
	t.Helper()
	for _, m := range mods {
		m(&ev)
	}
	resp, err := httpadapter.NewV2(h).ProxyWithContext(ctx, ev)
	if err != nil {
		t.Fatalf("ProxyWithContext: %v", err)
	}
	if ct := header(resp, "Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json (status %d, body %s)", ct, resp.StatusCode, resp.Body)
	}
	if resp.IsBase64Encoded {
		t.Errorf("response is base64-encoded: %q", resp.Body)
	}
	if !json.Valid([]byte(resp.Body)) {
		t.Errorf("body is not JSON: %q", resp.Body)
	}
	return resp
}

// header reads a response header case-insensitively.
func header(resp events.APIGatewayV2HTTPResponse, name string) string {
	for k, v := range resp.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// errorResponse is the error body of the SPEC.
type errorResponse struct {
	Error struct {
		Message     string `json:"message"`
		NXCloudCode *int   `json:"nxcloud_code"`
	} `json:"error"`
}

// decodeError parses an error body strictly: exactly {"error": {"message",
// optional "nxcloud_code"}}.
func decodeError(t *testing.T, resp events.APIGatewayV2HTTPResponse) errorResponse {
	t.Helper()
	var outer map[string]json.RawMessage
	if err := json.Unmarshal([]byte(resp.Body), &outer); err != nil {
		t.Fatalf("error body %q: %v", resp.Body, err)
	}
	if len(outer) != 1 || outer["error"] == nil {
		t.Fatalf("error body %s: want exactly one key \"error\"", resp.Body)
	}
	var inner map[string]json.RawMessage
	if err := json.Unmarshal(outer["error"], &inner); err != nil {
		t.Fatalf("error body %s: %v", resp.Body, err)
	}
	for k := range inner {
		if k != "message" && k != "nxcloud_code" {
			t.Errorf("error body %s: unexpected key %q", resp.Body, k)
		}
	}
	var e errorResponse
	dec := json.NewDecoder(strings.NewReader(resp.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("error body %s: %v", resp.Body, err)
	}
	if e.Error.Message == "" {
		t.Errorf("error body %s: empty message", resp.Body)
	}
	return e
}
