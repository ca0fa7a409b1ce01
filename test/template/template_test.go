package template_test

import (
	"encoding/json"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

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
	config.EnvNamespace,
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
		if id != "UploadTemplateFileFunction" && id != "ReconcileFunction" && timeout >= 30 {
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
		"GET /media/{mediaId}":         "GetMediaFunction",
		"GET /media/{mediaId}/content": "GetMediaFunction",
		"DELETE /media/{mediaId}":      "DeleteMediaFunction",
		"POST /uploads":                "UploadSessionsFunction",
		"GET /uploads/{uploadId}":      "UploadSessionsFunction",
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
	const prefix = "incoming/"
	tpl := deploy(t, map[string]string{"UploadPrefix": prefix})
	var found int
	for name, ev := range at(tpl, "Resources", "UploadTemplateFileFunction", "Properties", "Events").(doc) {
		if at(ev, "Type") != "S3" {
			continue
		}
		found++
		p := at(ev, "Properties")
		if b := at(p, "Bucket"); !reflect.DeepEqual(b, doc{"Ref": "MediaBucket"}) {
			t.Errorf("event %s: Bucket = %v, want !Ref MediaBucket", name, b)
		}
		if e := strs(at(p, "Events")); !slices.Equal(e, []string{"s3:ObjectCreated:*"}) {
			t.Errorf("event %s: Events = %v, want s3:ObjectCreated:*", name, e)
		}
		if rules := at(p, "Filter", "S3Key", "Rules"); !reflect.DeepEqual(rules, []any{doc{"Name": "prefix", "Value": prefix}}) {
			t.Errorf("event %s: key filter = %v with UploadPrefix=%s, want that prefix", name, rules, prefix)
		}
	}
	if found != 1 {
		t.Errorf("UploadTemplateFileFunction has %d S3 events, want 1", found)
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

func TestEnvironment(t *testing.T) {
	t.Parallel()
	tpl := deploy(t, nil)
	if got := slices.Sorted(maps.Keys(at(tpl, "Globals", "Function", "Environment", "Variables").(doc))); !slices.Equal(got, slices.Sorted(slices.Values(specVariables))) {
		t.Errorf("Globals environment = %v, want SPEC's %v", got, specVariables)
	}
	const secretARN = "arn:aws:secretsmanager:ap-southeast-2:123456789012:secret:nxcloud-AbCdEf"
	const bucketName = "nxcloud-media-123456789012-ap-southeast-2-0a1b2c3d4e5f"
	for id := range functionDirs {
		if id == "UploadSessionsFunction" {
			continue // its own variables: sessions_template_test.go checks them
		}
		env := map[string]string{}
		for k, v := range at(props(tpl, id), "Environment", "Variables").(doc) {
			s, ok := v.(string)
			switch { // known once deployed
			case k == config.EnvSecretID && reflect.DeepEqual(v, doc{"Ref": "NxcloudSecret"}):
				s, ok = secretARN, true
			case k == config.EnvMediaBucket && reflect.DeepEqual(v, doc{"Ref": "MediaBucket"}):
				s, ok = bucketName, true
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
			ClaimLease:     config.DefaultClaimLease,
			UploadURLTTL:   config.DefaultUploadURLTTL,
			Settle:         config.DefaultSettle,
			Namespace:      config.DefaultNamespace,
		}
		if id == "ReconcileFunction" {
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
		"GetMediaFunctionArn", "DeleteMediaFunctionArn", "UploadTemplateFileFunctionArn"} {
		if at(tpl, "Outputs", name, "Value") == nil {
			t.Errorf("output %s is missing", name)
		}
	}
	if url := at(tpl, "Outputs", "ApiUrl", "Value"); url != "https://${HttpApi}.execute-api.ap-southeast-2.amazonaws.com" {
		t.Errorf("ApiUrl = %v", url)
	}
}
