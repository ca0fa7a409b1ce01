package iampolicy_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/iampolicy"
)

const (
	bucket    = "local-media"
	secretARN = "arn:aws:secretsmanager:us-east-1:000000000000:secret:nxcloud/local-a1b2c3"
)

var local = iampolicy.Local{Buckets: map[string]string{"MediaBucket": bucket}, Refs: map[string]string{"NxcloudSecret": secretARN}}

// TestLoadTemplate resolves template.yaml itself: every function has a
// policy; S3 ARNs name the local bucket, whatever its name in AWS; the
// secret grant names the local secret; a parameter changes the ARNs.
func TestLoadTemplate(t *testing.T) {
	t.Parallel()
	template, err := os.ReadFile(filepath.Join("..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	policies, err := iampolicy.Load(template, local)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := policies["GetMediaFunction"]; !ok || len(policies) < 5 {
		t.Fatalf("policies of %v, want every function of the template", slices.Collect(func(yield func(string) bool) {
			for id := range policies {
				if !yield(id) {
					return
				}
			}
		}))
	}
	for id, p := range policies {
		for _, st := range p.Statements {
			for _, r := range st.Resource {
				if strings.HasPrefix(r, "arn:aws:s3:::") && !strings.HasPrefix(r, "arn:aws:s3:::"+bucket) {
					t.Errorf("%s %s: %s does not name the local bucket", id, st.Sid, r)
				}
				if strings.Contains(r, "${") || strings.Contains(r, "arn:aws:secretsmanager") && r != secretARN {
					t.Errorf("%s %s: %s is not resolved to the local resources", id, st.Sid, r)
				}
			}
		}
	}
	get := policies["GetMediaFunction"]
	if !get.Allows("secretsmanager:GetSecretValue", secretARN) || get.Allows("secretsmanager:GetSecretValue", secretARN+"x") ||
		get.Allows("s3:GetObject", "arn:aws:s3:::"+bucket+"/templates/x") {
		t.Errorf("GetMediaFunction: %+v, want its secret only", get)
	}
	up := policies["UploadTemplateFileFunction"]
	for _, tc := range []struct {
		action, resource string
		want             bool
	}{
		{"s3:GetObjectVersion", "arn:aws:s3:::" + bucket + "/templates/8615812341795/a.pdf", true},
		{"S3:getobjectversion", "arn:aws:s3:::" + bucket + "/templates/x", true}, // actions ignore case
		{"s3:GetObjectVersion", "arn:aws:s3:::" + bucket + "/media/x", false},
		{"s3:PutObject", "arn:aws:s3:::" + bucket + "/templates/x", false},
		{"s3:PutObject", "arn:aws:s3:::" + bucket + "/nxcloud-claims/templates/x/v1", true},
		{"s3:ListBucket", "arn:aws:s3:::" + bucket, true},
		{"s3:ListBucket", "arn:aws:s3:::other", false},
	} {
		if got := up.Allows(tc.action, tc.resource); got != tc.want {
			t.Errorf("UploadTemplateFileFunction allows %s on %s = %v, want %v", tc.action, tc.resource, got, tc.want)
		}
	}
	doc, ok := up.S3()
	var parsed struct {
		Version   string
		Statement []iampolicy.Statement
	}
	if !ok || json.Unmarshal(doc, &parsed) != nil || parsed.Version != "2012-10-17" {
		t.Fatalf("S3() = %s, %v", doc, ok)
	}
	for _, st := range parsed.Statement {
		for _, a := range st.Action {
			if !strings.HasPrefix(a, "s3:") {
				t.Errorf("the S3 document grants %s", a)
			}
		}
	}
	if _, ok := get.S3(); ok {
		t.Error("GetMediaFunction's policy has S3 statements")
	}

	// Another prefix moves the grants.
	l := local
	l.Parameters = map[string]string{"UploadPrefix": "in/"}
	moved, err := iampolicy.Load(template, l)
	if err != nil {
		t.Fatal(err)
	}
	if p := moved["UploadTemplateFileFunction"]; !p.Allows("s3:GetObjectVersion", "arn:aws:s3:::"+bucket+"/in/x") || p.Allows("s3:GetObjectVersion", "arn:aws:s3:::"+bucket+"/templates/x") {
		t.Errorf("with UploadPrefix=in/: %+v", p)
	}
}

// Load refuses what it cannot grant locally, naming the function.
func TestLoadRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, policies, want string }{
		{"managed policy", `[AWSLambdaBasicExecutionRole]`, "managed polic"},
		{"SAM policy template", `[{S3ReadPolicy: {BucketName: b}}]`, "no Statement"},
		{"condition", `[{Statement: [{Effect: Allow, Action: s3:GetObject, Resource: '*', Condition: {Bool: {x: y}}}]}]`, "Condition"},
		{"unresolved resource", `[{Statement: [{Effect: Allow, Action: sqs:SendMessage, Resource: !GetAtt Queue.Arn}]}]`, "does not resolve"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tpl := "Resources:\n  Queue: {Type: AWS::SQS::Queue}\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      Policies: " + tc.policies + "\n"
			_, err := iampolicy.Load([]byte(tpl), iampolicy.Local{})
			if err == nil || !strings.Contains(err.Error(), "Fn: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load = %v, want an error naming Fn and %q", err, tc.want)
			}
		})
	}
}

// TestEvaluateSub: Fn::Sub resolves what CloudFormation resolves in a
// string: a String or Number parameter, a pseudo parameter, a resource's
// attribute given, ${!Literal} as ${Literal}; a resource it does not know
// stays ${Name}.
func TestEvaluateSub(t *testing.T) {
	t.Parallel()
	tpl := `Parameters:
  Prefix: {Type: String, Default: in/}
  Days: {Type: Number, Default: 7}
Resources:
  Queue: {Type: AWS::SQS::Queue}
Outputs:
  Out:
    Value: !Sub '${Prefix}${Days}/${AWS::Region}/${!aws:username}/${Queue.Arn}/${Other}'
`
	d := iampolicy.Deployment{Pseudo: map[string]string{"AWS::Region": "eu-west-1"}, Attrs: map[string]string{"Queue.Arn": "arn:q"}}
	out, err := iampolicy.Evaluate([]byte(tpl), d)
	if err != nil {
		t.Fatal(err)
	}
	got := out["Outputs"].(map[string]any)["Out"].(map[string]any)["Value"]
	if want := "in/7/eu-west-1/${aws:username}/arn:q/${Other}"; got != want {
		t.Errorf("Fn::Sub = %v, want %s", got, want)
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"arn:aws:s3:::b/templates/*", "arn:aws:s3:::b/templates/a/b/c", true},
		{"arn:aws:s3:::b/templates/*", "arn:aws:s3:::b/templates/", true},
		{"arn:aws:s3:::b/templates/*", "arn:aws:s3:::b/templates", false},
		{"arn:aws:s3:::b/*/x", "arn:aws:s3:::b/a/b/x", true},
		{"arn:aws:s3:::b/?", "arn:aws:s3:::b/ab", false},
		{"a*b*c", "aXbYbZc", true},
		{"*", "", true},
		{"abc", "abd", false},
	} {
		if got := iampolicy.Match(tc.pattern, tc.s); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

func TestS3Request(t *testing.T) {
	t.Parallel()
	const obj, bkt = "arn:aws:s3:::b/templates/8615812341795/menu card.pdf", "arn:aws:s3:::b"
	for _, tc := range []struct {
		method, target string
		header         http.Header
		status         int
		want           []iampolicy.Access
	}{
		{"HEAD", "/b/templates/8615812341795/menu%20card.pdf?versionId=v1", nil, 200, []iampolicy.Access{{"s3:GetObjectVersion", obj}}},
		{"GET", "/b/templates/8615812341795/menu%20card.pdf?x-id=GetObject", nil, 200, []iampolicy.Access{{"s3:GetObject", obj}}},
		{"GET", "/b/templates/8615812341795/menu%20card.pdf", nil, 404, []iampolicy.Access{{"s3:GetObject", obj}, {"s3:ListBucket", bkt}}},
		{"GET", "/b/templates/8615812341795/menu%20card.pdf?tagging&versionId=v1", nil, 200, []iampolicy.Access{{"s3:GetObjectTagging", obj}, {"s3:GetObjectVersionTagging", obj}}},
		{"PUT", "/b/templates/8615812341795/menu%20card.pdf?tagging", nil, 200, []iampolicy.Access{{"s3:PutObjectTagging", obj}}},
		{"PUT", "/b/templates/8615812341795/menu%20card.pdf?tagging&versionId=v1", nil, 200, []iampolicy.Access{{"s3:PutObjectTagging", obj}, {"s3:PutObjectVersionTagging", obj}}},
		{"PUT", "/b/templates/8615812341795/menu%20card.pdf?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20260101%2Fus-east-1%2Fs3%2Faws4_request",
			nil, 200, []iampolicy.Access{{"s3:PutObject", obj}}},
		{"PUT", "/b/templates/8615812341795/menu%20card.pdf", http.Header{"X-Amz-Copy-Source": {"b/templates/src%20x.pdf?versionId=v0"}}, 200,
			[]iampolicy.Access{{"s3:PutObject", obj}, {"s3:GetObjectVersion", "arn:aws:s3:::b/templates/src x.pdf"}}},
		{"PUT", "/b/templates/8615812341795/menu%20card.pdf", http.Header{"X-Amz-Tagging": {"a=b"}}, 200,
			[]iampolicy.Access{{"s3:PutObject", obj}, {"s3:PutObjectTagging", obj}}},
		{"DELETE", "/b/templates/8615812341795/menu%20card.pdf?versionId=v1", nil, 204, []iampolicy.Access{{"s3:DeleteObject", obj}, {"s3:DeleteObjectVersion", obj}}},
		{"DELETE", "/b/templates/8615812341795/menu%20card.pdf", nil, 204, []iampolicy.Access{{"s3:DeleteObject", obj}}},
		{"POST", "/b/templates/8615812341795/menu%20card.pdf?uploads", nil, 200, []iampolicy.Access{{"s3:PutObject", obj}}},
		{"PUT", "/b/templates/8615812341795/menu%20card.pdf?partNumber=1&uploadId=u", nil, 200, []iampolicy.Access{{"s3:PutObject", obj}}},
		{"DELETE", "/b/templates/8615812341795/menu%20card.pdf?uploadId=u", nil, 204, []iampolicy.Access{{"s3:AbortMultipartUpload", obj}}},
		{"GET", "/b?list-type=2&prefix=nxcloud-records%2F&encoding-type=url", nil, 200, []iampolicy.Access{{"s3:ListBucket", bkt}}},
		{"GET", "/b?versions&prefix=templates%2F&encoding-type=url", nil, 200, []iampolicy.Access{{"s3:ListBucketVersions", bkt}}},
		{"HEAD", "/b", nil, 200, []iampolicy.Access{{"s3:ListBucket", bkt}}},
		{"GET", "/b?versioning", nil, 200, []iampolicy.Access{{"s3:GetBucketVersioning", bkt}}},
		{"POST", "/b?delete", nil, 200, []iampolicy.Access{{iampolicy.Unmapped, "POST /b?delete"}}},
		{"GET", "/b/k?acl", nil, 200, []iampolicy.Access{{iampolicy.Unmapped, "GET /b/k?acl"}}},
	} {
		u, err := url.Parse(tc.target)
		if err != nil {
			t.Fatal(err)
		}
		if got := iampolicy.S3Request(tc.method, u, tc.header, tc.status); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s %s (%d) = %v, want %v", tc.method, tc.target, tc.status, got, tc.want)
		}
	}
}

func TestAccessKeyID(t *testing.T) {
	t.Parallel()
	signed, _ := http.NewRequest(http.MethodGet, "http://s3/b/k", nil)
	signed.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDSIGNED/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=abc")
	presigned, _ := http.NewRequest(http.MethodPut, "http://s3/b/k?X-Amz-Credential=AKIDPRESIGNED%2F20260101%2Fus-east-1%2Fs3%2Faws4_request", nil)
	anonymous, _ := http.NewRequest(http.MethodGet, "http://s3/b/k", nil)
	for r, want := range map[*http.Request]string{signed: "AKIDSIGNED", presigned: "AKIDPRESIGNED", anonymous: ""} {
		if got := iampolicy.AccessKeyID(r); got != want {
			t.Errorf("AccessKeyID(%s %v) = %q, want %q", r.URL, r.Header, got, want)
		}
	}
}

// The ledger finds accesses a policy does not grant, grants nothing used,
// grants another grant makes redundant, and refused requests; a grant used
// by another deployment of the function (the Claims of AKIDOTHER) is used.
func TestLedgerCheck(t *testing.T) {
	t.Parallel()
	p := iampolicy.Policy{Function: "Fn", Statements: []iampolicy.Statement{
		{Sid: "Read", Effect: "Allow", Action: []string{"s3:GetObjectVersion", "s3:GetObject"}, Resource: []string{"arn:aws:s3:::b/in/*"}},
		{Sid: "ReadAll", Effect: "Allow", Action: []string{"s3:GetObjectVersion"}, Resource: []string{"arn:aws:s3:::b/*"}},
		{Sid: "Claims", Effect: "Allow", Action: []string{"s3:PutObject"}, Resource: []string{"arn:aws:s3:::b/claims/*"}},
		{Sid: "Secret", Effect: "Allow", Action: []string{"secretsmanager:GetSecretValue"}, Resource: []string{secretARN}},
		{Sid: "Queue", Effect: "Allow", Action: []string{"sqs:SendMessage"}, Resource: []string{"arn:aws:sqs:us-east-1:000000000000:q"}},
	}}
	// Another deployment of Fn, with its claims elsewhere.
	other := iampolicy.Policy{Function: "Fn", Statements: slices.Clone(p.Statements)}
	other.Statements[2] = iampolicy.Statement{Sid: "Claims", Effect: "Allow", Action: []string{"s3:PutObject"}, Resource: []string{"arn:aws:s3:::c/claims/*"}}
	var l iampolicy.Ledger
	l.Role("AKIDSTACK", p)
	l.Role("AKIDOTHER", other)
	l.Record("AKIDSTACK", "HEAD /b/in/x?versionId", false, iampolicy.Access{Action: "s3:GetObjectVersion", Resource: "arn:aws:s3:::b/in/x"})
	l.Record("AKIDOTHER", "PUT /c/claims/x", false, iampolicy.Access{Action: "s3:PutObject", Resource: "arn:aws:s3:::c/claims/x"})
	l.Record("AKIDSTACK", "PUT /b/claims/y", true, iampolicy.Access{Action: "s3:PutObject", Resource: "arn:aws:s3:::b/claims/y"})
	l.Record("AKIDSTACK", "PUT /b/out/x", false, iampolicy.Access{Action: "s3:PutObject", Resource: "arn:aws:s3:::b/out/x"})
	l.Record("AKIDSTACK", "secretsmanager.GetSecretValue", false, iampolicy.Access{Action: "secretsmanager:GetSecretValue", Resource: secretARN})
	l.Record("AKIDOPERATOR", "PUT /b/x", false, iampolicy.Access{Action: "s3:PutObject", Resource: "arn:aws:s3:::b/x"}) // no role: not recorded
	r := l.Check(map[string]iampolicy.Policy{"Fn": p})

	wantMissing := []string{"PUT /b/claims/y needs s3:PutObject on arn:aws:s3:::b/claims/y (1 times): the service refused it",
		"PUT /b/out/x needs s3:PutObject on arn:aws:s3:::b/out/x (1 times): its policy does not allow it"}
	if len(r.Missing) != len(wantMissing) {
		t.Fatalf("Missing = %q, want %q", r.Missing, wantMissing)
	}
	for i, w := range wantMissing {
		if !strings.Contains(r.Missing[i], w) {
			t.Errorf("Missing[%d] = %q, want it to say %q", i, r.Missing[i], w)
		}
	}
	unneeded := strings.Join(r.Unneeded, "\n")
	for _, w := range []string{
		"statement Read: s3:GetObjectVersion on arn:aws:s3:::b/in/*: every request that needs it is also allowed by Fn statement ReadAll",
		"statement ReadAll: s3:GetObjectVersion on arn:aws:s3:::b/*: every request that needs it is also allowed by Fn statement Read",
		"statement Read: s3:GetObject on arn:aws:s3:::b/in/*: no request of the suite needs it",
	} {
		if !strings.Contains(unneeded, w) {
			t.Errorf("Unneeded = %q, want %q", r.Unneeded, w)
		}
	}
	if len(r.Unneeded) != 3 || len(r.Unchecked) != 1 || !strings.Contains(r.Unchecked[0], "sqs:SendMessage") || !r.Failed() {
		t.Errorf("report %+v: want 3 unneeded (not Claims, not Secret), sqs unchecked, failed", r)
	}
}

// A function's environment names its deployment: the parameters and the
// bucket its variables come from.
func TestDeployed(t *testing.T) {
	t.Parallel()
	tpl, err := os.ReadFile(filepath.Join("..", "..", "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := iampolicy.Deployed(tpl, "ReconcileFunction", map[string]string{"UPLOAD_PREFIX": "direct/", "MEDIA_BUCKET": "other", "NXCLOUD_TIMEOUT": "2s"}, local)
	if err != nil {
		t.Fatal(err)
	}
	if d.Parameters["UploadPrefix"] != "direct/" || d.Parameters["NxcloudTimeout"] != "2s" || d.Buckets["MediaBucket"] != "other" || local.Buckets["MediaBucket"] != bucket {
		t.Errorf("Deployed = %+v (local %+v), want UploadPrefix direct/, NxcloudTimeout 2s, MediaBucket other, local unchanged", d, local)
	}
	p, err := iampolicy.Load(tpl, d)
	if err != nil {
		t.Fatal(err)
	}
	if r := p["ReconcileFunction"]; !r.Allows("s3:ListBucketVersions", "arn:aws:s3:::other") || !r.Allows("s3:GetObjectVersion", "arn:aws:s3:::other/direct/x") {
		t.Errorf("the deployment's policy %+v does not follow its environment", r)
	}
	if _, err := iampolicy.Deployed(tpl, "NoSuchFunction", nil, local); err == nil {
		t.Error("Deployed of a function the template lacks: no error")
	}
}
