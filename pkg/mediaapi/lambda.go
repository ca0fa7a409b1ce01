package mediaapi

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"
)

// LambdaHandler is the signature lambda.Start accepts for API Gateway HTTP API
// (payload format 2.0) events.
type LambdaHandler func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// NewLambdaHandler adapts h, a handler built by NewHandler,
// NewUploadsHandler or NewArchiveHandler, to Lambda as
// aws-lambda-go-api-proxy's httpadapter.NewV2(h).ProxyWithContext does,
// except for an event the adapter cannot turn into an *http.Request: a body
// marked isBase64Encoded that is not base64 (what `sam local generate-event
// apigateway http-api-proxy` writes), a rawPath or rawQueryString that
// url.Parse refuses (raw control characters, a '%' without two hex digits)
// or a method that is not an HTTP token. The adapter would fail the
// invocation and API Gateway answer a bare 500; h is handed a stand-in
// request instead, which it answers 400 with the error document (and logs
// like any other request). API Gateway sends these fields well formed, so
// its events never take that path.
func NewLambdaHandler(h http.Handler) LambdaHandler {
	var accessor core.RequestAccessorV2
	return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		req, err := accessor.EventToRequestWithContext(ctx, ev)
		if err != nil {
			bad := badInput("the event is not a valid HTTP request: percent-encode rawPath and rawQueryString (%%25 for %%, no raw control characters) and use an HTTP method such as GET")
			if corrupt := base64.CorruptInputError(0); errors.As(err, &corrupt) {
				bad = badInput("the event's body is marked isBase64Encoded but is not base64: encode the body or set isBase64Encoded to false")
			}
			req = (&http.Request{Method: ev.RequestContext.HTTP.Method, URL: &url.URL{}, Header: http.Header{}}).
				WithContext(context.WithValue(ctx, eventErrorKey{}, bad))
		}
		w := core.NewProxyResponseWriterV2()
		h.ServeHTTP(w, req)
		return w.GetProxyResponse()
	}
}

// eventErrorKey holds, in the context of NewLambdaHandler's stand-in request,
// why the event could not be converted.
type eventErrorKey struct{}
