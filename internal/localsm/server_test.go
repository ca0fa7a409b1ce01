package localsm

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
)

const secretName = "nxcloud/credentials"

// newClient returns the real SDK client pointed at s, signing with static
// credentials; retries are the SDK's standard ones with no backoff delay.
func newClient(t *testing.T, s *Server, optFns ...func(*config.LoadOptions) error) *secretsmanager.Client {
	t.Helper()
	opts := append([]func(*config.LoadOptions) error{
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIDLOCAL", "local-secret", "")),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
			})
		}),
	}, optFns...)
	cfg, err := config.LoadDefaultConfig(context.Background(), opts...)
	if err != nil {
		t.Fatalf("LoadDefaultConfig: %v", err)
	}
	return secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) {
		o.BaseEndpoint = aws.String(s.URL())
	})
}

func TestGetSecretValueByNameAndARN(t *testing.T) {
	t.Parallel()
	s := NewTestServer(t)
	before := time.Now().Truncate(time.Millisecond)
	s.Put(secretName, `{"accessKey":"k","accessSecret":"v"}`)
	after := time.Now()
	c := newClient(t, s)
	arn := s.ARN(secretName)
	if !strings.HasPrefix(arn, "arn:aws:secretsmanager:us-east-1:000000000000:secret:"+secretName+"-") || len(arn) != len("arn:aws:secretsmanager:us-east-1:000000000000:secret:"+secretName+"-AbCdEf") {
		t.Fatalf("ARN = %q, want arn:aws:secretsmanager:us-east-1:000000000000:secret:%s-XXXXXX", arn, secretName)
	}

	tests := []struct{ name, id string }{
		{"name", secretName},
		{"full ARN", arn},
		{"partial ARN", strings.TrimSuffix(arn, arn[len(arn)-7:])},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := c.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(tc.id)})
			if err != nil {
				t.Fatalf("GetSecretValue(%q): %v", tc.id, err)
			}
			if got := aws.ToString(out.SecretString); got != `{"accessKey":"k","accessSecret":"v"}` {
				t.Errorf("SecretString = %q", got)
			}
			if aws.ToString(out.Name) != secretName || aws.ToString(out.ARN) != arn {
				t.Errorf("Name, ARN = %q, %q", aws.ToString(out.Name), aws.ToString(out.ARN))
			}
			if len(out.VersionStages) != 1 || out.VersionStages[0] != StageCurrent || aws.ToString(out.VersionId) == "" {
				t.Errorf("VersionId %q, VersionStages %v, want AWSCURRENT", aws.ToString(out.VersionId), out.VersionStages)
			}
			if out.CreatedDate == nil || out.CreatedDate.Before(before) || out.CreatedDate.After(after) {
				t.Errorf("CreatedDate = %v, want the time of Put (%v to %v)", out.CreatedDate, before, after)
			}
		})
	}
}

func TestPutThenGetReturnsNewVersion(t *testing.T) {
	t.Parallel()
	s := NewTestServer(t)
	s.Put(secretName, "v1")
	c := newClient(t, s)
	get := func(in *secretsmanager.GetSecretValueInput) *secretsmanager.GetSecretValueOutput {
		t.Helper()
		in.SecretId = aws.String(secretName)
		out, err := c.GetSecretValue(context.Background(), in)
		if err != nil {
			t.Fatalf("GetSecretValue: %v", err)
		}
		return out
	}
	first := get(&secretsmanager.GetSecretValueInput{})
	s.Put(secretName, "v2") // a rotation
	cur := get(&secretsmanager.GetSecretValueInput{})
	if aws.ToString(cur.SecretString) != "v2" || aws.ToString(cur.VersionId) == aws.ToString(first.VersionId) {
		t.Errorf("after Put: got %q version %q, want v2 in a new version", aws.ToString(cur.SecretString), aws.ToString(cur.VersionId))
	}
	prev := get(&secretsmanager.GetSecretValueInput{VersionStage: aws.String(StagePrevious)})
	if aws.ToString(prev.SecretString) != "v1" || aws.ToString(prev.VersionId) != aws.ToString(first.VersionId) {
		t.Errorf("AWSPREVIOUS: got %q version %q", aws.ToString(prev.SecretString), aws.ToString(prev.VersionId))
	}
	byID := get(&secretsmanager.GetSecretValueInput{VersionId: first.VersionId})
	if aws.ToString(byID.SecretString) != "v1" || len(byID.VersionStages) != 1 || byID.VersionStages[0] != StagePrevious {
		t.Errorf("by VersionId: got %q stages %v", aws.ToString(byID.SecretString), byID.VersionStages)
	}
	s.Put(secretName, "v3")
	if _, err := c.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(secretName), VersionId: first.VersionId, VersionStage: aws.String(StageCurrent),
	}); err == nil {
		t.Error("VersionId of a version that is not AWSCURRENT with VersionStage AWSCURRENT: no error")
	}
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	s := NewTestServer(t)
	s.Put(secretName, "v")
	c := newClient(t, s)
	tests := []struct {
		name    string
		in      *secretsmanager.GetSecretValueInput
		wantMsg string
	}{
		{"unknown name", &secretsmanager.GetSecretValueInput{SecretId: aws.String("nope")}, "Secrets Manager can't find the specified secret."},
		{"unknown ARN", &secretsmanager.GetSecretValueInput{SecretId: aws.String("arn:aws:secretsmanager:us-east-1:000000000000:secret:nope-AbCdEf")}, "Secrets Manager can't find the specified secret."},
		{"unknown stage", &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretName), VersionStage: aws.String("AWSPENDING")}, "Secrets Manager can't find the specified secret value for staging label: AWSPENDING"},
		{"unknown version", &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretName), VersionId: aws.String("00000000-0000-4000-8000-000000000000")}, "Secrets Manager can't find the specified secret value for VersionId: 00000000-0000-4000-8000-000000000000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { // not parallel: Calls is checked below
			_, err := c.GetSecretValue(context.Background(), tc.in)
			var nf *types.ResourceNotFoundException
			if !errors.As(err, &nf) {
				t.Fatalf("err = %v (%T), want *types.ResourceNotFoundException", err, err)
			}
			if got := aws.ToString(nf.Message); got != tc.wantMsg {
				t.Errorf("message = %q, want %q", got, tc.wantMsg)
			}
		})
	}
	if n := s.Calls(OpGetSecretValue); n != len(tests) {
		t.Errorf("Calls = %d, want %d (not found is not retried)", n, len(tests))
	}
}

func TestFaultsAreDecodedAndRetried(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		fail      int
		errType   string
		status    int
		wantErr   bool
		wantCalls int
	}{
		{"throttling retried", 2, "ThrottlingException", 400, false, 3},
		{"internal error retried", 1, "InternalServiceError", 500, false, 2},
		{"throttling exhausts retries", 5, "ThrottlingException", 400, true, 3},
		{"internal error exhausts retries", 3, "InternalServiceError", 500, true, 3},
		{"access denied not retried", 1, "AccessDeniedException", 400, true, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := NewTestServer(t)
			s.Put(secretName, "v")
			c := newClient(t, s)
			s.FailNext(tc.fail, tc.errType, tc.status)
			out, err := c.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretName)})
			if tc.wantErr {
				var ae smithy.APIError
				if !errors.As(err, &ae) || ae.ErrorCode() != tc.errType {
					t.Fatalf("err = %v, want API error %s", err, tc.errType)
				}
			} else if err != nil || aws.ToString(out.SecretString) != "v" {
				t.Fatalf("GetSecretValue: %v", err)
			}
			if n := s.Calls("secretsmanager.GetSecretValue"); n != tc.wantCalls {
				t.Errorf("Calls = %d, want %d", n, tc.wantCalls)
			}
		})
	}
}

func TestDelay(t *testing.T) {
	t.Parallel()
	s := NewTestServer(t)
	s.Put(secretName, "v")
	c := newClient(t, s)
	const d = 150 * time.Millisecond
	s.SetDelay(d)

	start := time.Now()
	if _, err := c.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretName)}); err != nil {
		t.Fatalf("GetSecretValue: %v", err)
	}
	if el := time.Since(start); el < d {
		t.Errorf("answer after %v, want at least %v", el, d)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretName)})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}

	s.SetDelay(0)
	start = time.Now()
	if _, err := c.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretName)}); err != nil {
		t.Fatalf("GetSecretValue: %v", err)
	}
	if el := time.Since(start); el >= d {
		t.Errorf("SetDelay(0): answer after %v", el)
	}
}

func TestUnsignedRequestRejected(t *testing.T) {
	t.Parallel()
	s := NewTestServer(t)
	s.Put(secretName, "v")
	c := newClient(t, s, config.WithCredentialsProvider(aws.AnonymousCredentials{}))
	_, err := c.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretName)})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "MissingAuthenticationTokenException" {
		t.Errorf("unsigned SDK call: err = %v, want MissingAuthenticationTokenException", err)
	}
}

// TestWireFormat checks the raw HTTP exchange against the AWS JSON 1.1
// protocol, without the SDK.
func TestWireFormat(t *testing.T) {
	t.Parallel()
	s := NewTestServer(t)
	s.Put(secretName, "v")
	const auth = "AWS4-HMAC-SHA256 Credential=AKIDLOCAL/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=abc"
	tests := []struct {
		name, method, target, ctype, auth, body string
		wantStatus                              int
		wantType                                string
		wantMessage                             string
	}{
		{"ok", "POST", "secretsmanager.GetSecretValue", contentType, auth, `{"SecretId":"` + secretName + `"}`, 200, "", ""},
		{"not found", "POST", "secretsmanager.GetSecretValue", contentType, auth, `{"SecretId":"x"}`, 400, "ResourceNotFoundException", "Secrets Manager can't find the specified secret."},
		{"unknown operation", "POST", "secretsmanager.RotateEverything", contentType, auth, `{}`, 400, "UnknownOperationException", ""},
		{"other service", "POST", "kms.Decrypt", contentType, auth, `{}`, 400, "UnknownOperationException", ""},
		{"no auth", "POST", "secretsmanager.GetSecretValue", contentType, "", `{"SecretId":"x"}`, 400, "MissingAuthenticationTokenException", "Missing Authentication Token"},
		{"not sigv4", "POST", "secretsmanager.GetSecretValue", contentType, "Bearer abc", `{"SecretId":"x"}`, 400, "IncompleteSignatureException", ""},
		{"incomplete sigv4", "POST", "secretsmanager.GetSecretValue", contentType, "AWS4-HMAC-SHA256 Credential=x", `{"SecretId":"x"}`, 400, "IncompleteSignatureException", ""},
		{"not JSON", "POST", "secretsmanager.GetSecretValue", contentType, auth, `SecretId=x`, 400, "SerializationException", ""},
		{"wrong content type", "POST", "secretsmanager.GetSecretValue", "application/json", auth, `{"SecretId":"x"}`, 400, "SerializationException", ""},
		{"missing SecretId", "POST", "secretsmanager.GetSecretValue", contentType, auth, `{}`, 400, "InvalidParameterException", ""},
		{"GET", "GET", "", "", auth, ``, 405, "UnknownOperationException", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest(tc.method, s.URL()+"/", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range map[string]string{"X-Amz-Target": tc.target, "Content-Type": tc.ctype, "Authorization": tc.auth} {
				if v != "" {
					req.Header.Set(k, v)
				}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, tc.wantStatus, b)
			}
			if ct := resp.Header.Get("Content-Type"); ct != contentType {
				t.Errorf("Content-Type %q", ct)
			}
			if resp.Header.Get("X-Amzn-RequestId") == "" {
				t.Error("no X-Amzn-RequestId")
			}
			var body map[string]any
			if err := json.Unmarshal(b, &body); err != nil {
				t.Fatalf("body is not JSON: %s", b)
			}
			if tc.wantType == "" {
				if _, ok := body["CreatedDate"].(float64); !ok {
					t.Errorf("CreatedDate is not an epoch-seconds number: %s", b)
				}
				return
			}
			if got := resp.Header.Get("X-Amzn-ErrorType"); got != tc.wantType {
				t.Errorf("X-Amzn-ErrorType = %q, want %q", got, tc.wantType)
			}
			if body["__type"] != tc.wantType {
				t.Errorf("__type = %v, want %s", body["__type"], tc.wantType)
			}
			if tc.wantMessage != "" && body["message"] != tc.wantMessage {
				t.Errorf("message = %v, want %q", body["message"], tc.wantMessage)
			}
		})
	}
}

func TestStartTwiceAndClose(t *testing.T) {
	t.Parallel()
	s := New()
	url, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if url != s.URL() || !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Errorf("Start = %q, URL() = %q", url, s.URL())
	}
	if _, err := s.Start("127.0.0.1:0"); err == nil {
		t.Error("second Start: no error")
	}
	s.Close()
	s.Close()
	if _, err := http.Post(url, contentType, strings.NewReader("{}")); err == nil {
		t.Error("server still answers after Close")
	}
}
