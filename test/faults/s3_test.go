package faults_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart/lambdarttest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/miniotest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/ledger"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

// s3Case is one S3 fault against the upload function.
type s3Case struct {
	name    string
	timeout time.Duration
	// setup prepares the fault once the object is stored; it returns the
	// function's settings and a heal run after each failed attempt.
	setup func(t *testing.T, b *bucketWorld, o *object) (uploadOpts, func(n int))
	// want: attempts, final status tag, NXCloud uploads, a log line part
	// (HEAD answers have no body: S3 errors on HeadObject show as their
	// status, e.g. 403 Forbidden for AccessDenied).
	wantAttempts int
	wantStatus   string
	wantUploads  int
	wantLog      string
}

// restrictedCredentials returns MinIO temporary credentials (STS
// AssumeRole with a session policy) that may do everything on the bucket
// except s3:GetObject, which HeadObject and GetObject need.
func restrictedCredentials(t *testing.T, b *bucketWorld) []string {
	t.Helper()
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":[`+
		`"s3:ListBucket","s3:GetObjectTagging","s3:GetObjectVersionTagging","s3:PutObjectTagging",`+
		`"s3:PutObjectVersionTagging","s3:PutObject","s3:DeleteObject","s3:DeleteObjectVersion"],`+
		`"Resource":["arn:aws:s3:::%[1]s","arn:aws:s3:::%[1]s/*"]}]}`, b.bucket)
	cfg := b.minio.AWSConfig()
	out, err := sts.NewFromConfig(cfg).AssumeRole(context.Background(), &sts.AssumeRoleInput{
		RoleArn:         aws.String("arn:aws:iam::000000000000:role/faults-no-getobject"),
		RoleSessionName: aws.String("faults"),
		Policy:          aws.String(policy),
		DurationSeconds: aws.Int32(900),
	})
	if err != nil {
		t.Fatalf("MinIO AssumeRole: %v", err)
	}
	c := out.Credentials
	b.forbid(aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken))
	// The credentials really lack s3:GetObject.
	cli := s3.NewFromConfig(aws.Config{Region: cfg.Region, BaseEndpoint: cfg.BaseEndpoint, Credentials: aws.CredentialsProviderFunc(
		func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: aws.ToString(c.AccessKeyId), SecretAccessKey: aws.ToString(c.SecretAccessKey), SessionToken: aws.ToString(c.SessionToken)}, nil
		})}, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := cli.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(b.bucket), Key: aws.String("templates/none")}); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("the restricted credentials can read objects (%v): the session policy is not enforced", err)
	}
	return []string{
		"AWS_ACCESS_KEY_ID=" + aws.ToString(c.AccessKeyId),
		"AWS_SECRET_ACCESS_KEY=" + aws.ToString(c.SecretAccessKey),
		"AWS_SESSION_TOKEN=" + aws.ToString(c.SessionToken),
	}
}

// TestS3Faults runs the upload function against S3 faults: objects gone or
// replaced before processing, access denied, throttling and a slow S3.
func TestS3Faults(t *testing.T) {
	t.Parallel()
	tests := []s3Case{
		{name: "object deleted between event and processing", setup: func(t *testing.T, b *bucketWorld, o *object) (uploadOpts, func(int)) {
			if _, err := b.s3.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(o.key)}); err != nil {
				t.Fatal(err)
			}
			o.version = "" // the tags of the delete marker cannot be read
			return uploadOpts{}, nil
		}, wantAttempts: 1, wantLog: "object no longer exists"},
		{name: "object version permanently deleted", setup: func(t *testing.T, b *bucketWorld, o *object) (uploadOpts, func(int)) {
			if _, err := b.s3.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(o.key), VersionId: aws.String(o.version)}); err != nil {
				t.Fatal(err)
			}
			o.version = ""
			return uploadOpts{}, nil
		}, wantAttempts: 1, wantLog: "object no longer exists"},
		{name: "object overwritten between event and processing", setup: func(t *testing.T, b *bucketWorld, o *object) (uploadOpts, func(int)) {
			b.put(strings.TrimPrefix(o.key, prefix+phone+"/"), 77)
			return uploadOpts{}, nil
		}, wantAttempts: 1, wantStatus: ledger.Superseded, wantLog: "overwritten since the event"},
		{name: "event names a bucket that does not exist", setup: func(t *testing.T, b *bucketWorld, o *object) (uploadOpts, func(int)) {
			gone := "no-such-bucket-" + randomHex(4)
			o.event = []byte(strings.ReplaceAll(string(o.event), b.bucket, gone))
			// A stack whose bucket was deleted: its policy names that bucket
			// (S3 answers NoSuchBucket; MinIO only when the policy allows it).
			return uploadOpts{env: []string{"MEDIA_BUCKET=" + gone}}, nil
		}, wantAttempts: 1, wantLog: "object no longer exists"},
		{name: "access denied: role without s3:GetObject", setup: func(t *testing.T, b *bucketWorld, o *object) (uploadOpts, func(int)) {
			return uploadOpts{env: restrictedCredentials(t, b)}, nil
		}, wantAttempts: 3, wantLog: "StatusCode: 403"},
		{name: "access denied: wrong S3 secret key", setup: func(t *testing.T, b *bucketWorld, o *object) (uploadOpts, func(int)) {
			return uploadOpts{env: []string{"AWS_SECRET_ACCESS_KEY=not-the-minio-secret-key"}}, nil
		}, wantAttempts: 3, wantLog: "StatusCode: 403"},
		// The SDK waits up to 2^n seconds (jittered) before its retry n:
		// a generous timeout keeps the two retries inside one invocation.
		{name: "throttled: 503 SlowDown for the first 2 requests", timeout: 12 * time.Second, setup: func(t *testing.T, b *bucketWorld, o *object) (uploadOpts, func(int)) {
			p := newSlowDownProxy(t, b.minio.Endpoint, 2)
			t.Cleanup(func() {
				if p.throttled.Load() != 2 {
					t.Errorf("the proxy throttled %d requests, want 2", p.throttled.Load())
				}
			})
			return uploadOpts{s3URL: p.url}, nil
		}, wantAttempts: 1, wantStatus: uploaded, wantUploads: 1},
		// The first three requests (HeadObject, the record and the file's
		// GetObject, sent at once) each get all three of the SDK's tries
		// throttled.
		{name: "throttled past the SDK's retries: 503 SlowDown for the first 9 requests", timeout: 12 * time.Second, setup: func(t *testing.T, b *bucketWorld, o *object) (uploadOpts, func(int)) {
			p := newSlowDownProxy(t, b.minio.Endpoint, 9)
			return uploadOpts{s3URL: p.url}, nil
		}, wantAttempts: 2, wantStatus: uploaded, wantUploads: 1, wantLog: "StatusCode: 503"},
		{name: "S3 slower than the Lambda deadline", timeout: 4 * time.Second, setup: func(t *testing.T, b *bucketWorld, o *object) (uploadOpts, func(int)) {
			p := newSlowDownProxy(t, b.minio.Endpoint, 0)
			p.delay.Store(int64(20 * time.Second))
			return uploadOpts{s3URL: p.url}, func(int) { p.delay.Store(0) }
		}, wantAttempts: 2, wantStatus: uploaded, wantUploads: 1, wantLog: "deadline exceeded"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newBucketWorld(t)
			obj := b.put("menu-"+randomHex(3)+".pdf", 3000)
			o, heal := tc.setup(t, b, &obj)
			o.timeout = tc.timeout
			if o.timeout == 0 {
				o.timeout = 5 * time.Second
			}
			rt := b.startUpload(o)
			attempts := deliver(t, rt, obj.event, o.timeout, func(n int) {
				if heal != nil {
					heal(n)
				}
			})
			if len(attempts) != tc.wantAttempts {
				t.Errorf("%d attempts, want %d", len(attempts), tc.wantAttempts)
			}
			tags := map[string]string{}
			if obj.version != "" {
				tags = b.checkInvariants(obj, attempts)
			} else if c := miniotest.Keys(b.t, b.s3, b.bucket, claimPrefix); len(c) > 0 {
				t.Errorf("claims left behind: %v", c)
			}
			if got := tags[ledger.TagStatus]; got != tc.wantStatus {
				t.Errorf("tag %s = %q, want %q", ledger.TagStatus, got, tc.wantStatus)
			}
			uploads := len(b.nx.Uploads())
			if uploads != tc.wantUploads {
				t.Errorf("NXCloud stored %d files, want %d", uploads, tc.wantUploads)
			}
			if tc.wantUploads == 0 && len(b.nx.Calls(nxcloud.ActionUploadTemplateFile)) > 0 {
				t.Errorf("NXCloud was called")
			}
			if tc.wantLog != "" {
				waitForOutput(t, b.out, tc.wantLog)
			}
			recordOutcome("Upload (S3)", tc.name, summary(attempts, tags, uploads))
		})
	}
}

// waitForOutput waits a little for want to reach the captured output (it
// comes through a pipe).
func waitForOutput(t *testing.T, out *lambdarttest.Buffer, want string) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); !strings.Contains(out.String(), want); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("the function's output does not mention %q:\n%s", want, out.String())
			return
		}
	}
}
