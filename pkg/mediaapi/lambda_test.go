package mediaapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart/lambdarttest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/mediaapi"
)

func TestNewLambdaHandler(t *testing.T) {
	t.Parallel()
	rawPath := func(p string) eventMod {
		return func(ev *events.APIGatewayV2HTTPRequest) { ev.RawPath = p }
	}
	// samEvent is what `sam local generate-event apigateway http-api-proxy`
	// writes (SAM CLI's HttpApi.json with its defaults): a plain-text body
	// marked isBase64Encoded.
	samEvent := func(ev *events.APIGatewayV2HTTPRequest) {
		b, err := os.ReadFile(filepath.Join("testdata", "sam-http-api-proxy.json"))
		if err != nil {
			t.Fatal(err)
		}
		*ev = events.APIGatewayV2HTTPRequest{}
		if err := json.Unmarshal(b, ev); err != nil {
			t.Fatal(err)
		}
	}
	const urlMsg, bodyMsg = "percent-encode rawPath and rawQueryString", "marked isBase64Encoded but is not base64"
	tests := []struct {
		name       string
		mods       []eventMod
		wantStatus int
		wantMsg    string
		wantID     string // id NXCloud got; "" for no call
	}{
		{name: "fixture as is", wantStatus: 200, wantID: "1234567890123456"},
		{name: "raw control character in rawPath", mods: []eventMod{rawPath("/media/ab\x01c")}, wantStatus: 400, wantMsg: urlMsg},
		{name: "raw newline in rawQueryString", mods: []eventMod{withQuery("business_phone=8615812341795\n")}, wantStatus: 400, wantMsg: urlMsg},
		{name: "stray percent", mods: []eventMod{rawPath("/media/%zz")}, wantStatus: 400, wantMsg: urlMsg},
		{name: "raw control character in http.path", mods: []eventMod{rawPath(""), func(ev *events.APIGatewayV2HTTPRequest) {
			ev.RequestContext.HTTP.Path = "/media/a\x1bb"
		}}, wantStatus: 400, wantMsg: urlMsg},
		{name: "method that is not a token", mods: []eventMod{withMethod("GE T")}, wantStatus: 400, wantMsg: "HTTP method"},
		{name: "body marked base64 that is not", mods: []eventMod{func(ev *events.APIGatewayV2HTTPRequest) {
			ev.Body, ev.IsBase64Encoded = "not base64!", true
		}}, wantStatus: 400, wantMsg: bodyMsg},
		{name: "sam local generate-event apigateway http-api-proxy", mods: []eventMod{samEvent}, wantStatus: 400, wantMsg: bodyMsg},
		{name: "the same event with a base64 body", mods: []eventMod{samEvent, func(ev *events.APIGatewayV2HTTPRequest) {
			ev.Body = base64.StdEncoding.EncodeToString([]byte(ev.Body))
		}}, wantStatus: 404, wantMsg: "not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := &fakeMedia{}
			log, logs := lambdarttest.Logger()
			h := mediaapi.NewHandler(fake, mediaapi.Options{Logger: log, Methods: []string{http.MethodGet}})
			ev := loadEvent(t, getEvent)
			for _, m := range tc.mods {
				m(&ev)
			}
			resp, err := mediaapi.NewLambdaHandler(h)(context.Background(), ev)
			if err != nil {
				t.Fatalf("invocation failed: %v", err)
			}
			if resp.StatusCode != tc.wantStatus || resp.Headers["Content-Type"] != "application/json" {
				t.Fatalf("got %d %v %s, want %d application/json", resp.StatusCode, resp.Headers, resp.Body, tc.wantStatus)
			}
			if lines := logs.Lines(t, "media request"); len(lines) != 1 || lines[0]["status"] != float64(tc.wantStatus) {
				t.Errorf("want one request log line with status %d, got %v", tc.wantStatus, lines)
			}
			if tc.wantStatus != http.StatusOK {
				e := decodeError(t, resp)
				if !strings.Contains(e.Error.Message, tc.wantMsg) || e.Error.NXCloudCode != nil {
					t.Errorf("error %s, want a message containing %q and no nxcloud_code", resp.Body, tc.wantMsg)
				}
			}
			calls := fake.recorded()
			switch {
			case tc.wantID == "" && len(calls) != 0:
				t.Errorf("NXCloud called: %v", calls)
			case tc.wantID != "" && (len(calls) != 1 || calls[0].id != tc.wantID):
				t.Errorf("NXCloud calls = %v, want one for %q", calls, tc.wantID)
			}
		})
	}
}

// TestNewLambdaHandlerMatchesAdapter checks that for the well-formed events
// API Gateway sends, NewLambdaHandler answers exactly what the plain adapter
// answers.
func TestNewLambdaHandlerMatchesAdapter(t *testing.T) {
	t.Parallel()
	for _, name := range []string{getEvent, deleteEvent} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			log, _ := lambdarttest.Logger()
			h := mediaapi.NewHandler(&fakeMedia{}, mediaapi.Options{Logger: log})
			ev := loadEvent(t, name)
			want, err := httpadapter.NewV2(h).ProxyWithContext(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			got, err := mediaapi.NewLambdaHandler(h)(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("NewLambdaHandler = %+v, adapter = %+v", got, want)
			}
		})
	}
}
