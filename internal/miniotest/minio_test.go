package miniotest_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/miniotest"
)

func TestMain(m *testing.M) { os.Exit(miniotest.Main(m)) }

// TestMissingBinarySaysMakeMinio: on a machine without MinIO the error
// says how to get it.
func TestMissingBinarySaysMakeMinio(t *testing.T) {
	t.Setenv("MINIO_BIN", filepath.Join(t.TempDir(), "no-minio"))
	if _, err := miniotest.FindBinary(); !errors.Is(err, miniotest.ErrBinaryNotFound) || !strings.Contains(err.Error(), "make minio") {
		t.Fatalf("FindBinary = %v; want ErrBinaryNotFound telling to run make minio", err)
	}
}

// TestAddUser: a user MinIO creates through its admin API can do what its
// policy allows and nothing else; a user without a policy can do nothing.
func TestAddUser(t *testing.T) {
	t.Parallel()
	m := miniotest.Shared(t)
	bucket := m.NewBucket(t, false)
	ctx := t.Context()
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject","s3:GetObject"],"Resource":["arn:aws:s3:::` + bucket + `/in/*"]}]}`
	writer, err := m.AddUser(ctx, "test-writer-"+bucket, []byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	nobody, err := m.AddUser(ctx, "test-nobody-"+bucket, nil)
	if err != nil {
		t.Fatal(err)
	}
	if writer.AccessKey == nobody.AccessKey || len(writer.AccessKey) != 20 || len(writer.SecretKey) != 40 {
		t.Fatalf("credentials %+v and %+v, want two distinct AWS-like key pairs", writer, nobody)
	}
	as := func(c miniotest.Credentials) *s3.Client {
		return m.Client(func(o *s3.Options) {
			o.Credentials = credentials.NewStaticCredentialsProvider(c.AccessKey, c.SecretKey, "")
		})
	}
	put := func(c *s3.Client, key string) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader("x")})
		return err
	}
	for _, tc := range []struct {
		name    string
		c       *s3.Client
		key     string
		allowed bool
	}{
		{"writer under in/", as(writer), "in/a", true},
		{"writer elsewhere", as(writer), "out/a", false},
		{"nobody", as(nobody), "in/b", false},
	} {
		err := put(tc.c, tc.key)
		var ae smithy.APIError
		switch {
		case tc.allowed && err != nil:
			t.Errorf("%s: %v, want allowed", tc.name, err)
		case !tc.allowed && (!errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied"):
			t.Errorf("%s: %v, want AccessDenied", tc.name, err)
		}
	}
}
