package localsm_test

import (
	"context"
	"errors"
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
