package template_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/config"
)

// The upload sessions' and the content route's checks, on template.yaml as
// deployed (deploy: goformation's intrinsic processor).

// TestSessionRoutes: the new routes are served by the right functions and,
// like every route, require IAM unless ApiAuthType is NONE.
func TestSessionRoutes(t *testing.T) {
	t.Parallel()
	iam := []any{doc{"AWS_IAM": []any{}}}
	for _, tc := range []struct {
		params map[string]string
		want   any
	}{
		{nil, iam}, // the default
		{map[string]string{"ApiAuthType": "AWS_IAM"}, iam},
		{map[string]string{"ApiAuthType": "NONE"}, []any{}},
	} {
		tpl := deploy(t, tc.params)
		routes := httpRoutes(t, tpl)
		for route, fn := range map[string]string{
			"POST /uploads":                "UploadSessionsFunction",
			"GET /uploads/{uploadId}":      "UploadSessionsFunction",
			"GET /media/{mediaId}/content": "GetMediaFunction",
		} {
			if routes[route] != fn {
				t.Errorf("%v: %s is served by %q, want %s", tc.params, route, routes[route], fn)
			}
		}
		for route, fn := range routes {
			if fn == "UploadSessionsFunction" && !strings.HasPrefix(route, "POST /uploads") && !strings.HasPrefix(route, "GET /uploads/") {
				t.Errorf("UploadSessionsFunction also serves %s", route)
			}
			method, path, _ := strings.Cut(route, " ")
			op := at(tpl, "Resources", "HttpApi", "Properties", "DefinitionBody", "paths", path, strings.ToLower(method))
			if op == nil {
				t.Errorf("%v: DefinitionBody has no operation for %s: it would take no authorization", tc.params, route)
				continue
			}
			// (No event sets its own Auth: TestSecurityAPIAuthorization.)
			if sec := at(op, "security"); !reflect.DeepEqual(sec, tc.want) {
				t.Errorf("%v: %s security = %v, want %v", tc.params, route, sec, tc.want)
			}
		}
	}
}

// sessionsGrants returns action -> resources of the function's Allow
// statements.
func sessionsGrants(t *testing.T, tpl doc, id string) map[string][]string {
	t.Helper()
	grants := map[string][]string{}
	for _, pol := range list(at(tpl, "Resources", id, "Properties", "Policies")) {
		sts := list(at(pol, "Statement"))
		if len(sts) == 0 {
			t.Fatalf("%s: policy %v is not an inline policy document", id, pol)
		}
		for _, st := range sts {
			for _, k := range []string{"NotAction", "NotResource", "Principal"} {
				if at(st, k) != nil {
					t.Errorf("%s statement %v uses %s", id, at(st, "Sid"), k)
				}
			}
			if at(st, "Effect") != "Allow" {
				t.Errorf("%s statement %v: Effect %v", id, at(st, "Sid"), at(st, "Effect"))
			}
			for _, a := range strs(at(st, "Action")) {
				for _, r := range list(at(st, "Resource")) {
					s, ok := r.(string)
					if !ok {
						s = fmt.Sprintf("%v (not a name: a reference to the bucket is a circular dependency)", r)
					}
					grants[a] = append(grants[a], s)
				}
			}
		}
	}
	for a := range grants {
		slices.Sort(grants[a])
	}
	return grants
}

// TestSessionsRole: the sessions' role may put objects only in the upload
// prefix's session folder (which is all a presigned URL it signs can do),
// read the session documents, the files' heads and the records of those
// files, and list the bucket for honest 404s: nothing else, no secret, no
// wildcard resource.
func TestSessionsRole(t *testing.T) {
	t.Parallel()
	for _, params := range []map[string]string{
		nil,
		{"UploadPrefix": "media/in/"},
		{"ExistingSecretArn": "arn:aws:secretsmanager:ap-southeast-2:123456789012:secret:nxcloud/prod-AbCdEf"},
	} {
		tpl := deploy(t, params)
		prefix := params["UploadPrefix"]
		if prefix == "" {
			prefix = config.DefaultUploadPrefix
		}
		bucket, _ := at(tpl, "Resources", "MediaBucket", "Properties", "BucketName").(string)
		arn := "arn:aws:s3:::" + bucket
		want := map[string][]string{
			"s3:PutObject":  {arn + "/" + prefix + "uploads/*"},
			"s3:GetObject":  {arn + "/nxcloud-records/" + prefix + "uploads/*", arn + "/" + prefix + "uploads/*"},
			"s3:ListBucket": {arn},
		}
		slices.Sort(want["s3:GetObject"])
		got := sessionsGrants(t, tpl, "UploadSessionsFunction")
		if !maps.EqualFunc(got, want, slices.Equal) {
			t.Errorf("%v: grants = %v\nwant %v", params, got, want)
		}
		for action, resources := range got {
			if strings.Contains(action, "*") || !strings.HasPrefix(action, "s3:") {
				t.Errorf("%v: %s is granted: the function only presigns puts and reads S3", params, action)
			}
			for _, r := range resources {
				if r == "*" || r == arn+"/*" || !strings.HasPrefix(r, arn) {
					t.Errorf("%v: %s on %q: want the stack's bucket, not all of it", params, action, r)
				}
			}
		}
		for _, r := range got["s3:PutObject"] {
			if !strings.HasPrefix(r, arn+"/"+prefix) {
				t.Errorf("%v: s3:PutObject on %s is outside the upload prefix %s", params, r, prefix)
			}
		}
	}
}

// TestSessionsEnvironment: the function's own variables, with Globals, are a
// valid configuration of the sessions (MEDIA_BUCKET from the bucket,
// UPLOAD_URL_TTL from its parameter), and the parameter accepts what the
// function accepts.
func TestSessionsEnvironment(t *testing.T) {
	t.Parallel()
	tpl := deploy(t, nil)
	own, _ := at(tpl, "Resources", "UploadSessionsFunction", "Properties", "Environment", "Variables").(doc)
	if want := (doc{config.EnvMediaBucket: doc{"Ref": "MediaBucket"}, config.EnvUploadURLTTL: "15m"}); !reflect.DeepEqual(own, want) {
		t.Errorf("own variables = %v, want %v", own, want)
	}
	env := map[string]string{}
	for k, v := range at(props(tpl, "UploadSessionsFunction"), "Environment", "Variables").(doc) {
		env[k], _ = v.(string)
	}
	env[config.EnvMediaBucket], _ = at(tpl, "Resources", "MediaBucket", "Properties", "BucketName").(string)
	cfg, err := config.FromEnv(func(k string) string { return env[k] }, config.EnvMediaBucket)
	if err != nil {
		t.Fatalf("the function would fail init: %v", err)
	}
	if cfg.UploadURLTTL != config.DefaultUploadURLTTL || cfg.UploadPrefix != config.DefaultUploadPrefix || cfg.MaxUploadBytes != config.DefaultMaxUploadBytes {
		t.Errorf("defaults: %+v", cfg)
	}

	pattern := regexp.MustCompile(at(tpl, "Parameters", "UploadUrlTtl", "AllowedPattern").(string))
	for _, v := range []string{"15m", "1s", "90s", "1h30m", "168h", "2.5m"} {
		if _, err := time.ParseDuration(v); err != nil || !pattern.MatchString(v) {
			t.Errorf("UploadUrlTtl rejects the Go duration %q", v)
		}
	}
	for _, v := range []string{"15", "15 minutes", "-1m", ""} {
		if pattern.MatchString(v) {
			t.Errorf("UploadUrlTtl accepts %q", v)
		}
	}
	for _, out := range []string{"UploadSessionsFunctionArn", "UploadSessionsLogGroupName"} {
		if at(tpl, "Outputs", out, "Value") == nil {
			t.Errorf("no %s output", out)
		}
	}
}

// TestSessionEvents: the events of the new routes are HTTP API v2 events of
// routes the template declares, for the function that serves them.
func TestSessionEvents(t *testing.T) {
	t.Parallel()
	routes := httpRoutes(t, deploy(t, nil))
	for _, tc := range []struct {
		file, function, method, rawPath string
		params                          map[string]string
	}{
		{"create-upload.json", "UploadSessionsFunction", "POST", "/uploads", nil},
		{"get-upload.json", "UploadSessionsFunction", "GET", "/uploads/3f9c2a7d5e1b4c8a9d0e6f7a8b9c0d1e", map[string]string{"uploadId": "3f9c2a7d5e1b4c8a9d0e6f7a8b9c0d1e"}},
		{"get-media-content.json", "GetMediaFunction", "GET", "/media/1234567890123456/content", map[string]string{"mediaId": "1234567890123456"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			var ev events.APIGatewayV2HTTPRequest
			decodeStrict(t, tc.file, &ev)
			rc := ev.RequestContext
			switch {
			case ev.Version != "2.0":
				t.Errorf("version %q, want 2.0", ev.Version)
			case routes[ev.RouteKey] != tc.function || rc.RouteKey != ev.RouteKey:
				t.Errorf("routeKey %q (requestContext %q) is not a route of %s: %v", ev.RouteKey, rc.RouteKey, tc.function, routes)
			case rc.HTTP.Method != tc.method || ev.RawPath != tc.rawPath || rc.HTTP.Path != tc.rawPath:
				t.Errorf("%s %s (http.path %s), want %s %s", rc.HTTP.Method, ev.RawPath, rc.HTTP.Path, tc.method, tc.rawPath)
			case !maps.Equal(ev.PathParameters, tc.params):
				t.Errorf("pathParameters = %v, want %v", ev.PathParameters, tc.params)
			case rc.Authorizer == nil || rc.Authorizer.IAM == nil || rc.Authorizer.IAM.UserARN == "":
				t.Error("requestContext.authorizer.iam is not set: the API requires IAM by default")
			case rc.RequestID == "" || rc.TimeEpoch == 0 || rc.Stage == "":
				t.Error("requestContext lacks requestId, timeEpoch or stage")
			}
			if q, err := url.ParseQuery(ev.RawQueryString); err != nil || q.Get("business_phone") != ev.QueryStringParameters["business_phone"] {
				t.Errorf("rawQueryString %q and queryStringParameters %v disagree", ev.RawQueryString, ev.QueryStringParameters)
			}
			if tc.method != "POST" {
				return
			}
			var body map[string]any
			if err := json.Unmarshal([]byte(ev.Body), &body); err != nil || ev.IsBase64Encoded {
				t.Fatalf("body %q is not a JSON object in plain text: %v", ev.Body, err)
			}
			if got := slices.Sorted(maps.Keys(body)); !slices.Equal(got, []string{"business_phone", "file_name", "size", "type"}) {
				t.Errorf("body members = %v", got)
			}
		})
	}
}
