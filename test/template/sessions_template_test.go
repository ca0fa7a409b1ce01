package template_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/intrinsics"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/config"
)

// The upload sessions' and the content route's checks, on template.yaml
// evaluated by goformation's intrinsic processor.

var (
	sessionsTemplatePath = filepath.Join("..", "..", "template.yaml")
	sessionsEventsDir    = filepath.Join("..", "..", "events")
)

// sessionsLongForm is template.yaml as JSON, short-form tags in their long
// form, read once: goformation's YAML reader is not safe for concurrent use.
var sessionsLongForm = sync.OnceValues(func() ([]byte, error) {
	b, err := os.ReadFile(sessionsTemplatePath)
	if err != nil {
		return nil, err
	}
	return intrinsics.ProcessYAML(b, &intrinsics.ProcessorOptions{NoProcess: true})
})

// sessionsStackSuffix is the last group of the UUID of goformation's
// AWS::StackId, which names the bucket.
const sessionsStackSuffix = "50e2416294e0"

// subVar matches a ${Name} of Fn::Sub.
var subVar = regexp.MustCompile(`\$\{([0-9A-Za-z:.]+)\}`)

// deployed is template.yaml as deployed with params (defaults otherwise) in
// goformation's account and region: parameters, pseudo parameters, Fn::Sub
// (both forms), Fn::If on the evaluated conditions, Fn::Select and Fn::Split
// are resolved; what exists only once deployed stays readable: "!Ref
// MediaBucket", "!GetAtt X.Arn".
func deployed(t *testing.T, params map[string]any) *cloudformation.Template {
	t.Helper()
	ref := func(name string, input, tpl any) any {
		s, _ := input.(string)
		switch s {
		case "AWS::Partition":
			return "aws"
		case "AWS::URLSuffix":
			return "amazonaws.com"
		}
		if v := intrinsics.Ref(name, input, tpl); v != nil || s == "AWS::NoValue" {
			return v
		}
		return "!Ref " + s
	}
	sub := func(_ string, input, tpl any) any {
		src, vars := "", map[string]any{}
		switch v := input.(type) {
		case string:
			src = v
		case []any:
			if len(v) != 2 {
				return nil
			}
			src, _ = v[0].(string)
			vars, _ = v[1].(map[string]any)
		}
		return subVar.ReplaceAllStringFunc(src, func(m string) string {
			name := m[2 : len(m)-1]
			if v, ok := vars[name].(string); ok {
				return v
			}
			if strings.Contains(name, ".") {
				return "!GetAtt " + name
			}
			s, _ := ref("Ref", name, tpl).(string)
			return strings.TrimPrefix(s, "!Ref ")
		})
	}
	getAtt := func(_ string, input, _ any) any {
		parts, _ := input.([]any)
		return "!GetAtt " + fmt.Sprint(parts...)
	}
	// goformation's Fn::Split answers a []string, which its Fn::Select
	// does not take.
	split := func(name string, input, tpl any) any {
		var out []any
		for _, p := range intrinsics.FnSplit(name, input, tpl).([]string) {
			out = append(out, p)
		}
		return out
	}
	src, err := sessionsLongForm()
	if err != nil {
		t.Fatalf("%s: %v", sessionsTemplatePath, err)
	}
	// The processor's EvaluateConditions also turns every resource with a
	// Condition into a bool: take only the evaluated Conditions from it, for
	// Fn::If.
	evaluated, err := intrinsics.ProcessJSON(src, &intrinsics.ProcessorOptions{ParameterOverrides: params, EvaluateConditions: true})
	if err != nil {
		t.Fatal(err)
	}
	var conds struct{ Conditions map[string]bool }
	if err := json.Unmarshal(evaluated, &conds); err != nil {
		t.Fatalf("the template's conditions do not evaluate to booleans: %v", err)
	}
	fnIf := func(_ string, input, _ any) any {
		args, _ := input.([]any)
		if len(args) != 3 {
			return nil
		}
		name, _ := args[0].(string)
		if v, ok := conds.Conditions[name]; !ok {
			t.Errorf("Fn::If on the unknown condition %q", name)
		} else if v {
			return args[1]
		}
		return args[2]
	}
	tpl, err := goformation.ParseJSONWithOptions(src, &intrinsics.ProcessorOptions{
		ParameterOverrides:        params,
		IntrinsicHandlerOverrides: map[string]intrinsics.IntrinsicHandler{"Ref": ref, "Fn::Sub": sub, "Fn::GetAtt": getAtt, "Fn::If": fnIf, "Fn::Split": split},
	})
	if err != nil {
		t.Fatalf("goformation cannot read %s: %v", sessionsTemplatePath, err)
	}
	return tpl
}

// httpAPIRoutes returns "METHOD /path" -> function for every HttpApi event,
// checking each is on the stack's API, payload 2.0, without its own Auth.
func httpAPIRoutes(t *testing.T, tpl *cloudformation.Template) map[string]string {
	t.Helper()
	routes := map[string]string{}
	for id, fn := range tpl.GetAllServerlessFunctionResources() {
		for name, ev := range fn.Events {
			if ev.Type != "HttpApi" {
				continue
			}
			e := ev.Properties.HttpApiEvent
			if e == nil || e.Method == nil || e.Path == nil {
				t.Fatalf("%s event %s is not an HttpApi event with a method and a path", id, name)
			}
			routes[strings.ToUpper(*e.Method)+" "+*e.Path] = id
			if e.ApiId == nil || *e.ApiId != "!Ref HttpApi" {
				t.Errorf("%s event %s: ApiId = %v, want !Ref HttpApi", id, name, e.ApiId)
			}
			if e.PayloadFormatVersion == nil || *e.PayloadFormatVersion != "2.0" {
				t.Errorf("%s event %s: PayloadFormatVersion = %v, want 2.0", id, name, e.PayloadFormatVersion)
			}
			if e.Auth != nil {
				t.Errorf("%s event %s sets Auth: it would override the API's authorization", id, name)
			}
		}
	}
	return routes
}

// TestSessionRoutes: the new routes are served by the right functions and,
// like every route, require IAM unless ApiAuthType is NONE.
func TestSessionRoutes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		authType string
		want     any
	}{
		{"", []any{map[string]any{"AWS_IAM": []any{}}}}, // the default
		{"AWS_IAM", []any{map[string]any{"AWS_IAM": []any{}}}},
		{"NONE", []any{}},
	} {
		t.Run("ApiAuthType="+tc.authType, func(t *testing.T) {
			t.Parallel()
			params := map[string]any{}
			if tc.authType != "" {
				params["ApiAuthType"] = tc.authType
			}
			tpl := deployed(t, params)
			routes := httpAPIRoutes(t, tpl)
			for route, fn := range map[string]string{
				"POST /uploads":                "UploadSessionsFunction",
				"GET /uploads/{uploadId}":      "UploadSessionsFunction",
				"GET /media/{mediaId}/content": "GetMediaFunction",
			} {
				if routes[route] != fn {
					t.Errorf("%s is served by %q, want %s", route, routes[route], fn)
				}
			}
			for route, fn := range routes {
				if fn == "UploadSessionsFunction" && !strings.Contains(route, " /uploads") {
					t.Errorf("UploadSessionsFunction also serves %s", route)
				}
			}
			api, err := tpl.GetServerlessHttpApiWithName("HttpApi")
			if err != nil {
				t.Fatal(err)
			}
			if api.Auth != nil {
				t.Fatal("HttpApi.Auth is set: SAM would overwrite the operations' security")
			}
			paths, _ := api.DefinitionBody.(map[string]any)["paths"].(map[string]any)
			for route := range routes {
				method, path, _ := strings.Cut(route, " ")
				op, _ := paths[path].(map[string]any)[strings.ToLower(method)].(map[string]any)
				if op == nil {
					t.Errorf("DefinitionBody has no operation for %s: it would take no authorization", route)
					continue
				}
				if !reflect.DeepEqual(op["security"], tc.want) {
					t.Errorf("%s security = %v, want %v", route, op["security"], tc.want)
				}
			}
		})
	}
}

// sessionsGrants returns action -> resources of the function's inline
// policies, failing on anything but plain Allow statements.
func sessionsGrants(t *testing.T, tpl *cloudformation.Template, id string) map[string][]string {
	t.Helper()
	fn, err := tpl.GetServerlessFunctionWithName(id)
	if err != nil {
		t.Fatal(err)
	}
	// goformation fills every list form it can: a managed policy shows as a
	// non-empty string, a SAM policy template as a document without
	// statements.
	if fn.Policies == nil || fn.Policies.IAMPolicyDocumentArray == nil || fn.Policies.String != nil {
		t.Fatalf("%s: Policies must be a list of inline policy documents", id)
	}
	if fn.Policies.StringArray != nil && slices.ContainsFunc(*fn.Policies.StringArray, func(s string) bool { return s != "" }) {
		t.Errorf("%s: managed policies %v: only inline statements can be checked", id, *fn.Policies.StringArray)
	}
	grants := map[string][]string{}
	for _, doc := range *fn.Policies.IAMPolicyDocumentArray {
		if len(doc.Statement) == 0 {
			t.Errorf("%s: a policy without statements (a SAM policy template?)", id)
		}
		for _, s := range doc.Statement {
			st, _ := s.(map[string]any)
			for _, k := range []string{"NotAction", "NotResource", "Principal"} {
				if _, ok := st[k]; ok {
					t.Errorf("%s statement %v uses %s", id, st["Sid"], k)
				}
			}
			if st["Effect"] != "Allow" {
				t.Errorf("%s statement %v: Effect %v", id, st["Sid"], st["Effect"])
			}
			for _, a := range asStrings(st["Action"]) {
				grants[a] = append(grants[a], asStrings(st["Resource"])...)
			}
		}
	}
	for a := range grants {
		slices.Sort(grants[a])
	}
	return grants
}

// asStrings reads a string or a list of strings.
func asStrings(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
		return out
	}
	return []string{fmt.Sprint(v)}
}

// TestSessionsRole: the sessions' role may put objects only under the
// upload prefix's session folder (which is what a presigned URL it signs can
// do), read the session documents, the files' heads and the records of those
// files, and list the bucket for honest 404s; nothing else, no secret, no
// wildcard resource.
func TestSessionsRole(t *testing.T) {
	t.Parallel()
	for _, params := range []map[string]any{
		{},
		{"UploadPrefix": "media/in/"},
		{"ExistingSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:nxcloud/prod-AbCdEf"},
	} {
		t.Run(fmt.Sprint(params), func(t *testing.T) {
			t.Parallel()
			tpl := deployed(t, params)
			prefix, _ := params["UploadPrefix"].(string)
			if prefix == "" {
				prefix = config.DefaultUploadPrefix
			}
			bucket := "arn:aws:s3:::nxcloud-media-123456789012-us-east-1-" + sessionsStackSuffix
			want := map[string][]string{
				"s3:PutObject":  {bucket + "/" + prefix + "uploads/*"},
				"s3:GetObject":  {bucket + "/nxcloud-records/" + prefix + "uploads/*", bucket + "/" + prefix + "uploads/*"},
				"s3:ListBucket": {bucket},
			}
			slices.Sort(want["s3:GetObject"])
			got := sessionsGrants(t, tpl, "UploadSessionsFunction")
			if !maps.EqualFunc(got, want, slices.Equal) {
				t.Errorf("grants = %v\nwant     %v", got, want)
			}
			for action, resources := range got {
				if strings.Contains(action, "*") || !strings.HasPrefix(action, "s3:") {
					t.Errorf("%s is granted: the function only presigns puts and reads S3", action)
				}
				for _, r := range resources {
					if r == "*" || strings.HasSuffix(r, ":::*") || r == bucket+"/*" || strings.Contains(r, "!Ref") || strings.Contains(r, "!GetAtt") {
						t.Errorf("%s on %q: want a resource of the stack's bucket, named with !Sub", action, r)
					}
				}
			}
			for _, r := range got["s3:PutObject"] {
				if !strings.HasPrefix(r, bucket+"/"+prefix) {
					t.Errorf("s3:PutObject on %s is outside the upload prefix %s", r, prefix)
				}
			}
		})
	}
}

// TestSessionsEnvironment: the function's own variables, with Globals,
// are a valid configuration of the sessions (MEDIA_BUCKET from the bucket,
// UPLOAD_URL_TTL from its parameter), and the parameter accepts what the
// function accepts.
func TestSessionsEnvironment(t *testing.T) {
	t.Parallel()
	tpl := deployed(t, nil)
	fn, err := tpl.GetServerlessFunctionWithName("UploadSessionsFunction")
	if err != nil {
		t.Fatal(err)
	}
	own := fn.Environment.Variables
	if want := map[string]string{config.EnvMediaBucket: "!Ref MediaBucket", config.EnvUploadURLTTL: "15m"}; !maps.Equal(own, want) {
		t.Errorf("own variables = %v, want %v", own, want)
	}
	g, err := tpl.GetServerlessGlobalFunction()
	if err != nil {
		t.Fatal(err)
	}
	env := maps.Clone(g.Environment.Variables)
	maps.Copy(env, own)
	env[config.EnvMediaBucket] = "nxcloud-media-123456789012-us-east-1-" + sessionsStackSuffix
	cfg, err := config.FromEnv(func(k string) string { return env[k] }, config.EnvMediaBucket)
	if err != nil {
		t.Fatalf("the function would fail init: %v", err)
	}
	if cfg.UploadURLTTL != config.DefaultUploadURLTTL || cfg.UploadPrefix != config.DefaultUploadPrefix || cfg.MaxUploadBytes != config.DefaultMaxUploadBytes {
		t.Errorf("defaults: %+v", cfg)
	}

	pattern := regexp.MustCompile(*tpl.Parameters["UploadUrlTtl"].AllowedPattern)
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
	if _, ok := tpl.Outputs["UploadSessionsFunctionArn"]; !ok {
		t.Error("no UploadSessionsFunctionArn output")
	}
}

// TestSessionEvents: the events of the new routes are HTTP API v2 events of
// routes the template declares, for the function that serves them.
func TestSessionEvents(t *testing.T) {
	t.Parallel()
	routes := httpAPIRoutes(t, deployed(t, nil))
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
			b, err := os.ReadFile(filepath.Join(sessionsEventsDir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			var ev events.APIGatewayV2HTTPRequest
			if err := dec.Decode(&ev); err != nil {
				t.Fatalf("not an API Gateway v2 event: %v", err)
			}
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
