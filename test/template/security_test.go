package template_test

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/config"
)

// existingSecret is the ExistingSecretArn of the deployments that bring their
// own secret.
const existingSecret = "arn:aws:secretsmanager:ap-southeast-2:123456789012:secret:nxcloud/prod-AbCdEf"

// secDeployments are the deployments the grants are checked under: the
// defaults, an existing secret, an open API, a reserved upload concurrency.
var secDeployments = []map[string]string{
	{},
	{"ExistingSecretArn": existingSecret},
	{"ApiAuthType": "NONE"},
	{"UploadReservedConcurrency": "5"},
}

// wantS3 is every S3 grant of each function: object key pattern (relative to
// the media bucket, "" for the bucket itself) -> actions.
var wantS3 = map[string]map[string][]string{
	"UploadTemplateFileFunction": uploadGrants(config.DefaultUploadPrefix),
	"UploadMediaFunction":        uploadGrants(config.DefaultMediaPrefix),
	// Presigns the PUT of files under its sessions' folders, reads the
	// session documents, the files' heads, their bindings and records.
	"UploadSessionsFunction": {
		config.DefaultUploadPrefix + "uploads/*":                      {"s3:GetObject", "s3:PutObject"},
		config.DefaultMediaPrefix + "uploads/*":                       {"s3:GetObject", "s3:PutObject"},
		"nxcloud-records/" + config.DefaultUploadPrefix + "uploads/*": {"s3:GetObject"},
		"nxcloud-records/" + config.DefaultMediaPrefix + "uploads/*":  {"s3:GetObject"},
		"": {"s3:ListBucket"},
	},
	// The sweep: what both upload functions need, plus listing the versions
	// and keeping its position.
	"ReconcileFunction": func() map[string][]string {
		g := uploadGrants(config.DefaultUploadPrefix)
		maps.Copy(g, uploadGrants(config.DefaultMediaPrefix))
		g["nxcloud-sweep/*"] = []string{"s3:GetObject", "s3:PutObject"}
		g[""] = []string{"s3:ListBucket", "s3:ListBucketVersions"}
		return g
	}(),
}

// uploadGrants are the S3 grants of an upload function of prefix: read and
// tag the objects, their records and claims, and list the bucket
// (ListBucket turns the 403 for a missing key into a 404).
func uploadGrants(prefix string) map[string][]string {
	return map[string][]string{
		prefix + "*": {"s3:GetObject", "s3:GetObjectTagging", "s3:GetObjectVersion",
			"s3:GetObjectVersionTagging", "s3:PutObjectTagging", "s3:PutObjectVersionTagging"},
		claimPrefix + prefix + "*":        {"s3:DeleteObject", "s3:DeleteObjectVersion", "s3:GetObject", "s3:PutObject"},
		"nxcloud-records/" + prefix + "*": {"s3:GetObject", "s3:PutObject"},
		"":                                {"s3:ListBucket"},
	}
}

// readsNoSecret are the functions that call no NXCloud: no Secrets Manager
// grant.
var readsNoSecret = map[string]bool{"UploadSessionsFunction": true}

// policyStatements returns every IAM statement of a deployment by where it
// is: the functions' inline policies (failing on managed policies and SAM
// policy templates, which cannot be checked here) and the documents of the
// AWS::IAM::* resources.
func policyStatements(t *testing.T, tpl doc) map[string][]doc {
	t.Helper()
	out := map[string][]doc{}
	for _, id := range functions(tpl) {
		for _, p := range list(at(tpl, "Resources", id, "Properties", "Policies")) {
			if at(p, "Statement") == nil {
				t.Errorf("%s: policy %v is not an inline policy document", id, p)
			}
			for _, st := range list(at(p, "Statement")) {
				out[id] = append(out[id], st.(doc))
			}
		}
	}
	for id, r := range at(tpl, "Resources").(doc) {
		if typ, _ := at(r, "Type").(string); strings.HasPrefix(typ, "AWS::IAM::") {
			walk(r, func(v any) {
				for _, st := range list(at(v, "Statement")) {
					out[id] = append(out[id], st.(doc))
				}
			})
		}
	}
	return out
}

var bucketNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// TestSecurityLeastPrivilege checks every Allow statement under every
// deployment of secDeployments: no NotAction or NotResource, no wildcard in
// an action, no "*" resource, no reference to MediaBucket (a circular
// dependency through the S3 notification: the bucket is named with !Sub);
// Secrets Manager only as GetSecretValue on exactly the stack's secret (or
// ExistingSecretArn); S3 exactly the grants of wantS3, inside the media
// bucket; no other service. Every function that calls NXCloud reads its
// secret, and no other does.
func TestSecurityLeastPrivilege(t *testing.T) {
	t.Parallel()
	for _, params := range secDeployments {
		tpl := deploy(t, params)
		bucket, _ := at(tpl, "Resources", "MediaBucket", "Properties", "BucketName").(string)
		if !bucketNameRE.MatchString(bucket) {
			t.Fatalf("%v: the bucket name does not resolve to a bucket name: %q", params, bucket)
		}
		wantSecret := any(doc{"Ref": "NxcloudSecret"})
		if params["ExistingSecretArn"] != "" {
			wantSecret = params["ExistingSecretArn"]
		}
		if created := at(tpl, "Resources", "NxcloudSecret") != nil; created != (params["ExistingSecretArn"] == "") {
			t.Errorf("%v: NxcloudSecret created = %v: the stack creates its secret exactly when ExistingSecretArn is empty", params, created)
		}
		for id, sts := range policyStatements(t, tpl) {
			gotS3 := map[string][]string{}
			readsSecret := false
			for _, st := range sts {
				if st["Effect"] != "Allow" {
					continue
				}
				where := fmt.Sprintf("%s %v statement %v", id, params, st["Sid"])
				if st["NotAction"] != nil || st["NotResource"] != nil {
					t.Errorf("%s: NotAction or NotResource grants everything else", where)
				}
				actions := strs(st["Action"])
				walk(st["Resource"], func(v any) {
					if v == "*" {
						t.Errorf("%s grants %v on every resource", where, actions)
					}
					if reflect.DeepEqual(v, doc{"Ref": "MediaBucket"}) || reflect.DeepEqual(v, doc{"Fn::GetAtt": []any{"MediaBucket", "Arn"}}) {
						t.Errorf("%s refers to MediaBucket: that is a circular dependency, name it with !Sub", where)
					}
				})
				for _, a := range actions {
					svc, _, _ := strings.Cut(a, ":")
					switch {
					case strings.Contains(a, "*"):
						t.Errorf("%s grants the wildcard action %s", where, a)
					case svc == "secretsmanager":
						readsSecret = true
						if a != "secretsmanager:GetSecretValue" {
							t.Errorf("%s grants %s: the functions only read their secret", where, a)
						}
						if !reflect.DeepEqual(st["Resource"], wantSecret) {
							t.Errorf("%s: %s on %v, want exactly %v", where, a, st["Resource"], wantSecret)
						}
					case svc == "s3":
						for _, r := range list(st["Resource"]) {
							rs, _ := r.(string)
							key, ok := strings.CutPrefix(rs, "arn:aws:s3:::"+bucket)
							if key != "" {
								key, ok = strings.CutPrefix(key, "/")
							}
							if !ok {
								t.Errorf("%s: %s on %v, outside the media bucket arn:aws:s3:::%s", where, a, r, bucket)
							}
							gotS3[key] = append(gotS3[key], a)
						}
					default:
						t.Errorf("%s grants %s: no function needs it", where, a)
					}
				}
			}
			if _, isFn := functionDirs[id]; !isFn {
				continue
			}
			switch {
			case !readsSecret && !readsNoSecret[id]:
				t.Errorf("%s %v cannot read the NXCloud secret (secretsmanager:GetSecretValue)", id, params)
			case readsSecret && readsNoSecret[id]:
				t.Errorf("%s %v may read the NXCloud secret: it calls no NXCloud", id, params)
			}
			for k := range gotS3 {
				slices.Sort(gotS3[k])
			}
			if want := wantS3[id]; !maps.EqualFunc(gotS3, want, slices.Equal) {
				t.Errorf("%s %v: S3 grants = %v, want %v", id, params, gotS3, want)
			}
		}
	}
}

// TestSecurityMediaBucket checks the media bucket: kept when the stack goes
// (uploaded media are data), TLS only (one bucket policy, denying s3:* to
// every principal on the bucket and its objects when aws:SecureTransport is
// false), every public access block on, ACLs disabled, versions kept,
// encrypted at rest, and a valid bucket name whatever the stack's name.
func TestSecurityMediaBucket(t *testing.T) {
	t.Parallel()
	tpl := deploy(t, nil)
	b := at(tpl, "Resources", "MediaBucket")
	if at(b, "Type") != "AWS::S3::Bucket" || at(b, "DeletionPolicy") != "Retain" {
		t.Errorf("MediaBucket is %v with DeletionPolicy %v, want an AWS::S3::Bucket kept with Retain", at(b, "Type"), at(b, "DeletionPolicy"))
	}
	for _, c := range []struct {
		path []any
		want any
	}{
		{[]any{"VersioningConfiguration", "Status"}, "Enabled"},
		{[]any{"PublicAccessBlockConfiguration", "BlockPublicAcls"}, true},
		{[]any{"PublicAccessBlockConfiguration", "BlockPublicPolicy"}, true},
		{[]any{"PublicAccessBlockConfiguration", "IgnorePublicAcls"}, true},
		{[]any{"PublicAccessBlockConfiguration", "RestrictPublicBuckets"}, true},
		{[]any{"OwnershipControls", "Rules", 0, "ObjectOwnership"}, "BucketOwnerEnforced"},
	} {
		if got := at(b, append([]any{"Properties"}, c.path...)...); got != c.want {
			t.Errorf("MediaBucket %v = %v, want %v", c.path, got, c.want)
		}
	}
	alg := at(b, "Properties", "BucketEncryption", "ServerSideEncryptionConfiguration", 0, "ServerSideEncryptionByDefault", "SSEAlgorithm")
	if alg != "AES256" && alg != "aws:kms" && alg != "aws:kms:dsse" {
		t.Errorf("MediaBucket SSEAlgorithm = %v, want AES256 or aws:kms", alg)
	}

	var policies []string
	for _, id := range ofType(tpl, "AWS::S3::BucketPolicy") {
		if reflect.DeepEqual(at(tpl, "Resources", id, "Properties", "Bucket"), doc{"Ref": "MediaBucket"}) {
			policies = append(policies, id)
		}
	}
	if len(policies) != 1 {
		t.Fatalf("bucket policies on MediaBucket: %v, want one", policies)
	}
	tlsDeny := false
	for _, st := range list(at(tpl, "Resources", policies[0], "Properties", "PolicyDocument", "Statement")) {
		principal := at(st, "Principal")
		if p := at(principal, "AWS"); p != nil {
			principal = p
		}
		secure := at(st, "Condition", "Bool", "aws:SecureTransport")
		wantRes := []any{doc{"Fn::GetAtt": []any{"MediaBucket", "Arn"}}, "${MediaBucket.Arn}/*"}
		if at(st, "Effect") == "Deny" && principal == "*" && slices.Contains(strs(at(st, "Action")), "s3:*") &&
			(secure == "false" || secure == false) {
			tlsDeny = true
			if !reflect.DeepEqual(list(at(st, "Resource")), wantRes) {
				t.Errorf("the TLS deny covers %v, want the bucket and its objects %v", at(st, "Resource"), wantRes)
			}
		}
	}
	if !tlsDeny {
		t.Error("no statement denies s3:* to * when aws:SecureTransport is false")
	}

	for _, name := range []string{"nxcloud-media", "Media-Stack-With-Capitals", strings.Repeat("x", 128)} {
		got, _ := at(deploy(t, map[string]string{"AWS::StackName": name}), "Resources", "MediaBucket", "Properties", "BucketName").(string)
		if !bucketNameRE.MatchString(got) || strings.Contains(got, "..") {
			t.Errorf("stack %q: bucket name %q is not a valid S3 bucket name", name, got)
		}
	}
}

// TestSecurityAPIAuthorization checks that the HTTP API requires IAM unless
// the deployer opts out: ApiAuthType defaults to AWS_IAM; authorization is
// declared per operation in DefinitionBody (SAM's Auth would overwrite it),
// SigV4 for AWS_IAM and none for NONE, on every operation; every operation is
// a route of a function and every route an operation; no function event sets
// its own Auth.
func TestSecurityAPIAuthorization(t *testing.T) {
	t.Parallel()
	src := source(t)
	p := at(src, "Parameters", "ApiAuthType")
	if at(p, "Default") != "AWS_IAM" || !slices.Equal(strs(at(p, "AllowedValues")), []string{"AWS_IAM", "NONE"}) {
		t.Errorf("ApiAuthType defaults to %v with AllowedValues %v, want AWS_IAM of [AWS_IAM NONE]", at(p, "Default"), at(p, "AllowedValues"))
	}
	if auth := at(src, "Resources", "HttpApi", "Properties", "Auth"); auth != nil {
		t.Errorf("HttpApi.Auth = %v: authorization is declared in DefinitionBody so that ApiAuthType can switch it", auth)
	}
	for _, tc := range []struct {
		authType string
		want     []any
	}{
		{"", []any{doc{"AWS_IAM": []any{}}}},
		{"AWS_IAM", []any{doc{"AWS_IAM": []any{}}}},
		{"NONE", []any{}},
	} {
		params := map[string]string{}
		if tc.authType != "" {
			params["ApiAuthType"] = tc.authType
		}
		tpl := deploy(t, params)
		body := at(tpl, "Resources", "HttpApi", "Properties", "DefinitionBody")
		if at(body, "components", "securitySchemes", "AWS_IAM", "x-amazon-apigateway-authtype") != "awsSigv4" {
			t.Errorf("securitySchemes.AWS_IAM is not SigV4: %v", at(body, "components", "securitySchemes"))
		}
		routes := httpRoutes(t, tpl)
		ops := 0
		for path, methods := range at(body, "paths").(doc) {
			for method, op := range methods.(doc) {
				ops++
				if _, ok := routes[strings.ToUpper(method)+" "+path]; !ok {
					t.Errorf("DefinitionBody declares %s %s that no function serves", method, path)
				}
				if sec := at(op, "security"); !reflect.DeepEqual(sec, tc.want) {
					t.Errorf("ApiAuthType %q: %s %s security = %v, want %v", tc.authType, method, path, sec, tc.want)
				}
			}
		}
		if ops != len(routes) {
			t.Errorf("DefinitionBody has %d operations for the routes %v: every route needs its operation", ops, routes)
		}
	}
	tpl := deploy(t, nil)
	for _, id := range functions(tpl) {
		for name, ev := range at(tpl, "Resources", id, "Properties", "Events").(doc) {
			if at(ev, "Type") == "HttpApi" && at(ev, "Properties", "Auth") != nil {
				t.Errorf("%s event %s sets Auth: it would override the API's authorization", id, name)
			}
		}
	}
}

// TestSecurityAPIThrottling checks that every route is throttled with
// positive limits by default.
func TestSecurityAPIThrottling(t *testing.T) {
	t.Parallel()
	settings := at(deploy(t, nil), "Resources", "HttpApi", "Properties", "DefaultRouteSettings")
	for _, k := range []string{"ThrottlingBurstLimit", "ThrottlingRateLimit"} {
		if n := num(at(settings, k)); n <= 0 {
			t.Errorf("HttpApi.DefaultRouteSettings.%s = %v by default, want a positive limit (else only the account limit applies)", k, at(settings, k))
		}
	}
}

// TestSecurityReservedConcurrency checks that each function either reserves
// concurrency by default or the documentation (README.md or SECURITY.md)
// explains why not, and that the upload function's reservation is a
// parameter.
func TestSecurityReservedConcurrency(t *testing.T) {
	t.Parallel()
	var docs string
	for _, name := range []string{"README.md", "SECURITY.md"} {
		b, _ := os.ReadFile(filepath.Join(root, name))
		docs += string(b)
	}
	tpl := deploy(t, nil)
	for _, id := range functions(tpl) {
		if props(tpl, id)["ReservedConcurrentExecutions"] == nil && !regexp.MustCompile(`(?i)reserved\s+concurrency`).MatchString(docs) {
			t.Errorf("%s reserves no concurrency by default and neither README.md nor SECURITY.md says why (mention \"reserved concurrency\")", id)
		}
	}
	up := props(deploy(t, map[string]string{"UploadReservedConcurrency": "3"}), "UploadTemplateFileFunction")
	if got := num(up["ReservedConcurrentExecutions"]); got != 3 {
		t.Errorf("UploadReservedConcurrency=3 gives ReservedConcurrentExecutions %v", up["ReservedConcurrentExecutions"])
	}
}

// TestSecurityUploadRetries checks the upload function's asynchronous
// invocations: bounded retries and event age (parameters with a MaxValue), the
// failure queue as the on-failure destination, encrypted at rest (it holds
// object keys and error messages) and keeping messages 14 days; the HTTP
// functions, invoked synchronously, have no such configuration.
func TestSecurityUploadRetries(t *testing.T) {
	t.Parallel()
	src, tpl := source(t), deploy(t, nil)
	eic := props(tpl, "UploadTemplateFileFunction")["EventInvokeConfig"]
	if eic == nil {
		t.Fatal("UploadTemplateFileFunction has no EventInvokeConfig")
	}
	if n := num(at(eic, "MaximumRetryAttempts")); n < 0 || n > 2 {
		t.Errorf("MaximumRetryAttempts = %v by default, want 0 to 2", at(eic, "MaximumRetryAttempts"))
	}
	if n := num(at(eic, "MaximumEventAgeInSeconds")); n < 60 || n > 21600 {
		t.Errorf("MaximumEventAgeInSeconds = %v by default, want 60 to 21600", at(eic, "MaximumEventAgeInSeconds"))
	}
	for _, p := range []string{"UploadMaxRetryAttempts", "UploadMaxEventAgeSeconds"} {
		if at(src, "Parameters", p, "MaxValue") == nil {
			t.Errorf("parameter %s has no MaxValue: a deployer could set an invalid value", p)
		}
	}
	dest := at(eic, "DestinationConfig", "OnFailure")
	if at(dest, "Type") != "SQS" || !reflect.DeepEqual(at(dest, "Destination"), doc{"Fn::GetAtt": []any{"UploadFailureQueue", "Arn"}}) {
		t.Errorf("OnFailure = %v, want SQS to !GetAtt UploadFailureQueue.Arn", dest)
	}
	q := at(tpl, "Resources", "UploadFailureQueue", "Properties")
	if at(q, "SqsManagedSseEnabled") != true && at(q, "KmsMasterKeyId") == nil {
		t.Error("UploadFailureQueue is not encrypted at rest")
	}
	if num(at(q, "MessageRetentionPeriod")) != 1209600 {
		t.Errorf("UploadFailureQueue.MessageRetentionPeriod = %v, want 1209600 (14 days)", at(q, "MessageRetentionPeriod"))
	}
	for _, id := range []string{"GetMediaFunction", "DeleteMediaFunction"} {
		if props(tpl, id)["EventInvokeConfig"] != nil {
			t.Errorf("%s has an EventInvokeConfig: it is invoked synchronously", id)
		}
	}
}
