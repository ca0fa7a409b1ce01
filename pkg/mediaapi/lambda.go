package mediaapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
)

// LambdaHandler is the signature lambda.Start accepts for API Gateway HTTP API
// (payload format 2.0) events.
type LambdaHandler func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// NewLambdaHandler adapts h to Lambda: it is
// httpadapter.NewV2(h).ProxyWithContext, except that the event's rawPath
// (or requestContext.http.path when rawPath is empty) and rawQueryString are
// first made parseable. The adapter builds the request URL from them with
// url.Parse, which refuses control characters and a '%' not followed by two
// hex digits; it would then fail the invocation itself, and API Gateway would
// answer a bare 500 instead of the handler's JSON 400. API Gateway sends these
// fields percent-encoded, and for such input the repair changes nothing; it
// matters for hand-written events (sam local invoke -e) holding raw
// characters: those are percent-encoded (control characters, space, '#', a
// '?' in the path, a stray '%'), so h sees and refuses them like any other
// input.
func NewLambdaHandler(h http.Handler) LambdaHandler {
	adapter := httpadapter.NewV2(h)
	return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		if ev.RawPath != "" {
			ev.RawPath = escapeUnparseable(ev.RawPath, true)
		} else {
			ev.RequestContext.HTTP.Path = escapeUnparseable(ev.RequestContext.HTTP.Path, true)
		}
		ev.RawQueryString = escapeUnparseable(ev.RawQueryString, false)
		ev.RequestContext.HTTP.Method = escapeMethod(ev.RequestContext.HTTP.Method)
		return adapter.ProxyWithContext(ctx, ev)
	}
}

// escapeMethod percent-encodes the bytes of a hand-written event's method
// that are not HTTP token characters (http.NewRequest refuses such a method
// and the adapter would fail the invocation), so that h answers it 405 like
// any other method it does not serve. A valid method comes back unchanged.
func escapeMethod(m string) string {
	const hex = "0123456789ABCDEF"
	isToken := func(c byte) bool {
		return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
	}
	var b strings.Builder
	for i := 0; i < len(m); i++ {
		if c := m[i]; isToken(c) {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0x0f])
		}
	}
	return b.String()
}

// escapeUnparseable percent-encodes the bytes url.Parse would refuse or
// misread in a path (inPath) or a query: control characters, space, '#', '?'
// in a path, and a '%' that does not start a %XX escape. Valid input comes
// back unchanged.
func escapeUnparseable(s string, inPath bool) string {
	const hex = "0123456789ABCDEF"
	isHex := func(c byte) bool {
		return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
	}
	var b strings.Builder
	started := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		bad := c < 0x21 || c == 0x7f || c == '#' || (inPath && c == '?') ||
			(c == '%' && (i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2])))
		switch {
		case bad && !started:
			started = true
			b.Grow(len(s) + 8)
			b.WriteString(s[:i])
			fallthrough
		case bad:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0x0f])
		case started:
			b.WriteByte(c)
		}
	}
	if !started {
		return s
	}
	return b.String()
}
