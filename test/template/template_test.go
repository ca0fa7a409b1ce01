package template_test

import (
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/awslabs/goformation/v7"

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

// mergeGlobals applies SAM's Globals semantics: maps merge (the resource
// wins), lists add up, scalars are replaced by the resource's.
func mergeGlobals(global, local any) any {
	gm, gok := global.(doc)
	lm, lok := local.(doc)
	if gok && lok {
		if _, _, isFn := isIntrinsic(lm); isFn {
			return lm
		}
		out := maps.Clone(gm)
		for k, v := range lm {
			if g, ok := gm[k]; ok {
				out[k] = mergeGlobals(g, v)
			} else {
				out[k] = v
			}
		}
		return out
	}
	gl, gok := global.([]any)
	ll, lok := local.([]any)
	if gok && lok {
		return append(slices.Clone(gl), ll...)
	}
	return local
}

// functionProps returns a function's properties with Globals.Function
// applied, as SAM sees them.
func functionProps(t testing.TB, tpl doc, id string) doc {
	t.Helper()
	r := resource(t, tpl, id, "AWS::Serverless::Function")
	props, _ := r["Properties"].(doc)
	global, _ := at(tpl, "Globals", "Function")
	if global == nil {
		global = doc{}
	}
	merged, ok := mergeGlobals(global, props).(doc)
	if !ok {
		t.Fatalf("%s: properties are not a mapping", id)
	}
	return merged
}

// serverlessFunctions lists the AWS::Serverless::Function ids.
func serverlessFunctions(tpl doc) []string {
	var ids []string
	res, _ := tpl["Resources"].(doc)
	for id, r := range res {
		if typ, _ := at(r, "Type"); typ == "AWS::Serverless::Function" {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func TestGoformationReadsTemplate(t *testing.T) {
	t.Parallel()
	tpl, err := goformation.Open(templatePath)
	if err != nil {
		t.Fatalf("goformation cannot read template.yaml: %v", err)
	}
	fns := tpl.GetAllServerlessFunctionResources()
	if got, want := slices.Sorted(maps.Keys(fns)), slices.Sorted(maps.Keys(functionDirs)); !slices.Equal(got, want) {
		t.Fatalf("serverless functions = %v, want %v", got, want)
	}
	g, err := tpl.GetServerlessGlobalFunction()
	if err != nil {
		t.Fatalf("Globals.Function: %v", err)
	}
	if g.Runtime == nil || *g.Runtime != "provided.al2023" {
		t.Errorf("Globals.Function.Runtime = %v, want provided.al2023", g.Runtime)
	}
	if g.Handler == nil || *g.Handler != "bootstrap" {
		t.Errorf("Globals.Function.Handler = %v, want bootstrap", g.Handler)
	}
	if g.Architectures == nil || !slices.Equal(*g.Architectures, []string{"arm64"}) {
		t.Errorf("Globals.Function.Architectures = %v, want [arm64]", g.Architectures)
	}
	if g.CodeUri == nil || g.CodeUri.String == nil || *g.CodeUri.String != "." {
		t.Errorf("Globals.Function.CodeUri is not \".\"")
	}
	for id, fn := range fns {
		if fn.AWSCloudFormationMetadata["BuildMethod"] != "makefile" {
			t.Errorf("%s: Metadata.BuildMethod = %v, want makefile", id, fn.AWSCloudFormationMetadata["BuildMethod"])
		}
		if fn.Runtime != nil || fn.Handler != nil || fn.Architectures != nil || fn.CodeUri != nil {
			t.Errorf("%s overrides Runtime, Handler, Architectures or CodeUri of Globals", id)
		}
	}

	get := fns["GetMediaFunction"].Events["GetMedia"]
	if get.Type != "HttpApi" || get.Properties.HttpApiEvent == nil ||
		*get.Properties.HttpApiEvent.Method != "GET" || *get.Properties.HttpApiEvent.Path != "/media/{mediaId}" {
		t.Errorf("GetMediaFunction has no HttpApi event GET /media/{mediaId}")
	}
	del := fns["DeleteMediaFunction"].Events["DeleteMedia"]
	if del.Type != "HttpApi" || del.Properties.HttpApiEvent == nil ||
		*del.Properties.HttpApiEvent.Method != "DELETE" || *del.Properties.HttpApiEvent.Path != "/media/{mediaId}" {
		t.Errorf("DeleteMediaFunction has no HttpApi event DELETE /media/{mediaId}")
	}
	up := fns["UploadTemplateFileFunction"]
	var s3Events int
	for name, ev := range up.Events {
		if ev.Type != "S3" {
			continue
		}
		s3Events++
		e := ev.Properties.S3Event
		if e == nil || e.Events == nil || e.Events.String == nil || *e.Events.String != "s3:ObjectCreated:*" {
			t.Errorf("UploadTemplateFileFunction event %s is not on s3:ObjectCreated:*", name)
		}
		if e == nil || e.Filter == nil || e.Filter.S3Key == nil || len(e.Filter.S3Key.Rules) != 1 ||
			e.Filter.S3Key.Rules[0].Name != "prefix" || e.Filter.S3Key.Rules[0].Value != config.DefaultUploadPrefix {
			t.Errorf("UploadTemplateFileFunction event %s does not filter on the prefix %s", name, config.DefaultUploadPrefix)
		}
	}
	if s3Events != 1 {
		t.Errorf("UploadTemplateFileFunction has %d S3 events, want 1", s3Events)
	}
	eic := up.EventInvokeConfig
	if eic == nil || eic.DestinationConfig == nil || eic.DestinationConfig.OnFailure == nil ||
		eic.DestinationConfig.OnFailure.Type == nil || *eic.DestinationConfig.OnFailure.Type != "SQS" {
		t.Errorf("UploadTemplateFileFunction has no SQS on-failure destination")
	}
	if eic == nil || eic.MaximumRetryAttempts == nil {
		t.Errorf("UploadTemplateFileFunction.EventInvokeConfig.MaximumRetryAttempts is not set")
	}
}

func TestFunctions(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	if got, want := serverlessFunctions(tpl), slices.Sorted(maps.Keys(functionDirs)); !slices.Equal(got, want) {
		t.Fatalf("serverless functions = %v, want %v", got, want)
	}
	for id := range functionDirs {
		t.Run(id, func(t *testing.T) {
			t.Parallel()
			r := resource(t, tpl, id, "AWS::Serverless::Function")
			if bm, _ := at(r, "Metadata", "BuildMethod"); bm != "makefile" {
				t.Errorf("Metadata.BuildMethod = %v, want makefile", bm)
			}
			p := functionProps(t, tpl, id)
			for _, tc := range []struct {
				prop string
				want any
			}{
				{"Runtime", "provided.al2023"},
				{"Handler", "bootstrap"},
				{"CodeUri", "."},
			} {
				if p[tc.prop] != tc.want {
					t.Errorf("%s = %v, want %v", tc.prop, p[tc.prop], tc.want)
				}
			}
			if got := strs(p["Architectures"]); !slices.Equal(got, []string{"arm64"}) {
				t.Errorf("Architectures = %v, want [arm64]", p["Architectures"])
			}
			timeout, ok := p["Timeout"].(int)
			if !ok || timeout < 1 || timeout > 900 {
				t.Errorf("Timeout = %v, want 1 to 900 seconds", p["Timeout"])
			}
			if id != "UploadTemplateFileFunction" && id != "ReconcileFunction" && timeout >= 30 {
				t.Errorf("Timeout = %d s: an HTTP API integration gives up after 30 s, answer before", timeout)
			}
			if mem, ok := p["MemorySize"].(int); !ok || mem < 128 {
				t.Errorf("MemorySize = %v, want at least 128", p["MemorySize"])
			}
		})
	}
}

// httpRoutes returns "METHOD /path" -> function id for every HttpApi event.
func httpRoutes(t testing.TB, tpl doc) map[string]string {
	t.Helper()
	routes := map[string]string{}
	for _, id := range serverlessFunctions(tpl) {
		evs, _ := at(tpl, "Resources", id, "Properties", "Events")
		m, _ := evs.(doc)
		for name, ev := range m {
			if typ, _ := at(ev, "Type"); typ != "HttpApi" {
				continue
			}
			p, _ := at(ev, "Properties")
			method, _ := at(p, "Method")
			path, _ := at(p, "Path")
			route := strings.ToUpper(scalarString(method)) + " " + scalarString(path)
			if prev, dup := routes[route]; dup {
				t.Errorf("route %s is served by %s and %s", route, prev, id)
			}
			routes[route] = id
			if api, _ := at(p, "ApiId"); !reflectDeepEqual(api, ref("HttpApi")) {
				t.Errorf("%s event %s: ApiId = %v, want !Ref HttpApi", id, name, api)
			}
			if v, _ := at(p, "PayloadFormatVersion"); v != "2.0" {
				t.Errorf("%s event %s: PayloadFormatVersion = %v, want \"2.0\"", id, name, v)
			}
			if auth, ok := at(p, "Auth"); ok {
				t.Errorf("%s event %s sets Auth %v: the API's DefinitionBody decides authorization", id, name, auth)
			}
		}
	}
	return routes
}

func TestHTTPAPIRoutes(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	want := map[string]string{
		"GET /media/{mediaId}":    "GetMediaFunction",
		"DELETE /media/{mediaId}": "DeleteMediaFunction",
	}
	if got := httpRoutes(t, tpl); !maps.Equal(got, want) {
		t.Errorf("HTTP API routes = %v, want %v", got, want)
	}
	api := resource(t, tpl, "HttpApi", "AWS::Serverless::HttpApi")
	for _, prop := range []string{"ThrottlingBurstLimit", "ThrottlingRateLimit"} {
		if _, ok := at(api, "Properties", "DefaultRouteSettings", prop); !ok {
			t.Errorf("HttpApi.DefaultRouteSettings.%s is not set", prop)
		}
	}
}

func TestHTTPAPIAuthorization(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	p := mustAt(t, tpl, "Parameters", "ApiAuthType")
	if d, _ := at(p, "Default"); d != "AWS_IAM" {
		t.Errorf("ApiAuthType default = %v, want AWS_IAM", d)
	}
	if av, _ := at(p, "AllowedValues"); !slices.Equal(strs(av), []string{"AWS_IAM", "NONE"}) {
		t.Errorf("ApiAuthType AllowedValues = %v, want [AWS_IAM NONE]", av)
	}
	api := resource(t, tpl, "HttpApi", "AWS::Serverless::HttpApi")
	if auth, ok := at(api, "Properties", "Auth"); ok {
		// SAM would overwrite the per-operation security below.
		t.Fatalf("HttpApi.Auth = %v: authorization is declared in DefinitionBody so that ApiAuthType can switch it", auth)
	}
	scheme := mustAt(t, api, "Properties", "DefinitionBody", "components", "securitySchemes", "AWS_IAM")
	if at, _ := at(scheme, "x-amazon-apigateway-authtype"); at != "awsSigv4" {
		t.Errorf("securitySchemes.AWS_IAM is not SigV4: %v", scheme)
	}
	tests := []struct {
		name     string
		authType string
		want     []any
	}{
		{"default requires IAM", "", []any{doc{"AWS_IAM": []any{}}}},
		{"AWS_IAM requires IAM", "AWS_IAM", []any{doc{"AWS_IAM": []any{}}}},
		{"NONE is open", "NONE", []any{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			over := map[string]string{}
			if tc.authType != "" {
				over["ApiAuthType"] = tc.authType
			}
			s := newStack(t, tpl, over)
			for route := range httpRoutes(t, tpl) {
				method, path, _ := strings.Cut(route, " ")
				op, ok := at(api, "Properties", "DefinitionBody", "paths", path, strings.ToLower(method))
				if !ok {
					t.Fatalf("DefinitionBody has no operation for %s", route)
				}
				sec, ok := at(op, "security")
				if !ok {
					t.Fatalf("%s has no security", route)
				}
				if got := s.eval(t, sec); !reflectDeepEqual(got, tc.want) {
					t.Errorf("%s security = %v, want %v", route, got, tc.want)
				}
			}
		})
	}
	// Every operation of the body is served by a function event.
	paths, _ := at(api, "Properties", "DefinitionBody", "paths")
	routes := httpRoutes(t, tpl)
	for path, ops := range paths.(doc) {
		for method := range ops.(doc) {
			if _, ok := routes[strings.ToUpper(method)+" "+path]; !ok {
				t.Errorf("DefinitionBody declares %s %s that no function serves", method, path)
			}
		}
	}
}

// bucketNameSub returns the Fn::Sub that names the media bucket.
func bucketNameSub(t testing.TB, tpl doc) (string, doc) {
	t.Helper()
	b := resource(t, tpl, "MediaBucket", "AWS::S3::Bucket")
	return subParts(t, mustAt(t, b, "Properties", "BucketName"))
}

var bucketNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

func TestMediaBucket(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	b := resource(t, tpl, "MediaBucket", "AWS::S3::Bucket")
	if b["DeletionPolicy"] != "Retain" {
		t.Errorf("MediaBucket DeletionPolicy = %v, want Retain: uploaded media outlive the stack", b["DeletionPolicy"])
	}
	checks := []struct {
		path []any
		want any
	}{
		{[]any{"VersioningConfiguration", "Status"}, "Enabled"},
		{[]any{"PublicAccessBlockConfiguration", "BlockPublicAcls"}, true},
		{[]any{"PublicAccessBlockConfiguration", "BlockPublicPolicy"}, true},
		{[]any{"PublicAccessBlockConfiguration", "IgnorePublicAcls"}, true},
		{[]any{"PublicAccessBlockConfiguration", "RestrictPublicBuckets"}, true},
		{[]any{"OwnershipControls", "Rules", 0, "ObjectOwnership"}, "BucketOwnerEnforced"},
	}
	for _, c := range checks {
		if got, _ := at(b["Properties"], c.path...); got != c.want {
			t.Errorf("MediaBucket %v = %v, want %v", c.path, got, c.want)
		}
	}
	alg, _ := at(b, "Properties", "BucketEncryption", "ServerSideEncryptionConfiguration", 0, "ServerSideEncryptionByDefault", "SSEAlgorithm")
	if !slices.Contains([]any{"AES256", "aws:kms", "aws:kms:dsse"}, alg) {
		t.Errorf("MediaBucket SSEAlgorithm = %v, want AES256 or aws:kms", alg)
	}

	// The name must be a valid, lowercase bucket name for any stack name.
	for _, stackName := range []string{"nxcloud-media", "Media-Stack-With-Capitals", strings.Repeat("x", 128)} {
		s := newStack(t, tpl, nil)
		s.pseudo["AWS::StackName"] = stackName
		s.pseudo["AWS::StackId"] = "arn:aws:cloudformation:ap-southeast-2:123456789012:stack/" + stackName + "/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
		name, ok := s.eval(t, mustAt(t, b, "Properties", "BucketName")).(string)
		if !ok || !bucketNameRE.MatchString(name) || strings.Contains(name, "..") {
			t.Errorf("stack %q: bucket name %q is not a valid S3 bucket name", stackName, name)
		}
	}

	pol := resource(t, tpl, "MediaBucketPolicy", "AWS::S3::BucketPolicy")
	if got, _ := at(pol, "Properties", "Bucket"); !reflectDeepEqual(got, ref("MediaBucket")) {
		t.Errorf("MediaBucketPolicy.Bucket = %v, want !Ref MediaBucket", got)
	}
	var tlsDeny bool
	sts, _ := at(pol, "Properties", "PolicyDocument", "Statement")
	for _, st := range list(sts) {
		effect, _ := at(st, "Effect")
		principal, _ := at(st, "Principal")
		secure, _ := at(st, "Condition", "Bool", "aws:SecureTransport")
		if effect == "Deny" && principal == "*" && slices.Contains(strs(mustAt(t, st, "Action")), "s3:*") &&
			(secure == "false" || secure == false) {
			res, _ := at(st, "Resource")
			if len(list(res)) != 2 {
				t.Errorf("the TLS deny covers %v, want the bucket and its objects", res)
			}
			tlsDeny = true
		}
	}
	if !tlsDeny {
		t.Error("MediaBucketPolicy does not deny requests without TLS (aws:SecureTransport false)")
	}
}

// statements returns the inline policy statements of a function, failing on
// managed policies and SAM policy templates (they cannot be checked here).
func statements(t testing.TB, tpl doc, id string) []doc {
	t.Helper()
	pols, _ := at(tpl, "Resources", id, "Properties", "Policies")
	var out []doc
	for _, p := range list(pols) {
		sts, ok := at(p, "Statement")
		if !ok {
			t.Errorf("%s: policy %v is not an inline policy document", id, p)
			continue
		}
		for _, st := range list(sts) {
			m, ok := st.(doc)
			if !ok {
				t.Fatalf("%s: statement %v is not a mapping", id, st)
			}
			out = append(out, m)
		}
	}
	return out
}

func TestLeastPrivilege(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	bucketTmpl, bucketVars := bucketNameSub(t, tpl)
	bucketARN := "arn:${AWS::Partition}:s3:::" + bucketTmpl

	// Expected S3 grants of the upload function: object key pattern
	// (relative to the bucket) -> actions.
	wantS3 := map[string][]string{
		"${UploadPrefix}*": {"s3:GetObject", "s3:GetObjectTagging", "s3:GetObjectVersion",
			"s3:GetObjectVersionTagging", "s3:PutObjectTagging", "s3:PutObjectVersionTagging"},
		claimPrefix + "*":   {"s3:DeleteObject", "s3:DeleteObjectVersion", "s3:GetObject", "s3:PutObject"},
		"nxcloud-records/*": {"s3:GetObject", "s3:PutObject"},
		// The bucket itself: ListBucket turns the 403 for a missing key into a 404.
		"": {"s3:ListBucket"},
	}
	for id := range functionDirs {
		t.Run(id, func(t *testing.T) {
			t.Parallel()
			gotS3 := map[string][]string{}
			var readsSecret bool
			for _, st := range statements(t, tpl, id) {
				if st["Effect"] != "Allow" {
					continue
				}
				if _, ok := st["NotAction"]; ok {
					t.Errorf("statement %v uses NotAction", st["Sid"])
				}
				if _, ok := st["NotResource"]; ok {
					t.Errorf("statement %v uses NotResource", st["Sid"])
				}
				actions := strs(st["Action"])
				for _, a := range actions {
					if strings.Contains(a, "*") {
						t.Errorf("statement %v grants the wildcard action %s", st["Sid"], a)
					}
				}
				walk(st["Resource"], func(v any) {
					if v == "*" {
						t.Errorf("statement %v grants %v on every resource", st["Sid"], actions)
					}
					if n, a, ok := isIntrinsic(v); ok && (n == "Ref" && a == "MediaBucket" ||
						n == "Fn::GetAtt" && reflectDeepEqual(a, []any{"MediaBucket", "Arn"})) {
						t.Errorf("statement %v refers to MediaBucket: that is a circular dependency, name it with !Sub", st["Sid"])
					}
				})
				for _, a := range actions {
					svc, _, _ := strings.Cut(a, ":")
					switch svc {
					case "secretsmanager":
						if a != "secretsmanager:GetSecretValue" {
							t.Errorf("statement %v grants %s: the functions only read their secret", st["Sid"], a)
						}
						checkSecretResource(t, tpl, st["Resource"])
						readsSecret = true
					case "s3":
						// handled below, per resource
					default:
						t.Errorf("statement %v grants %s: no function needs it", st["Sid"], a)
					}
				}
				if !slices.ContainsFunc(actions, func(a string) bool { return strings.HasPrefix(a, "s3:") }) {
					continue
				}
				for _, r := range list(st["Resource"]) {
					tmpl, vars := subParts(t, r)
					key, ok := strings.CutPrefix(tmpl, bucketARN)
					if key != "" {
						key, ok = strings.CutPrefix(key, "/")
					}
					if !ok || !reflectDeepEqual(vars, bucketVars) {
						t.Errorf("statement %v: S3 resource %v is not built with !Sub from the bucket name %q", st["Sid"], r, bucketTmpl)
						continue
					}
					for _, a := range actions {
						if strings.HasPrefix(a, "s3:") {
							gotS3[key] = append(gotS3[key], a)
						}
					}
				}
			}
			if !readsSecret {
				t.Error("the function cannot read the NXCloud secret (secretsmanager:GetSecretValue)")
			}
			for k := range gotS3 {
				slices.Sort(gotS3[k])
				gotS3[k] = slices.Compact(gotS3[k])
			}
			want := map[string][]string{}
			switch id {
			case "UploadTemplateFileFunction":
				want = wantS3
			case "ReconcileFunction":
				// The sweep: what the upload needs, plus listing the bucket's versions.
				want = maps.Clone(wantS3)
				want[""] = []string{"s3:ListBucket", "s3:ListBucketVersions"}
			}
			if !maps.EqualFunc(gotS3, want, slices.Equal) {
				t.Errorf("S3 grants = %v, want %v", gotS3, want)
			}
		})
	}
}

// checkSecretResource checks that a GetSecretValue grant names exactly the
// stack's secret: the created one by default, the given ARN otherwise.
func checkSecretResource(t *testing.T, tpl doc, res any) {
	t.Helper()
	const arn = "arn:aws:secretsmanager:ap-southeast-2:123456789012:secret:nxcloud-AbCdEf"
	for _, tc := range []struct {
		existing string
		want     any
	}{
		{"", ref("NxcloudSecret")},
		{arn, arn},
	} {
		s := newStack(t, tpl, map[string]string{"ExistingSecretArn": tc.existing})
		if got := s.eval(t, res); !reflectDeepEqual(got, tc.want) {
			t.Errorf("ExistingSecretArn=%q: GetSecretValue is granted on %v, want %v", tc.existing, got, tc.want)
		}
		created := s.condition(t, "CreateSecret")
		if created != (tc.existing == "") {
			t.Errorf("ExistingSecretArn=%q: CreateSecret = %v", tc.existing, created)
		}
	}
	sec := resource(t, tpl, "NxcloudSecret", "AWS::SecretsManager::Secret")
	if sec["Condition"] != "CreateSecret" {
		t.Errorf("NxcloudSecret.Condition = %v, want CreateSecret", sec["Condition"])
	}
}

func TestPlaceholderSecret(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	sec := resource(t, tpl, "NxcloudSecret", "AWS::SecretsManager::Secret")
	s, _ := at(sec, "Properties", "SecretString")
	str, _ := s.(string)
	if !strings.Contains(str, `"accessKey"`) || !strings.Contains(str, `"accessSecret"`) {
		t.Errorf("NxcloudSecret.SecretString = %v, want the {\"accessKey\",\"accessSecret\"} shape", s)
	}
}

func TestUploadTrigger(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	p := mustAt(t, tpl, "Parameters", "UploadPrefix")
	if d, _ := at(p, "Default"); d != config.DefaultUploadPrefix {
		t.Errorf("UploadPrefix default = %v, want %s", d, config.DefaultUploadPrefix)
	}
	if strings.HasPrefix(claimPrefix, config.DefaultUploadPrefix) {
		t.Errorf("claim objects (%s) would trigger the upload function", claimPrefix)
	}
	evs, _ := at(tpl, "Resources", "UploadTemplateFileFunction", "Properties", "Events")
	var found int
	for name, ev := range evs.(doc) {
		if typ, _ := at(ev, "Type"); typ != "S3" {
			continue
		}
		found++
		if b, _ := at(ev, "Properties", "Bucket"); !reflectDeepEqual(b, ref("MediaBucket")) {
			t.Errorf("event %s: Bucket = %v, want !Ref MediaBucket", name, b)
		}
		if e, _ := at(ev, "Properties", "Events"); !slices.Equal(strs(e), []string{"s3:ObjectCreated:*"}) {
			t.Errorf("event %s: Events = %v, want s3:ObjectCreated:*", name, e)
		}
		rules, _ := at(ev, "Properties", "Filter", "S3Key", "Rules")
		want := []any{doc{"Name": "prefix", "Value": ref("UploadPrefix")}}
		if !reflectDeepEqual(rules, want) {
			t.Errorf("event %s: key filter = %v, want prefix !Ref UploadPrefix", name, rules)
		}
	}
	if found != 1 {
		t.Errorf("UploadTemplateFileFunction has %d S3 events, want 1", found)
	}
	for _, id := range []string{"GetMediaFunction", "DeleteMediaFunction"} {
		if _, ok := at(tpl, "Resources", id, "Properties", "EventInvokeConfig"); ok {
			t.Errorf("%s has an EventInvokeConfig: it is invoked synchronously", id)
		}
	}
}

func TestFailureDestination(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	p := functionProps(t, tpl, "UploadTemplateFileFunction")
	eic, ok := p["EventInvokeConfig"].(doc)
	if !ok {
		t.Fatal("UploadTemplateFileFunction has no EventInvokeConfig")
	}
	if typ, _ := at(eic, "DestinationConfig", "OnFailure", "Type"); typ != "SQS" {
		t.Errorf("OnFailure.Type = %v, want SQS", typ)
	}
	dest, _ := at(eic, "DestinationConfig", "OnFailure", "Destination")
	if !reflectDeepEqual(dest, doc{"Fn::GetAtt": []any{"UploadFailureQueue", "Arn"}}) {
		t.Errorf("OnFailure.Destination = %v, want !GetAtt UploadFailureQueue.Arn", dest)
	}
	s := newStack(t, tpl, nil)
	retries, err := strconv.Atoi(scalarString(s.eval(t, eic["MaximumRetryAttempts"])))
	if err != nil || retries < 0 || retries > 2 {
		t.Errorf("MaximumRetryAttempts = %v, want 0 to 2", eic["MaximumRetryAttempts"])
	}
	age, err := strconv.Atoi(scalarString(s.eval(t, eic["MaximumEventAgeInSeconds"])))
	if err != nil || age < 60 || age > 21600 {
		t.Errorf("MaximumEventAgeInSeconds = %v, want 60 to 21600", eic["MaximumEventAgeInSeconds"])
	}
	q := resource(t, tpl, "UploadFailureQueue", "AWS::SQS::Queue")
	if sse, _ := at(q, "Properties", "SqsManagedSseEnabled"); sse != true {
		if _, kms := at(q, "Properties", "KmsMasterKeyId"); !kms {
			t.Error("UploadFailureQueue is not encrypted at rest")
		}
	}
	if ret, _ := at(q, "Properties", "MessageRetentionPeriod"); ret != 1209600 {
		t.Errorf("UploadFailureQueue.MessageRetentionPeriod = %v, want 1209600 (14 days)", ret)
	}
}

func TestLogging(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	days := mustAt(t, tpl, "Parameters", "LogRetentionDays")
	if d, _ := at(days, "Default"); d == nil {
		t.Error("LogRetentionDays has no default")
	}
	for id := range functionDirs {
		t.Run(id, func(t *testing.T) {
			t.Parallel()
			p := functionProps(t, tpl, id)
			lc, _ := p["LoggingConfig"].(doc)
			if lc["LogFormat"] != "JSON" {
				t.Errorf("LoggingConfig.LogFormat = %v, want JSON", lc["LogFormat"])
			}
			if !reflectDeepEqual(lc["ApplicationLogLevel"], ref("LogLevel")) {
				t.Errorf("LoggingConfig.ApplicationLogLevel = %v, want !Ref LogLevel", lc["ApplicationLogLevel"])
			}
			if _, ok := lc["SystemLogLevel"]; !ok {
				t.Error("LoggingConfig.SystemLogLevel is not set")
			}
			// The function logs to /aws/lambda/<name> unless LoggingConfig
			// names a group; either way that group is declared here.
			var group doc
			if g, ok := lc["LogGroup"]; ok {
				n, a, _ := isIntrinsic(g)
				name, _ := a.(string)
				if n != "Ref" {
					t.Fatalf("LoggingConfig.LogGroup = %v, want a !Ref to a log group of this template", g)
				}
				group = resource(t, tpl, name, "AWS::Logs::LogGroup")
			} else {
				want := doc{"Fn::Sub": "/aws/lambda/${" + id + "}"}
				for _, gid := range slices.Sorted(maps.Keys(tpl["Resources"].(doc))) {
					r, _ := tpl["Resources"].(doc)[gid].(doc)
					if name, _ := at(r, "Properties", "LogGroupName"); r["Type"] == "AWS::Logs::LogGroup" && reflectDeepEqual(name, want) {
						if group != nil {
							t.Errorf("two log groups are named %v", want)
						}
						group = r
					}
				}
				if group == nil {
					t.Fatalf("no AWS::Logs::LogGroup is named !Sub /aws/lambda/${%s}: its retention is not set", id)
				}
			}
			if ret, _ := at(group, "Properties", "RetentionInDays"); !reflectDeepEqual(ret, ref("LogRetentionDays")) {
				t.Errorf("log group RetentionInDays = %v, want !Ref LogRetentionDays", ret)
			}
		})
	}
}

// declaredEnv returns the environment variables the template declares for a
// function (Globals and its own), resolved for the default parameters.
func declaredEnv(t testing.TB, tpl doc, id string) map[string]any {
	t.Helper()
	p := functionProps(t, tpl, id)
	vars, _ := at(p, "Environment", "Variables")
	m, _ := vars.(doc)
	return m
}

func TestEnvironment(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	global, _ := at(tpl, "Globals", "Function", "Environment", "Variables")
	if got := slices.Sorted(maps.Keys(global.(doc))); !slices.Equal(got, slices.Sorted(slices.Values(specVariables))) {
		t.Errorf("Globals environment = %v, want SPEC's %v", got, specVariables)
	}
	s := newStack(t, tpl, nil)
	for id := range functionDirs {
		t.Run(id, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{}
			for k, v := range declaredEnv(t, tpl, id) {
				r := s.eval(t, v)
				if _, _, unresolved := isIntrinsic(r); unresolved {
					// The secret's ARN and the bucket's name are known at deploy time only.
					switch {
					case k == config.EnvSecretID && reflectDeepEqual(r, ref("NxcloudSecret")):
						r = "arn:aws:secretsmanager:ap-southeast-2:123456789012:secret:nxcloud-AbCdEf"
					case k == config.EnvMediaBucket && reflectDeepEqual(r, ref("MediaBucket")):
						r = "nxcloud-media-123456789012-ap-southeast-2-0a1b2c3d4e5f"
					default:
						t.Errorf("%s = %v: want a parameter, the stack's secret or its bucket", k, v)
					}
				}
				env[k] = scalarString(r)
			}
			cfg, err := config.FromEnv(func(k string) string { return env[k] })
			if err != nil {
				t.Fatalf("the template's defaults are not a valid configuration: %v", err)
			}
			want := config.Config{
				SecretID:       "arn:aws:secretsmanager:ap-southeast-2:123456789012:secret:nxcloud-AbCdEf",
				BaseURL:        nxcloud.DefaultBaseURL,
				SecretTTL:      config.DefaultSecretTTL,
				SignAlgorithm:  nxcloud.MD5,
				Timeout:        config.DefaultTimeout,
				MaxUploadBytes: config.DefaultMaxUploadBytes,
				UploadPrefix:   config.DefaultUploadPrefix,
				ClaimLease:     config.DefaultClaimLease,
				Settle:         config.DefaultSettle,
				Namespace:      config.DefaultNamespace,
			}
			if id == "ReconcileFunction" {
				want.MediaBucket = "nxcloud-media-123456789012-ap-southeast-2-0a1b2c3d4e5f"
			}
			if cfg != want {
				t.Errorf("defaults = %+v, want SPEC's %+v", cfg, want)
			}
		})
	}
}

// TestParameters checks what cfn-lint would: every parameter and condition
// is used, every Ref names something that exists, and the Go-duration
// parameters accept what the functions accept.
func TestParameters(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	params, _ := tpl["Parameters"].(doc)
	conds, _ := tpl["Conditions"].(doc)
	res, _ := tpl["Resources"].(doc)
	usedP, usedC := map[string]bool{}, map[string]bool{}
	rest := doc{"Resources": tpl["Resources"], "Outputs": tpl["Outputs"], "Globals": tpl["Globals"], "Conditions": tpl["Conditions"]}
	walk(rest, func(v any) {
		n, a, ok := isIntrinsic(v)
		if !ok {
			if m, isMap := v.(doc); isMap {
				if c, ok := m["Condition"].(string); ok {
					usedC[c] = true
				}
			}
			return
		}
		switch n {
		case "Ref":
			name, _ := a.(string)
			_, isParam := params[name]
			_, isRes := res[name]
			if !isParam && !isRes && !strings.HasPrefix(name, "AWS::") {
				t.Errorf("!Ref %s names neither a parameter nor a resource", name)
			}
			usedP[name] = true
		case "Fn::Sub":
			tmpl, _ := subParts(t, v)
			for _, m := range subVarRE.FindAllString(tmpl, -1) {
				usedP[m[2:len(m)-1]] = true
			}
		case "Fn::If":
			if args, ok := a.([]any); ok && len(args) > 0 {
				c, _ := args[0].(string)
				usedC[c] = true
			}
		case "Condition":
			c, _ := a.(string)
			usedC[c] = true
		case "Fn::GetAtt":
			args, _ := a.([]any)
			if len(args) != 2 || res[scalarString(args[0])] == nil {
				t.Errorf("!GetAtt %v names no resource", a)
			}
		}
	})
	for p := range params {
		if !usedP[p] {
			t.Errorf("parameter %s is not used", p)
		}
	}
	for c := range conds {
		if !usedC[c] {
			t.Errorf("condition %s is not used", c)
		}
	}
	for _, name := range []string{"NxcloudSecretTtl", "NxcloudTimeout"} {
		pattern, _ := at(params[name], "AllowedPattern")
		re := regexp.MustCompile(scalarString(pattern))
		def, _ := at(params[name], "Default")
		for _, v := range []string{scalarString(def), "90s", "1m30s", "250ms", "1.5h"} {
			if _, err := time.ParseDuration(v); err != nil || !re.MatchString(v) {
				t.Errorf("%s: %q is a Go duration its AllowedPattern rejects", name, v)
			}
		}
	}
	for _, tc := range []struct {
		param string
		good  []string
		bad   []string
	}{
		{"UploadPrefix", []string{"templates/", "a/b/"}, []string{"/templates/", "templates", ""}},
		{"NxcloudBusinessPhone", []string{"", "8615812341795", "12345"}, []string{"1234", "+8615812341795", "123456789012345678901"}},
		{"ExistingSecretArn", []string{"", "arn:aws:secretsmanager:us-east-1:123456789012:secret:nxcloud-AbCdEf"}, []string{"nxcloud"}},
		{"MaxUploadBytes", []string{"104857600", "1"}, []string{"0", "-1", "1e6"}},
		{"UploadReservedConcurrency", []string{"", "0", "10"}, []string{"-1", "x"}},
	} {
		pattern, _ := at(params[tc.param], "AllowedPattern")
		re := regexp.MustCompile(scalarString(pattern))
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
	tpl := loadTemplate(t)
	for _, name := range []string{"ApiUrl", "MediaBucketName", "SecretArn", "FailureQueueUrl",
		"GetMediaFunctionArn", "DeleteMediaFunctionArn", "UploadTemplateFileFunctionArn"} {
		if _, ok := at(tpl, "Outputs", name, "Value"); !ok {
			t.Errorf("output %s is missing", name)
		}
	}
	s := newStack(t, tpl, nil)
	url := s.eval(t, mustAt(t, tpl, "Outputs", "ApiUrl", "Value"))
	if url != "https://${HttpApi}.execute-api.ap-southeast-2.amazonaws.com" {
		t.Errorf("ApiUrl = %v", url)
	}
}
