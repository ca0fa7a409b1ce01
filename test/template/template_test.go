package template_test

import (
	"cmp"
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
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

// specVariables are the variables of SPEC.md, "Configuration".
var specVariables = []string{
	config.EnvSecretID,
	config.EnvBaseURL,
	config.EnvBusinessPhone,
	config.EnvSecretTTL,
	config.EnvSignAlgorithm,
	config.EnvTimeout,
	config.EnvMaxUploadBytes,
	config.EnvUploadPrefix,
	config.EnvMediaPrefix,
	config.EnvArchivePrefix,
	config.EnvNamespace,
}

// opsVariables are the variables Globals sets beside SPEC's, and their
// values: the log lines' service (the stack's name, the variable AWS Lambda
// Powertools reads), and the endpoints `sam local invoke --env-vars` may
// set, empty in AWS.
var opsVariables = map[string]any{
	"POWERTOOLS_SERVICE_NAME":          "Media-Stack-With-Capitals",
	"AWS_ENDPOINT_URL_S3":              "",
	"AWS_ENDPOINT_URL_SECRETS_MANAGER": "",
}

func TestFunctions(t *testing.T) {
	t.Parallel()
	tpl := deploy(t, nil)
	if got, want := functions(tpl), slices.Sorted(maps.Keys(functionDirs)); !slices.Equal(got, want) {
		t.Fatalf("serverless functions = %v, want %v", got, want)
	}
	for id := range functionDirs {
		if bm := at(tpl, "Resources", id, "Metadata", "BuildMethod"); bm != "makefile" {
			t.Errorf("%s: Metadata.BuildMethod = %v, want makefile", id, bm)
		}
		p := props(tpl, id)
		for prop, want := range map[string]any{"Runtime": "provided.al2023", "Handler": "bootstrap", "CodeUri": "."} {
			if p[prop] != want {
				t.Errorf("%s: %s = %v, want %v", id, prop, p[prop], want)
			}
		}
		if got := strs(p["Architectures"]); !slices.Equal(got, []string{"arm64"}) {
			t.Errorf("%s: Architectures = %v, want [arm64]", id, p["Architectures"])
		}
		timeout := num(p["Timeout"])
		if timeout < 1 || timeout > 900 {
			t.Errorf("%s: Timeout = %v, want 1 to 900 seconds", id, p["Timeout"])
		}
		if id != "UploadTemplateFileFunction" && id != "UploadMediaFunction" && id != "ReconcileFunction" && timeout >= 30 {
			t.Errorf("%s: Timeout = %v s: an HTTP API integration gives up after 30 s, answer before", id, timeout)
		}
		if num(p["MemorySize"]) < 128 {
			t.Errorf("%s: MemorySize = %v, want at least 128", id, p["MemorySize"])
		}
	}
}

// httpRoutes returns "METHOD /path" -> function id for every HttpApi event,
// checking that each is on the stack's API with payload format 2.0.
func httpRoutes(t testing.TB, tpl doc) map[string]string {
	t.Helper()
	routes := map[string]string{}
	for _, id := range functions(tpl) {
		evs, _ := at(tpl, "Resources", id, "Properties", "Events").(doc)
		for name, ev := range evs {
			if at(ev, "Type") != "HttpApi" {
				continue
			}
			p := at(ev, "Properties")
			method, _ := at(p, "Method").(string)
			path, _ := at(p, "Path").(string)
			route := strings.ToUpper(method) + " " + path
			if prev, dup := routes[route]; dup {
				t.Errorf("route %s is served by %s and %s", route, prev, id)
			}
			routes[route] = id
			if api := at(p, "ApiId"); !reflect.DeepEqual(api, doc{"Ref": "HttpApi"}) {
				t.Errorf("%s event %s: ApiId = %v, want !Ref HttpApi", id, name, api)
			}
			if v := at(p, "PayloadFormatVersion"); v != "2.0" {
				t.Errorf("%s event %s: PayloadFormatVersion = %v, want \"2.0\"", id, name, v)
			}
		}
	}
	return routes
}

func TestHTTPAPIRoutes(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		"GET /media/{mediaId}":          "GetMediaFunction",
		"GET /media/{mediaId}/content":  "GetMediaFunction",
		"DELETE /media/{mediaId}":       "DeleteMediaFunction",
		"POST /uploads":                 "UploadSessionsFunction",
		"GET /uploads/{uploadId}":       "UploadSessionsFunction",
		"POST /media/{mediaId}/archive": "ArchiveMediaFunction",
	}
	if got := httpRoutes(t, deploy(t, nil)); !maps.Equal(got, want) {
		t.Errorf("HTTP API routes = %v, want %v", got, want)
	}
}

func TestPlaceholderSecret(t *testing.T) {
	t.Parallel()
	s, _ := at(deploy(t, nil), "Resources", "NxcloudSecret", "Properties", "SecretString").(string)
	if !strings.Contains(s, `"accessKey"`) || !strings.Contains(s, `"accessSecret"`) {
		t.Errorf("NxcloudSecret.SecretString = %q, want the {\"accessKey\",\"accessSecret\"} shape", s)
	}
}

func TestUploadTrigger(t *testing.T) {
	t.Parallel()
	if d := at(source(t), "Parameters", "UploadPrefix", "Default"); d != config.DefaultUploadPrefix {
		t.Errorf("UploadPrefix default = %v, want %s", d, config.DefaultUploadPrefix)
	}
	if strings.HasPrefix(claimPrefix, config.DefaultUploadPrefix) {
		t.Errorf("claim objects (%s) would trigger the upload function", claimPrefix)
	}
	if d := at(source(t), "Parameters", "MediaPrefix", "Default"); d != config.DefaultMediaPrefix {
		t.Errorf("MediaPrefix default = %v, want %s", d, config.DefaultMediaPrefix)
	}
	// Each upload function is notified under its own prefix, once.
	tpl := deploy(t, map[string]string{"UploadPrefix": "incoming/", "MediaPrefix": "messages/"})
	for id, prefix := range map[string]string{"UploadTemplateFileFunction": "incoming/", "UploadMediaFunction": "messages/"} {
		var found int
		for name, ev := range at(tpl, "Resources", id, "Properties", "Events").(doc) {
			if at(ev, "Type") != "S3" {
				continue
			}
			found++
			p := at(ev, "Properties")
			if b := at(p, "Bucket"); !reflect.DeepEqual(b, doc{"Ref": "MediaBucket"}) {
				t.Errorf("%s event %s: Bucket = %v, want !Ref MediaBucket", id, name, b)
			}
			if e := strs(at(p, "Events")); !slices.Equal(e, []string{"s3:ObjectCreated:*"}) {
				t.Errorf("%s event %s: Events = %v, want s3:ObjectCreated:*", id, name, e)
			}
			if rules := at(p, "Filter", "S3Key", "Rules"); !reflect.DeepEqual(rules, []any{doc{"Name": "prefix", "Value": prefix}}) {
				t.Errorf("%s event %s: key filter = %v, want the prefix %s", id, name, rules, prefix)
			}
		}
		if found != 1 {
			t.Errorf("%s has %d S3 events, want 1", id, found)
		}
	}
}

func TestLogging(t *testing.T) {
	t.Parallel()
	if at(source(t), "Parameters", "LogRetentionDays", "Default") == nil {
		t.Error("LogRetentionDays has no default")
	}
	tpl := deploy(t, map[string]string{"LogLevel": "DEBUG", "LogRetentionDays": "7"})
	for id := range functionDirs {
		lc := props(tpl, id)["LoggingConfig"]
		if at(lc, "LogFormat") != "JSON" || at(lc, "ApplicationLogLevel") != "DEBUG" || at(lc, "SystemLogLevel") == nil {
			t.Errorf("%s: LoggingConfig = %v, want LogFormat JSON, ApplicationLogLevel from LogLevel and a SystemLogLevel", id, lc)
		}
		// The function logs to /aws/lambda/<name> unless LoggingConfig names
		// a group; either way that group is declared here, with the retention.
		group := ""
		if g := at(lc, "LogGroup"); g != nil {
			group, _ = at(g, "Ref").(string)
		} else {
			for _, gid := range ofType(tpl, "AWS::Logs::LogGroup") {
				if at(tpl, "Resources", gid, "Properties", "LogGroupName") == "/aws/lambda/${"+id+"}" {
					if group != "" {
						t.Errorf("%s: two log groups are named /aws/lambda/${%s}", id, id)
					}
					group = gid
				}
			}
		}
		if ret := at(tpl, "Resources", group, "Properties", "RetentionInDays"); group == "" || ret != "7" {
			t.Errorf("%s: log group %q has RetentionInDays %v with LogRetentionDays=7, want a group of this template with that retention", id, group, ret)
		}
	}
	// The HTTP API's access log, one JSON line per request, kept as long.
	access := at(tpl, "Resources", "HttpApi", "Properties", "AccessLogSettings")
	dest, _ := at(access, "DestinationArn", "Fn::GetAtt", 0).(string)
	if at(tpl, "Resources", dest, "Type") != "AWS::Logs::LogGroup" || at(tpl, "Resources", dest, "Properties", "RetentionInDays") != "7" {
		t.Errorf("HttpApi.AccessLogSettings.DestinationArn = %v, want !GetAtt of a log group of this template with RetentionInDays from LogRetentionDays", at(access, "DestinationArn"))
	}
	if f, _ := at(access, "Format").(string); !json.Valid([]byte(f)) || !strings.Contains(f, "$context.requestId") {
		t.Errorf("HttpApi.AccessLogSettings.Format = %q, want a JSON line with $context.requestId", f)
	}
}

// TestTracing: EnableTracing (default true) turns on X-Ray active tracing
// for every function; false leaves them in PassThrough.
func TestTracing(t *testing.T) {
	t.Parallel()
	if d := at(source(t), "Parameters", "EnableTracing", "Default"); d != "true" {
		t.Errorf("EnableTracing defaults to %v, want true", d)
	}
	for params, want := range map[string]string{"true": "Active", "false": "PassThrough"} {
		tpl := deploy(t, map[string]string{"EnableTracing": params})
		for _, id := range functions(tpl) {
			if got := props(tpl, id)["Tracing"]; got != want {
				t.Errorf("EnableTracing=%s: %s has Tracing %v, want %s", params, id, got, want)
			}
		}
	}
}

func TestEnvironment(t *testing.T) {
	t.Parallel()
	tpl := deploy(t, nil)
	globals := at(tpl, "Globals", "Function", "Environment", "Variables").(doc)
	if got, want := slices.Sorted(maps.Keys(globals)), slices.Sorted(slices.Values(append(specVariables, slices.Collect(maps.Keys(opsVariables))...))); !slices.Equal(got, want) {
		t.Errorf("Globals environment = %v, want SPEC's and the operations' %v", got, want)
	}
	for k, want := range opsVariables {
		if v := globals[k]; !reflect.DeepEqual(v, want) {
			t.Errorf("Globals environment: %s = %v, want %v", k, v, want)
		}
	}
	const secretARN = "arn:aws:secretsmanager:ap-southeast-2:123456789012:secret:nxcloud-AbCdEf"
	const bucketName = "nxcloud-media-123456789012-ap-southeast-2-0a1b2c3d4e5f"
	for id := range functionDirs {
		if id == "UploadSessionsFunction" {
			continue // its own variables: TestSessionsEnvironment checks them
		}
		env := map[string]string{}
		for k, v := range at(props(tpl, id), "Environment", "Variables").(doc) {
			s, ok := v.(string)
			switch { // known once deployed
			case k == config.EnvSecretID && reflect.DeepEqual(v, doc{"Ref": "NxcloudSecret"}):
				s, ok = secretARN, true
			case k == config.EnvMediaBucket && reflect.DeepEqual(v, doc{"Ref": "MediaBucket"}):
				s, ok = bucketName, true
			case opsVariables[k] != nil:
				continue
			}
			if !ok {
				t.Errorf("%s: %s = %v: want a parameter, the stack's secret or its bucket", id, k, v)
			}
			env[k] = s
		}
		cfg, err := config.FromEnv(func(k string) string { return env[k] })
		if err != nil {
			t.Fatalf("%s: the template's defaults are not a valid configuration: %v", id, err)
		}
		want := config.Config{
			SecretID:       secretARN,
			BaseURL:        nxcloud.DefaultBaseURL,
			SecretTTL:      config.DefaultSecretTTL,
			SignAlgorithm:  nxcloud.MD5,
			Timeout:        config.DefaultTimeout,
			MaxUploadBytes: config.DefaultMaxUploadBytes,
			UploadPrefix:   config.DefaultUploadPrefix,
			MediaPrefix:    config.DefaultMediaPrefix,
			ArchivePrefix:  config.DefaultArchivePrefix,
			ClaimLease:     config.DefaultClaimLease,
			UploadURLTTL:   config.DefaultUploadURLTTL,
			Settle:         config.DefaultSettle,
			Namespace:      config.DefaultNamespace,
		}
		if id == "ReconcileFunction" || id == "ArchiveMediaFunction" {
			want.MediaBucket = bucketName
		}
		if cfg != want {
			t.Errorf("%s: defaults = %+v, want SPEC's %+v", id, cfg, want)
		}
	}
}

// TestParameters checks the parameters' patterns against what the functions
// accept. That every parameter and condition is used and every Ref and
// GetAtt names something is cfn-lint's (make validate).
func TestParameters(t *testing.T) {
	t.Parallel()
	params := at(source(t), "Parameters")
	pattern := func(name string) *regexp.Regexp {
		s, _ := at(params, name, "AllowedPattern").(string)
		return regexp.MustCompile(s)
	}
	for _, name := range []string{"NxcloudSecretTtl", "NxcloudTimeout"} {
		def, _ := at(params, name, "Default").(string)
		for _, v := range []string{def, "90s", "1m30s", "250ms", "1.5h"} {
			if _, err := time.ParseDuration(v); err != nil || !pattern(name).MatchString(v) {
				t.Errorf("%s: %q is a Go duration its AllowedPattern rejects", name, v)
			}
		}
	}
	for _, tc := range []struct {
		param     string
		good, bad []string
	}{
		{"UploadPrefix", []string{"templates/", "a/b/"}, []string{"/templates/", "templates", ""}},
		{"ArchivePrefix", []string{"inbound/", "archive/in/"}, []string{"/inbound/", "inbound", ""}},
		{"NxcloudBusinessPhone", []string{"", "8615812341795", "12345"}, []string{"1234", "+8615812341795", "123456789012345678901"}},
		{"ExistingSecretArn", []string{"", "arn:aws:secretsmanager:us-east-1:123456789012:secret:nxcloud-AbCdEf"}, []string{"nxcloud"}},
		{"MaxUploadBytes", []string{"104857600", "1"}, []string{"0", "-1", "1e6"}},
		{"UploadReservedConcurrency", []string{"", "0", "10"}, []string{"-1", "x"}},
	} {
		re := pattern(tc.param)
		for _, v := range tc.good {
			if !re.MatchString(v) {
				t.Errorf("%s rejects %q", tc.param, v)
			}
		}
		for _, v := range tc.bad {
			if re.MatchString(v) {
				t.Errorf("%s accepts %q", tc.param, v)
			}
		}
	}
}

func TestOutputs(t *testing.T) {
	t.Parallel()
	tpl := deploy(t, nil)
	for _, name := range []string{"ApiUrl", "MediaBucketName", "SecretArn", "FailureQueueUrl",
		"GetMediaFunctionArn", "DeleteMediaFunctionArn", "UploadTemplateFileFunctionArn", "ArchiveMediaFunctionArn", "ArchiveMediaLogGroupName"} {
		if at(tpl, "Outputs", name, "Value") == nil {
			t.Errorf("output %s is missing", name)
		}
	}
	if url := at(tpl, "Outputs", "ApiUrl", "Value"); url != "https://${HttpApi}.execute-api.ap-southeast-2.amazonaws.com" {
		t.Errorf("ApiUrl = %v", url)
	}
}

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

// TestSessionsRole: the sessions' role may put objects only in the two
// prefixes' session folders (which is all a presigned URL it signs can do),
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
		prefix := cmp.Or(params["UploadPrefix"], config.DefaultUploadPrefix)
		media := config.DefaultMediaPrefix
		bucket, _ := at(tpl, "Resources", "MediaBucket", "Properties", "BucketName").(string)
		arn := "arn:aws:s3:::" + bucket
		want := map[string][]string{
			"s3:PutObject": {arn + "/" + prefix + "uploads/*", arn + "/" + media + "uploads/*"},
			"s3:GetObject": {arn + "/nxcloud-records/" + prefix + "uploads/*", arn + "/" + prefix + "uploads/*",
				arn + "/nxcloud-records/" + media + "uploads/*", arn + "/" + media + "uploads/*"},
			"s3:ListBucket": {arn},
		}
		slices.Sort(want["s3:GetObject"])
		slices.Sort(want["s3:PutObject"])
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
			if !strings.HasPrefix(r, arn+"/"+prefix+"uploads/") && !strings.HasPrefix(r, arn+"/"+media+"uploads/") {
				t.Errorf("%v: s3:PutObject on %s is outside the sessions' folders of %s and %s", params, r, prefix, media)
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

// TestSessionEvents: the events of the new routes (the sessions', the
// content's and the archive's) are HTTP API v2 events of routes the
// template declares, for the function that serves them.
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
		{"archive-media.json", "ArchiveMediaFunction", "POST", "/media/3604357656489911/archive", map[string]string{"mediaId": "3604357656489911"}},
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
			if tc.file != "create-upload.json" {
				if ev.Body != "" {
					t.Errorf("body %q: the route takes none", ev.Body)
				}
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

// TestArchivePrefix: ArchivePrefix defaults to SPEC's inbound/, reaches every
// function (Globals), and the template refuses it equal to UploadPrefix or
// MediaPrefix (rules: CloudFormation has no prefix test; the functions' init
// refuses the overlaps).
func TestArchivePrefix(t *testing.T) {
	t.Parallel()
	src := source(t)
	if d := at(src, "Parameters", "ArchivePrefix", "Default"); d != config.DefaultArchivePrefix {
		t.Errorf("ArchivePrefix default = %v, want %s", d, config.DefaultArchivePrefix)
	}
	if v := at(src, "Globals", "Function", "Environment", "Variables", config.EnvArchivePrefix); !reflect.DeepEqual(v, doc{"Ref": "ArchivePrefix"}) {
		t.Errorf("Globals %s = %v, want !Ref ArchivePrefix", config.EnvArchivePrefix, v)
	}
	for _, other := range []string{"UploadPrefix", "MediaPrefix"} {
		apart := doc{"Fn::Not": []any{doc{"Fn::Equals": []any{doc{"Ref": "ArchivePrefix"}, doc{"Ref": other}}}}}
		found := false
		for _, rule := range at(src, "Rules").(doc) {
			for _, a := range list(at(rule, "Assertions")) {
				found = found || reflect.DeepEqual(at(a, "Assert"), apart) && at(rule, "RuleCondition") == nil
			}
		}
		if !found {
			t.Errorf("no unconditional rule asserts %v", apart)
		}
	}
}
