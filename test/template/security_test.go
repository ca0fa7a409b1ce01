package template_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// secParamSets are the deployments the security checks evaluate the
// template under: the defaults, an existing secret, an open API, a reserved
// upload concurrency.
var secParamSets = []map[string]string{
	{},
	{"ExistingSecretArn": "arn:aws:secretsmanager:ap-southeast-2:123456789012:secret:nxcloud/prod-AbCdEf"},
	{"ApiAuthType": "NONE"},
	{"UploadReservedConcurrency": "5"},
}

// secIsTrue reports a CloudFormation boolean, as YAML or as a string.
func secIsTrue(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		return strings.EqualFold(x, "true")
	}
	return false
}

// secPolicyStatements returns every IAM statement of the template after
// evaluation: the functions' inline policies and the AWS::IAM::* resources'
// documents, each with where it comes from.
func secPolicyStatements(t *testing.T, tpl doc, s *stack) map[string][]doc {
	t.Helper()
	out := map[string][]doc{}
	for _, id := range serverlessFunctions(tpl) {
		for _, st := range statements(t, tpl, id) {
			if m, ok := s.eval(t, st).(doc); ok {
				out[id] = append(out[id], m)
			}
		}
	}
	res, _ := tpl["Resources"].(doc)
	for id, r := range res {
		typ, _ := at(r, "Type")
		if ts, _ := typ.(string); !strings.HasPrefix(ts, "AWS::IAM::") {
			continue
		}
		walk(r, func(v any) {
			m, ok := v.(doc)
			if !ok {
				return
			}
			if sts, ok := m["Statement"]; ok {
				for _, st := range list(sts) {
					if e, ok := s.eval(t, st).(doc); ok {
						out[id] = append(out[id], e)
					}
				}
			}
		})
	}
	return out
}

// secBucketLevel reports S3 actions that apply to a bucket, not to its
// objects (all of actions must be such).
func secBucketLevel(actions []string) bool {
	for _, a := range actions {
		switch strings.ToLower(a) {
		case "s3:listbucket", "s3:listbucketversions", "s3:getbucketlocation":
		default:
			return false
		}
	}
	return len(actions) > 0
}

// TestSecurityNoWildcardGrants checks that no Allow statement on S3 or
// Secrets Manager has a wildcard action or a "*" resource, that Secrets
// Manager grants name exactly the one secret, and that S3 grants stay inside
// the media bucket.
func TestSecurityNoWildcardGrants(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	for _, params := range secParamSets {
		s := newStack(t, tpl, params)
		secretARN := s.params["ExistingSecretArn"]
		bucketTmpl, bucketVars := bucketNameSub(t, tpl)
		bucket, _ := s.eval(t, doc{"Fn::Sub": []any{bucketTmpl, bucketVars}}).(string)
		if bucket == "" || strings.Contains(bucket, "${") {
			t.Fatalf("%v: the bucket name does not resolve: %q", params, bucket)
		}
		for id, sts := range secPolicyStatements(t, tpl, s) {
			for _, st := range sts {
				if st["Effect"] != "Allow" {
					continue
				}
				actions := strs(st["Action"])
				if _, ok := st["NotAction"]; ok {
					t.Errorf("%s %v: NotAction grants everything else", id, params)
				}
				if _, ok := st["NotResource"]; ok {
					t.Errorf("%s %v: NotResource grants everything else", id, params)
				}
				var onS3, onSecrets bool
				for _, a := range actions {
					lower := strings.ToLower(a)
					if a == "*" || strings.HasSuffix(lower, ":*") {
						t.Errorf("%s %v: wildcard action %q", id, params, a)
					}
					onS3 = onS3 || strings.HasPrefix(lower, "s3:")
					onSecrets = onSecrets || strings.HasPrefix(lower, "secretsmanager:")
				}
				if !onS3 && !onSecrets {
					continue
				}
				for _, r := range list(st["Resource"]) {
					rs, isString := r.(string)
					switch {
					case rs == "*" || strings.HasSuffix(rs, ":*"):
						t.Errorf("%s %v: %v on the resource %q", id, params, actions, rs)
					case onSecrets && secretARN == "" && !reflectDeepEqual(r, ref("NxcloudSecret")):
						t.Errorf("%s %v: %v on %v, want only the stack's secret (Ref NxcloudSecret)", id, params, actions, r)
					case onSecrets && secretARN != "" && rs != secretARN:
						t.Errorf("%s %v: %v on %v, want only ExistingSecretArn %s", id, params, actions, r, secretARN)
					case onS3 && secBucketLevel(actions):
						if rs != "arn:aws:s3:::"+bucket {
							t.Errorf("%s %v: bucket-level %v on %v, want exactly arn:aws:s3:::%s", id, params, actions, r, bucket)
						}
					case onS3 && (!isString || !strings.HasPrefix(rs, "arn:aws:s3:::"+bucket+"/")):
						t.Errorf("%s %v: %v on %v, want object ARNs inside arn:aws:s3:::%s/", id, params, actions, r, bucket)
					case onS3 && strings.TrimPrefix(rs, "arn:aws:s3:::"+bucket+"/") == "*":
						t.Errorf("%s %v: %v on every object of the bucket (%s), want the upload prefix and the claim prefix only", id, params, actions, rs)
					}
				}
			}
		}
	}
}

// TestSecurityBucket checks the media bucket: TLS only (a Deny of every
// request with aws:SecureTransport false), every public access block on,
// versioning, encryption at rest, ACLs disabled.
func TestSecurityBucket(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	s := newStack(t, tpl, nil)
	bucket := s.eval(t, resource(t, tpl, "MediaBucket", "AWS::S3::Bucket")["Properties"]).(doc)

	t.Run("TLS only", func(t *testing.T) {
		t.Parallel()
		var policies []doc
		res, _ := tpl["Resources"].(doc)
		for _, r := range res {
			if typ, _ := at(r, "Type"); typ == "AWS::S3::BucketPolicy" {
				if b, _ := at(r, "Properties", "Bucket"); reflectDeepEqual(b, ref("MediaBucket")) {
					policies = append(policies, r.(doc))
				}
			}
		}
		if len(policies) != 1 {
			t.Fatalf("%d bucket policies on MediaBucket, want 1", len(policies))
		}
		denies := false
		for _, st := range list(mustAt(t, policies[0], "Properties", "PolicyDocument", "Statement")) {
			st := st.(doc)
			cond, _ := at(st, "Condition", "Bool", "aws:SecureTransport")
			if st["Effect"] != "Deny" || scalarString(cond) != "false" {
				continue
			}
			principal := st["Principal"]
			if p, ok := principal.(doc); ok {
				principal = p["AWS"]
			}
			covers := map[string]bool{}
			for _, r := range list(st["Resource"]) {
				switch {
				case reflectDeepEqual(r, doc{"Fn::GetAtt": "MediaBucket.Arn"}), reflectDeepEqual(r, doc{"Fn::GetAtt": []any{"MediaBucket", "Arn"}}):
					covers["bucket"] = true
				case reflectDeepEqual(r, doc{"Fn::Sub": "${MediaBucket.Arn}/*"}):
					covers["objects"] = true
				}
			}
			if principal == "*" && slices.Contains(strs(st["Action"]), "s3:*") && covers["bucket"] && covers["objects"] {
				denies = true
			}
		}
		if !denies {
			t.Errorf("no statement denies s3:* to * on the bucket and its objects when aws:SecureTransport is false")
		}
	})

	t.Run("public access blocked", func(t *testing.T) {
		t.Parallel()
		for _, k := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
			if v, _ := at(bucket, "PublicAccessBlockConfiguration", k); !secIsTrue(v) {
				t.Errorf("PublicAccessBlockConfiguration.%s = %v, want true", k, v)
			}
		}
		if o, _ := at(bucket, "OwnershipControls", "Rules", 0, "ObjectOwnership"); o != "BucketOwnerEnforced" {
			t.Errorf("ObjectOwnership = %v, want BucketOwnerEnforced (ACLs disabled)", o)
		}
	})

	t.Run("versioning", func(t *testing.T) {
		t.Parallel()
		if v, _ := at(bucket, "VersioningConfiguration", "Status"); v != "Enabled" {
			t.Errorf("VersioningConfiguration.Status = %v, want Enabled", v)
		}
	})

	t.Run("encryption at rest", func(t *testing.T) {
		t.Parallel()
		alg, _ := at(bucket, "BucketEncryption", "ServerSideEncryptionConfiguration", 0, "ServerSideEncryptionByDefault", "SSEAlgorithm")
		if alg != "AES256" && alg != "aws:kms" && alg != "aws:kms:dsse" {
			t.Errorf("SSEAlgorithm = %v, want AES256 or aws:kms", alg)
		}
	})
}

// TestSecurityAPIAuthorization checks, for each ApiAuthType, that every
// route of the HTTP API carries the expected authorization, that AWS_IAM is
// the default, and that no function event overrides it.
func TestSecurityAPIAuthorization(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	if d, _ := at(tpl, "Parameters", "ApiAuthType", "Default"); d != "AWS_IAM" {
		t.Fatalf("ApiAuthType defaults to %v: the API must require IAM unless the deployer opts out", d)
	}
	api := resource(t, tpl, "HttpApi", "AWS::Serverless::HttpApi")
	for _, authType := range []string{"AWS_IAM", "NONE"} {
		t.Run(authType, func(t *testing.T) {
			t.Parallel()
			s := newStack(t, tpl, map[string]string{"ApiAuthType": authType})
			body := s.eval(t, mustAt(t, api, "Properties", "DefinitionBody"))
			paths, _ := at(body, "paths")
			pm, _ := paths.(doc)
			if len(pm) == 0 {
				t.Fatal("DefinitionBody has no paths")
			}
			for path, ops := range pm {
				for method, op := range ops.(doc) {
					sec, ok := at(op, "security")
					if !ok {
						t.Errorf("%s %s has no security: it would be open whatever ApiAuthType says", method, path)
						continue
					}
					iam := reflectDeepEqual(sec, []any{doc{"AWS_IAM": []any{}}})
					if (authType == "AWS_IAM") != iam {
						t.Errorf("%s %s security %v with ApiAuthType %s", method, path, sec, authType)
					}
				}
			}
		})
	}
	for _, id := range serverlessFunctions(tpl) {
		evs, _ := at(tpl, "Resources", id, "Properties", "Events")
		for name, ev := range evs.(doc) {
			if typ, _ := at(ev, "Type"); typ != "HttpApi" {
				continue
			}
			if auth, ok := at(ev, "Properties", "Auth"); ok {
				t.Errorf("%s event %s sets Auth %v: it would override the API's authorization", id, name, auth)
			}
		}
	}
}

// TestSecurityAPIThrottling checks that every route is throttled with
// positive limits by default.
func TestSecurityAPIThrottling(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	s := newStack(t, tpl, nil)
	settings, ok := at(tpl, "Resources", "HttpApi", "Properties", "DefaultRouteSettings")
	if !ok {
		t.Fatal("HttpApi has no DefaultRouteSettings: the routes are throttled only by the account limit")
	}
	ev := s.eval(t, settings)
	for _, k := range []string{"ThrottlingBurstLimit", "ThrottlingRateLimit"} {
		v, ok := at(ev, k)
		if !ok {
			t.Errorf("DefaultRouteSettings.%s is not set", k)
			continue
		}
		if n, err := strconv.ParseFloat(scalarString(v), 64); err != nil || n <= 0 {
			t.Errorf("DefaultRouteSettings.%s = %v by default, want a positive limit", k, v)
		}
	}
}

// secDocMentionRE finds where the repository's documentation explains the
// functions' reserved concurrency.
var secDocMentionRE = regexp.MustCompile(`(?i)reserved\s+concurrency`)

// TestSecurityReservedConcurrency checks that each function either reserves
// concurrency by default or the documentation (README.md or SECURITY.md)
// explains why not and how to set it.
func TestSecurityReservedConcurrency(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	s := newStack(t, tpl, nil)
	var docs string
	for _, name := range []string{"README.md", "SECURITY.md"} {
		if b, err := os.ReadFile(filepath.Join(root, name)); err == nil {
			docs += string(b)
		}
	}
	for _, id := range serverlessFunctions(tpl) {
		props := s.eval(t, functionProps(t, tpl, id)).(doc)
		if _, ok := props["ReservedConcurrentExecutions"]; ok {
			continue
		}
		if !secDocMentionRE.MatchString(docs) {
			t.Errorf("%s reserves no concurrency by default and neither README.md nor SECURITY.md says why (mention \"reserved concurrency\")", id)
		}
	}
	// The upload function's reservation can be set without editing the template.
	up := newStack(t, tpl, map[string]string{"UploadReservedConcurrency": "3"})
	props := up.eval(t, functionProps(t, tpl, "UploadTemplateFileFunction")).(doc)
	if got := scalarString(props["ReservedConcurrentExecutions"]); got != "3" {
		t.Errorf("UploadReservedConcurrency=3 gives ReservedConcurrentExecutions %q", got)
	}
}

// TestSecurityUploadRetries checks the upload function's asynchronous
// invocation settings: bounded retries, a bounded event age, and the
// failure queue (encrypted at rest) as the on-failure destination.
func TestSecurityUploadRetries(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	s := newStack(t, tpl, nil)
	cfg, ok := at(s.eval(t, functionProps(t, tpl, "UploadTemplateFileFunction")), "EventInvokeConfig")
	if !ok {
		t.Fatal("UploadTemplateFileFunction has no EventInvokeConfig")
	}
	num := func(k string) float64 {
		v, ok := at(cfg, k)
		if !ok {
			t.Errorf("EventInvokeConfig.%s is not set", k)
			return -1
		}
		n, err := strconv.ParseFloat(scalarString(v), 64)
		if err != nil {
			t.Errorf("EventInvokeConfig.%s = %v is not a number", k, v)
		}
		return n
	}
	if n := num("MaximumRetryAttempts"); n < 0 || n > 2 {
		t.Errorf("MaximumRetryAttempts = %v by default, want 0 to 2", n)
	}
	if n := num("MaximumEventAgeInSeconds"); n < 60 || n > 21600 {
		t.Errorf("MaximumEventAgeInSeconds = %v by default, want 60 to 21600", n)
	}
	for _, p := range []string{"UploadMaxRetryAttempts", "UploadMaxEventAgeSeconds"} {
		if _, ok := at(tpl, "Parameters", p, "MaxValue"); !ok {
			t.Errorf("parameter %s has no MaxValue: a deployer could set an invalid value", p)
		}
	}
	dest, _ := at(cfg, "DestinationConfig", "OnFailure", "Destination")
	if !reflectDeepEqual(dest, doc{"Fn::GetAtt": "UploadFailureQueue.Arn"}) && !reflectDeepEqual(dest, doc{"Fn::GetAtt": []any{"UploadFailureQueue", "Arn"}}) {
		t.Errorf("OnFailure destination %v, want the failure queue", dest)
	}
	q := resource(t, tpl, "UploadFailureQueue", "AWS::SQS::Queue")
	sse, _ := at(q, "Properties", "SqsManagedSseEnabled")
	if _, kms := at(q, "Properties", "KmsMasterKeyId"); !secIsTrue(sse) && !kms {
		t.Errorf("the failure queue is not encrypted at rest (it holds object keys and error messages)")
	}
}
