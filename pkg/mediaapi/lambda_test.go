package mediaapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/mediaapi"
)

func TestNewLambdaHandler(t *testing.T) {
	t.Parallel()
	rawPath := func(p string) eventMod {
		return func(ev *events.APIGatewayV2HTTPRequest) { ev.RawPath = p }
	}
	tests := []struct {
		name       string
		mods       []eventMod
		wantStatus int
		wantMsg    string
		wantID     string // id NXCloud got; "" for no call
	}{
		{name: "fixture as is", wantStatus: 200, wantID: "1234567890123456"},
		{name: "raw control character in rawPath", mods: []eventMod{rawPath("/media/ab\x01c")}, wantStatus: 400, wantMsg: "control characters"},
		{name: "raw newline in rawQueryString", mods: []eventMod{withQuery("business_phone=8615812341795\n")}, wantStatus: 400, wantMsg: "not a merchant phone"},
		{name: "stray percent", mods: []eventMod{rawPath("/media/%zz")}, wantStatus: 200, wantID: "%zz"},
		{name: "raw control character in http.path", mods: []eventMod{rawPath(""), func(ev *events.APIGatewayV2HTTPRequest) {
			ev.RequestContext.HTTP.Path = "/media/a\x1bb"
		}}, wantStatus: 400, wantMsg: "control characters"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := &fakeMedia{}
			log, _ := newLogger()
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
			var e errorResponse
			_ = json.Unmarshal([]byte(resp.Body), &e)
			if !strings.Contains(e.Error.Message, tc.wantMsg) {
				t.Errorf("message %q does not contain %q", e.Error.Message, tc.wantMsg)
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
			log, _ := newLogger()
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
