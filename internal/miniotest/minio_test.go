package miniotest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/miniotest"
)

func TestRunServesS3AndCloseStops(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := miniotest.Run(ctx, miniotest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.Endpoint, "http://127.0.0.1:") {
		t.Errorf("Endpoint = %q; want a loopback URL", s.Endpoint)
	}
	bucket := miniotest.BucketName(t.Name())
	if err := s.CreateBucket(ctx, bucket, true); err != nil {
		t.Fatal(err)
	}
	c := s.Client()
	v, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(bucket)})
	if err != nil || v.Status != types.BucketVersioningStatusEnabled {
		t.Fatalf("versioning = %v, %v; want Enabled", v, err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("a b/c.txt"), Body: strings.NewReader("hello")}); err != nil {
		t.Fatal(err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("a b/c.txt")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(b) != "hello" {
		t.Fatalf("read %q; want hello", b)
	}

	dir := s.DataDir
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := http.Get(s.Endpoint + "/minio/health/live"); err == nil {
		t.Error("the server still answers after Close")
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary data directory %s left behind (%v)", dir, err)
	}
}

func TestRunKeepsGivenDataDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := miniotest.Run(context.Background(), miniotest.Options{DataDir: dir, AccessKey: "localuser", SecretKey: "localsecret123"})
	if err != nil {
		t.Fatal(err)
	}
	if s.AccessKey != "localuser" || s.SecretKey != "localsecret123" {
		t.Errorf("credentials = %s/%s; want the given ones", s.AccessKey, s.SecretKey)
	}
	if err := s.CreateBucket(context.Background(), "kept", false); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "kept")); err != nil {
		t.Errorf("bucket directory not kept in %s: %v", dir, err)
	}
}

func TestMissingBinarySaysMakeMinio(t *testing.T) {
	t.Setenv(miniotest.EnvBinary, filepath.Join(t.TempDir(), "no-minio"))
	_, err := miniotest.Run(context.Background(), miniotest.Options{})
	if !errors.Is(err, miniotest.ErrBinaryNotFound) || !strings.Contains(err.Error(), "make minio") {
		t.Fatalf("Run = %v; want ErrBinaryNotFound telling to run make minio", err)
	}
}

func TestStartAndShared(t *testing.T) {
	t.Parallel()
	s := miniotest.Start(t)
	if resp, err := http.Get(s.Endpoint + "/minio/health/live"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("health: %v", err)
	}
	a, b := miniotest.Shared(t), miniotest.Shared(t)
	if a != b || a == s {
		t.Fatal("Shared must return one server, distinct from Start's")
	}
	name := a.NewBucket(t)
	if _, err := a.Client().HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	miniotest.StopShared()
}

func TestBucketName(t *testing.T) {
	t.Parallel()
	for _, hint := range []string{"TestX/sub case", "", strings.Repeat("Ab_", 40), "---"} {
		n := miniotest.BucketName(hint)
		if len(n) < 3 || len(n) > 63 || strings.Trim(n, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" || strings.HasPrefix(n, "-") || strings.Contains(n, "--") {
			t.Errorf("BucketName(%q) = %q: not a valid bucket name", hint, n)
		}
	}
	if a, b := miniotest.BucketName("x"), miniotest.BucketName("x"); a == b {
		t.Error("BucketName is not unique")
	}
}
