package template_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/aws/aws-lambda-go/events"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/iampolicy"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localstack"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/config"
)

// decodeStrict decodes an events/ file into v, refusing fields v does not
// have: a misspelled field would silently be empty otherwise.
func decodeStrict(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(eventsDir, name))
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("events/%s does not decode into %T: %v", name, v, err)
	}
}

func TestHTTPEvents(t *testing.T) {
	t.Parallel()
	routes := httpRoutes(t, deploy(t, nil))
	tests := []struct {
		file     string
		function string
		method   string
	}{
		{"get-media.json", "GetMediaFunction", "GET"},
		{"delete-media.json", "DeleteMediaFunction", "DELETE"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			var ev events.APIGatewayV2HTTPRequest
			decodeStrict(t, tc.file, &ev)
			if ev.Version != "2.0" {
				t.Errorf("version = %q, want 2.0 (PayloadFormatVersion of the routes)", ev.Version)
			}
			if routes[ev.RouteKey] != tc.function {
				t.Errorf("routeKey %q is not a route of %s in template.yaml (%v)", ev.RouteKey, tc.function, routes)
			}
			if ev.RequestContext.RouteKey != ev.RouteKey {
				t.Errorf("requestContext.routeKey = %q, want %q", ev.RequestContext.RouteKey, ev.RouteKey)
			}
			if ev.RequestContext.HTTP.Method != tc.method {
				t.Errorf("requestContext.http.method = %q, want %s", ev.RequestContext.HTTP.Method, tc.method)
			}
			id := ev.PathParameters["mediaId"]
			if id == "" || len(id) > 256 || strings.IndexFunc(id, unicode.IsControl) >= 0 {
				t.Errorf("pathParameters.mediaId = %q, want a valid media id", id)
			}
			if want := "/media/" + url.PathEscape(id); ev.RawPath != want || ev.RequestContext.HTTP.Path != want {
				t.Errorf("rawPath = %q, requestContext.http.path = %q, want %q", ev.RawPath, ev.RequestContext.HTTP.Path, want)
			}
			q, err := url.ParseQuery(ev.RawQueryString)
			if err != nil {
				t.Fatalf("rawQueryString %q: %v", ev.RawQueryString, err)
			}
			phone := q.Get("business_phone")
			if !config.ValidPhone(phone) || ev.QueryStringParameters["business_phone"] != phone {
				t.Errorf("business_phone = %q in rawQueryString, %q in queryStringParameters: want the same 5 to 20 digits",
					phone, ev.QueryStringParameters["business_phone"])
			}
			rc := ev.RequestContext
			for field, v := range map[string]string{
				"requestId": rc.RequestID, "accountId": rc.AccountID, "apiId": rc.APIID,
				"stage": rc.Stage, "domainName": rc.DomainName, "time": rc.Time,
				"http.sourceIp": rc.HTTP.SourceIP, "http.protocol": rc.HTTP.Protocol,
			} {
				if v == "" {
					t.Errorf("requestContext.%s is empty", field)
				}
			}
			if rc.TimeEpoch == 0 {
				t.Error("requestContext.timeEpoch is not set")
			}
			// The API requires IAM by default: the event shows the caller.
			if rc.Authorizer == nil || rc.Authorizer.IAM == nil || rc.Authorizer.IAM.UserARN == "" {
				t.Error("requestContext.authorizer.iam is not set")
			}
		})
	}
}

func TestS3Event(t *testing.T) {
	t.Parallel()
	checkS3Event(t, "s3-put.json", "templates/8615812341795/menu+card.pdf", config.DefaultUploadPrefix)
	checkS3Event(t, "s3-put-media.json", "media/8615812341795/product+photo.jpg", config.DefaultMediaPrefix)
}

// checkS3Event checks an S3 put event of events/: as S3 sends it, for a key
// (URL-encoded as S3 encodes it) under prefix.
func checkS3Event(t *testing.T, file, rawKey, prefix string) {
	t.Helper()
	var ev events.S3Event
	decodeStrict(t, file, &ev)
	if len(ev.Records) != 1 {
		t.Fatalf("%d records, want 1", len(ev.Records))
	}
	r := ev.Records[0]
	if r.EventVersion != "2.1" || r.EventSource != "aws:s3" || r.EventName != "ObjectCreated:Put" {
		t.Errorf("eventVersion %q, eventSource %q, eventName %q: want 2.1, aws:s3, ObjectCreated:Put",
			r.EventVersion, r.EventSource, r.EventName)
	}
	if r.AWSRegion == "" || r.EventTime.IsZero() {
		t.Errorf("awsRegion %q or eventTime %v is missing", r.AWSRegion, r.EventTime)
	}
	o := r.S3.Object
	wantKey := strings.ReplaceAll(rawKey, "+", " ")
	if o.Key != rawKey || o.URLDecodedKey != wantKey {
		t.Errorf("%s: key %q (decoded %q), want the URL-encoded form of %q", file, o.Key, o.URLDecodedKey, wantKey)
	}
	if !strings.HasPrefix(o.URLDecodedKey, prefix) {
		t.Errorf("key %q is outside the trigger prefix %s", o.URLDecodedKey, prefix)
	}
	if seg, _, _ := strings.Cut(strings.TrimPrefix(o.URLDecodedKey, prefix), "/"); !config.ValidPhone(seg) {
		t.Errorf("first segment %q after the prefix is not a merchant phone", seg)
	}
	if o.Size <= 0 || o.ETag == "" || o.VersionID == "" || o.Sequencer == "" {
		t.Errorf("object size %d, eTag %q, versionId %q, sequencer %q: want all set (the bucket is versioned)",
			o.Size, o.ETag, o.VersionID, o.Sequencer)
	}
	b := r.S3.Bucket
	if b.Arn != "arn:aws:s3:::"+b.Name {
		t.Errorf("bucket arn %q does not match bucket name %q", b.Arn, b.Name)
	}
	// The bucket is named as the template names it.
	tmpl, _ := at(source(t), "Resources", "MediaBucket", "Properties", "BucketName", "Fn::Sub", 0).(string)
	pattern := regexp.QuoteMeta(tmpl)
	for v, re := range map[string]string{
		"AWS::AccountId": `[0-9]{12}`, "AWS::Region": regexp.QuoteMeta(r.AWSRegion), "StackSuffix": `[0-9a-f]{12}`,
	} {
		pattern = strings.ReplaceAll(pattern, regexp.QuoteMeta("${"+v+"}"), re)
	}
	if !regexp.MustCompile("^" + pattern + "$").MatchString(b.Name) {
		t.Errorf("bucket name %q is not of the template's form %q", b.Name, tmpl)
	}
}

func TestEnvJSON(t *testing.T) {
	t.Parallel()
	tpl := deploy(t, nil)
	b, err := os.ReadFile(filepath.Join(eventsDir, "env.json"))
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]map[string]any
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("events/env.json: %v", err)
	}
	if got, want := slices.Sorted(maps.Keys(env)), functions(tpl); !slices.Equal(got, want) {
		t.Fatalf("env.json keys = %v, want one per function %v", got, want)
	}
	for _, id := range functions(tpl) {
		t.Run(id, func(t *testing.T) {
			t.Parallel()
			declared := slices.Sorted(maps.Keys(at(props(tpl, id), "Environment", "Variables").(doc)))
			// sam local invoke --env-vars only overrides declared variables.
			if got := slices.Sorted(maps.Keys(env[id])); !slices.Equal(got, declared) {
				t.Errorf("variables = %v, want exactly the template's %v", got, declared)
			}
			vars := map[string]string{}
			for k, v := range env[id] {
				s, ok := v.(string)
				if !ok {
					t.Errorf("%s = %v: write values as strings", k, v)
				}
				vars[k] = s
			}
			if _, err := config.FromEnv(func(k string) string { return vars[k] }); err != nil {
				t.Errorf("the functions would fail init with these values: %v", err)
			}
			// The stand-ins of make local-docker, where host.docker.internal
			// leads, and what that run creates.
			for k, want := range map[string]string{
				"NXCLOUD_BASE_URL":                 fmt.Sprintf("http://host.docker.internal:%d", localstack.DockerNXCloudPort),
				"AWS_ENDPOINT_URL_SECRETS_MANAGER": fmt.Sprintf("http://host.docker.internal:%d", localstack.DockerSecretsPort),
				"AWS_ENDPOINT_URL_S3":              fmt.Sprintf("http://host.docker.internal:%d", localstack.DockerS3Port),
				"NXCLOUD_SECRET_ID":                localstack.DefaultSecretID,
				"POWERTOOLS_SERVICE_NAME":          iampolicy.LocalStackName,
			} {
				if vars[k] != want {
					t.Errorf("%s = %q, want %q (make local-docker)", k, vars[k], want)
				}
			}
			if b, ok := vars["MEDIA_BUCKET"]; ok && b != localstack.DockerBucket {
				t.Errorf("MEDIA_BUCKET = %q, want make local-docker's bucket %s", b, localstack.DockerBucket)
			}
		})
	}
	// The S3 event names the bucket of make local-docker, which stores its object.
	var ev events.S3Event
	if b, err := os.ReadFile(filepath.Join(eventsDir, "s3-put.json")); err != nil || json.Unmarshal(b, &ev) != nil || len(ev.Records) != 1 ||
		ev.Records[0].S3.Bucket.Name != localstack.DockerBucket {
		t.Errorf("events/s3-put.json: %v, want one record in the bucket %s", err, localstack.DockerBucket)
	}
}

// TestSamconfig checks samconfig.toml with a reader for the subset of TOML
// it uses (sections, key = string | bool | number).
func TestSamconfig(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(samconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := map[string]map[string]string{"": {}}
	section := ""
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
			if _, dup := cfg[section]; dup {
				t.Errorf("samconfig.toml:%d: section [%s] twice", i+1, section)
			}
			cfg[section] = map[string]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("samconfig.toml:%d: not key = value: %q", i+1, line)
			}
			cfg[section][strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	want := []struct{ section, key, value string }{
		{"", "version", "0.1"},
		{"default.build.parameters", "cached", "true"},
		{"default.build.parameters", "parallel", "true"},
		{"default.validate.parameters", "lint", "true"},
		{"default.deploy.parameters", "capabilities", "CAPABILITY_IAM"},
		{"default.deploy.parameters", "confirm_changeset", "true"},
		{"default.deploy.parameters", "resolve_s3", "true"},
		{"default.local_invoke.parameters", "env_vars", "events/env.json"},
	}
	for _, w := range want {
		if got, ok := cfg[w.section][w.key]; !ok || got != w.value {
			t.Errorf("[%s] %s = %q, want %q", w.section, w.key, got, w.value)
		}
	}
	// Every sam command gets the stack and its region, not only deploy.
	for _, w := range []struct{ section, key string }{
		{"default.global.parameters", "stack_name"},
		{"default.global.parameters", "region"},
	} {
		if cfg[w.section][w.key] == "" {
			t.Errorf("[%s] %s is not set", w.section, w.key)
		}
	}
	if envFile := cfg["default.local_invoke.parameters"]["env_vars"]; envFile != "" {
		if _, err := os.Stat(filepath.Join(root, envFile)); err != nil {
			t.Errorf("env_vars names a missing file: %v", err)
		}
	}
}
