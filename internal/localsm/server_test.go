package localsm_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localsm"
)

// TestErrorsAsTheSDKDecodesThem pins the error shapes the bundle relies on
// through the real SDK client: a missing secret is the typed
// ResourceNotFoundException with AWS's message, throttling and internal
// errors are retried, other errors are not, an unsigned call is refused.
// pkg/secret's tests drive the rest (values, rotation, delays) through it.
func TestErrorsAsTheSDKDecodesThem(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, secretID, errType, wantErr string
		fail, status, wantCalls          int
		anonymous                        bool
	}{
		{name: "found", secretID: "s", wantCalls: 1},
		{name: "not found", secretID: "missing", wantErr: "ResourceNotFoundException", wantCalls: 1},
		{name: "throttling retried", secretID: "s", fail: 2, errType: "ThrottlingException", status: 400, wantCalls: 3},
		{name: "internal error exhausts the retries", secretID: "s", fail: 3, errType: "InternalServiceError", status: 500, wantErr: "InternalServiceError", wantCalls: 3},
		{name: "access denied not retried", secretID: "s", fail: 1, errType: "AccessDeniedException", status: 400, wantErr: "AccessDeniedException", wantCalls: 1},
		{name: "unsigned", secretID: "s", wantErr: "MissingAuthenticationTokenException", anonymous: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := localsm.NewTestServer(t)
			s.Put("s", "v")
			s.FailNext(tc.fail, tc.errType, tc.status)
			var creds aws.CredentialsProvider = credentials.NewStaticCredentialsProvider("AKIDLOCAL", "local-secret", "")
			if tc.anonymous {
				creds = aws.AnonymousCredentials{}
			}
			c := secretsmanager.New(secretsmanager.Options{
				Region: "us-east-1", Credentials: creds, BaseEndpoint: aws.String(s.URL()),
				Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
					o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
				}),
			})
			out, err := c.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(tc.secretID)})
			var ae smithy.APIError
			switch {
			case tc.wantErr == "":
				if err != nil || aws.ToString(out.SecretString) != "v" || aws.ToString(out.ARN) != s.ARN("s") || out.CreatedDate == nil {
					t.Fatalf("GetSecretValue = %+v, %v; want the value, its ARN and date", out, err)
				}
			case !errors.As(err, &ae) || ae.ErrorCode() != tc.wantErr:
				t.Fatalf("err = %v, want the API error %s", err, tc.wantErr)
			}
			var nf *types.ResourceNotFoundException
			if tc.name == "not found" && (!errors.As(err, &nf) || aws.ToString(nf.Message) != "Secrets Manager can't find the specified secret.") {
				t.Errorf("err = %v, want *types.ResourceNotFoundException with AWS's message", err)
			}
			if n := s.Calls(localsm.OpGetSecretValue); n != tc.wantCalls {
				t.Errorf("Calls = %d, want %d", n, tc.wantCalls)
			}
		})
	}
}

// client is an SDK client of s signing with the access key id ak.
func client(s *localsm.Server, ak string) *secretsmanager.Client {
	return secretsmanager.New(secretsmanager.Options{
		Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(ak, "local-secret", ""), BaseEndpoint: aws.String(s.URL()),
	})
}

// TestPutSecretValue: a rotation as the SDK sends it becomes the current
// value, keeps the ARN, gets a new version (the client token when given,
// and the same token again changes nothing); a missing secret, both or
// neither value are AWS's errors.
func TestPutSecretValue(t *testing.T) {
	t.Parallel()
	s := localsm.NewTestServer(t)
	s.Put("nxcloud/local", `{"accessKey":"old","accessSecret":"old"}`)
	c, ctx := client(s, "AKIDOPERATOR"), t.Context()
	before, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("nxcloud/local")})
	if err != nil {
		t.Fatal(err)
	}
	const rotated = `{"accessKey":"new","accessSecret":"new"}`
	out, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: before.ARN, SecretString: aws.String(rotated),
		ClientRequestToken: aws.String("6a0c4a40-0000-4000-8000-000000000001")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.ARN) != aws.ToString(before.ARN) || aws.ToString(out.Name) != "nxcloud/local" ||
		aws.ToString(out.VersionId) != "6a0c4a40-0000-4000-8000-000000000001" || len(out.VersionStages) != 1 || out.VersionStages[0] != "AWSCURRENT" {
		t.Errorf("PutSecretValue = %+v, want the secret's ARN and name, the token as version, AWSCURRENT", out)
	}
	after, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("nxcloud/local")})
	if err != nil || aws.ToString(after.SecretString) != rotated || aws.ToString(after.VersionId) != aws.ToString(out.VersionId) {
		t.Fatalf("after the rotation GetSecretValue = %+v, %v; want the new value and version", after, err)
	}
	again, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("nxcloud/local"), SecretString: aws.String(rotated),
		ClientRequestToken: out.VersionId})
	if err != nil || aws.ToString(again.VersionId) != aws.ToString(out.VersionId) {
		t.Errorf("the same token again = %+v, %v; want the same version", again, err)
	}
	for _, tc := range []struct {
		name string
		in   *secretsmanager.PutSecretValueInput
		want string
	}{
		{"missing secret", &secretsmanager.PutSecretValueInput{SecretId: aws.String("nope"), SecretString: aws.String("x")}, "ResourceNotFoundException"},
		{"no value", &secretsmanager.PutSecretValueInput{SecretId: aws.String("nxcloud/local")}, "InvalidParameterException"},
		{"both values", &secretsmanager.PutSecretValueInput{SecretId: aws.String("nxcloud/local"), SecretString: aws.String("x"), SecretBinary: []byte("x")}, "InvalidParameterException"},
		{"the current version's token with another value", &secretsmanager.PutSecretValueInput{SecretId: aws.String("nxcloud/local"),
			SecretString: aws.String("other"), ClientRequestToken: out.VersionId}, "ResourceExistsException"},
	} {
		var ae smithy.APIError
		if _, err := c.PutSecretValue(ctx, tc.in); !errors.As(err, &ae) || ae.ErrorCode() != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
		}
	}
	if got, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("nxcloud/local")}); err != nil || aws.ToString(got.SecretString) != rotated {
		t.Errorf("after refused calls: %+v, %v; want the rotated value still", got, err)
	}
}

// TestAuthorizer: each caller, known by the access key id of its
// signature, gets what the authorizer allows, the rest AccessDenied naming
// the caller, the action and the secret; a missing secret the caller may
// not read is AccessDenied too, as in AWS.
func TestAuthorizer(t *testing.T) {
	t.Parallel()
	s := localsm.NewTestServer(t)
	s.Put("mine", "m")
	s.Put("theirs", "t")
	mine := s.ARN("mine")
	s.SetAuthorizer(func(key, action, resource string) bool {
		return key == "AKIDOPERATOR" || key == "AKIDFUNCTION" && action == "secretsmanager:GetSecretValue" && resource == mine
	})
	ctx := t.Context()
	for _, tc := range []struct {
		key, secret string
		put         bool
		want        string // error code, "" for allowed
	}{
		{"AKIDFUNCTION", "mine", false, ""},
		{"AKIDFUNCTION", mine, false, ""},
		{"AKIDFUNCTION", "theirs", false, "AccessDeniedException"},
		{"AKIDFUNCTION", "missing", false, "AccessDeniedException"},
		{"AKIDFUNCTION", "mine", true, "AccessDeniedException"},
		{"AKIDOPERATOR", "theirs", true, ""},
		{"AKIDOPERATOR", "missing", false, "ResourceNotFoundException"},
	} {
		var err error
		if tc.put {
			_, err = client(s, tc.key).PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(tc.secret), SecretString: aws.String("v")})
		} else {
			_, err = client(s, tc.key).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(tc.secret)})
		}
		var ae smithy.APIError
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s put=%v %s: %v, want allowed", tc.key, tc.put, tc.secret, err)
		case tc.want != "" && (!errors.As(err, &ae) || ae.ErrorCode() != tc.want):
			t.Errorf("%s put=%v %s: %v, want %s", tc.key, tc.put, tc.secret, err, tc.want)
		case tc.want == "AccessDeniedException" && !strings.Contains(ae.ErrorMessage(), tc.key):
			t.Errorf("the refusal %q does not name the caller %s", ae.ErrorMessage(), tc.key)
		}
	}
}

// TestAWSCLI rotates a secret with the aws CLI (v1 or v2) as the README
// tells operators to, and reads it back with it: the CLI's own request
// shape (its client token, its headers) against the local endpoint.
func TestAWSCLI(t *testing.T) {
	t.Parallel()
	cli, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("the aws CLI is not installed: the SDK's requests are tested, the CLI's are not")
	}
	s := localsm.NewTestServer(t)
	s.Put("nxcloud/local", `{"accessKey":"REPLACE_ME","accessSecret":"REPLACE_ME"}`)
	awsCLI := func(args ...string) []byte {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), cli, append([]string{"--endpoint-url", s.URL(), "--output", "json"}, args...)...)
		// The README's shell: keys and a region in the environment, no profile.
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "AWS_ACCESS_KEY_ID=AKIDOPERATOR",
			"AWS_SECRET_ACCESS_KEY=operator-secret", "AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE=" + os.DevNull,
			"AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aws %v: %v\n%s", args, err, out)
		}
		return out
	}
	const rotated = `{"accessKey":"AKcli","accessSecret":"cli-secret"}`
	var put struct {
		ARN, Name string
		VersionID string `json:"VersionId"`
	}
	if err := json.Unmarshal(awsCLI("secretsmanager", "put-secret-value", "--secret-id", "nxcloud/local", "--secret-string", rotated), &put); err != nil ||
		put.ARN != s.ARN("nxcloud/local") || put.Name != "nxcloud/local" || put.VersionID == "" {
		t.Fatalf("put-secret-value answered %+v (%v)", put, err)
	}
	var got struct {
		SecretString string
		VersionID    string `json:"VersionId"`
	}
	if err := json.Unmarshal(awsCLI("secretsmanager", "get-secret-value", "--secret-id", put.ARN), &got); err != nil ||
		got.SecretString != rotated || got.VersionID != put.VersionID {
		t.Errorf("get-secret-value answered %+v (%v), want %s in version %s", got, err, rotated, put.VersionID)
	}
}

// An operation the emulator does not implement says which it does.
func TestUnknownOperation(t *testing.T) {
	t.Parallel()
	s := localsm.NewTestServer(t)
	_, err := client(s, "AKID").ListSecrets(t.Context(), &secretsmanager.ListSecretsInput{})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "UnknownOperationException" || !strings.Contains(ae.ErrorMessage(), "PutSecretValue") {
		t.Errorf("ListSecrets: %v, want UnknownOperationException naming what is implemented", err)
	}
}
