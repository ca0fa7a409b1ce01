package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart/lambdarttest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localsm"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
)

func TestMain(m *testing.M) { os.Exit(lambdarttest.Main(m)) }

func readEvent(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDeleteMediaFunction runs the built bootstrap through the Lambda Runtime
// API with the same events sam local invoke uses.
func TestDeleteMediaFunction(t *testing.T) {
	t.Parallel()
	bin := lambdarttest.Bootstrap(t, ".")
	nx := nxcloudtest.NewTestServer(t, nxcloudtest.WithCredentials("AKfn-test", "fn-test-secret"),
		nxcloudtest.WithNotWhatsAppPhones("8613900000009"))
	sm := localsm.NewTestServer(t)
	sm.Put("nxcloud-media-local", `{"accessKey":"AKfn-test","accessSecret":"fn-test-secret"}`)

	delEv := readEvent(t, "delete-media.json")
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(delEv, &ev); err != nil {
		t.Fatal(err)
	}
	id := ev.PathParameters["mediaId"]
	nx.AddMedia(nxcloudtest.Media{ID: id, MimeType: "image/png", FileName: "a.png", Content: []byte("png")})

	out := &lambdarttest.Buffer{}
	rt := lambdarttest.Start(t, lambdart.Function{
		Name: "DeleteMediaFunction", Path: bin, Timeout: 10 * time.Second,
		Env: []string{
			"NXCLOUD_SECRET_ID=nxcloud-media-local",
			"NXCLOUD_BASE_URL=" + nx.URL(),
			"NXCLOUD_TIMEOUT=3s",
			"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + sm.URL(),
			"AWS_ACCESS_KEY_ID=AKIDLOCAL",
			"AWS_SECRET_ACCESS_KEY=local-secret",
			"AWS_EC2_METADATA_DISABLED=true",
		},
		Stdout: out, Stderr: out,
	})

	notWhatsApp := ev
	notWhatsApp.RawQueryString, notWhatsApp.QueryStringParameters = "business_phone=8613900000009", nil
	notWhatsAppEv, err := json.Marshal(notWhatsApp)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		payload    []byte
		wantStatus int
		wantBody   string // exact when it starts with {, else a substring
		wantAllow  string
	}{
		{name: "delete event", payload: delEv, wantStatus: 200, wantBody: `{"success":true}`},
		{name: "deleted already: NXCloud 9000", payload: delEv, wantStatus: 400, wantBody: `"nxcloud_code":9000`},
		{name: "not a WhatsApp number", payload: notWhatsAppEv, wantStatus: 422, wantBody: `is not a WhatsApp number (NXCloud 9002`},
		{name: "get event is not served here", payload: readEvent(t, "get-media.json"), wantStatus: 405, wantBody: "use DELETE", wantAllow: "DELETE"},
	}
	for _, tc := range tests { // one Runtime: invocations run in turn
		res, err := rt.Invoke(t.Context(), tc.payload)
		if err != nil || res.Error != nil {
			t.Fatalf("%s: invoke: %v %+v", tc.name, err, res)
		}
		var resp events.APIGatewayV2HTTPResponse
		if err := json.Unmarshal(res.Payload, &resp); err != nil {
			t.Fatalf("%s: payload %s: %v", tc.name, res.Payload, err)
		}
		bodyOK := strings.Contains(resp.Body, tc.wantBody)
		if strings.HasPrefix(tc.wantBody, "{") {
			bodyOK = resp.Body == tc.wantBody
		}
		if resp.StatusCode != tc.wantStatus || !bodyOK || resp.Headers["Content-Type"] != "application/json" || resp.Headers["Allow"] != tc.wantAllow {
			t.Errorf("%s: got %d %v %s, want %d Allow=%q body %s", tc.name, resp.StatusCode, resp.Headers, resp.Body, tc.wantStatus, tc.wantAllow, tc.wantBody)
		}
	}
	if _, ok := nx.Media(id); ok {
		t.Errorf("media %s still stored at NXCloud", id)
	}
	if n := len(nx.Calls("deleteMedia")); n != 3 {
		t.Errorf("NXCloud deleteMedia calls = %d, want 3", n)
	}
	if strings.Contains(out.String(), "fn-test-secret") || strings.Contains(out.String(), "AKfn-test") {
		t.Errorf("function output leaks a credential:\n%s", out.String())
	}
}
