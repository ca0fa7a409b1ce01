package miniotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// AWSConfig returns an SDK configuration that reaches the server: static root
// credentials, region us-east-1, base endpoint set to the server.
func (s *Server) AWSConfig() aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		BaseEndpoint: aws.String(s.Endpoint),
	}
}

// Client returns an S3 client for the server, with path-style addressing as
// any local S3 endpoint needs. optFns run after the defaults.
func (s *Server) Client(optFns ...func(*s3.Options)) *s3.Client {
	fns := append([]func(*s3.Options){func(o *s3.Options) { o.UsePathStyle = true }}, optFns...)
	return s3.NewFromConfig(s.AWSConfig(), fns...)
}

// CreateBucket creates the bucket name, with versioning enabled when
// versioned is true.
func (s *Server) CreateBucket(ctx context.Context, name string, versioned bool) error {
	c := s.Client()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	if !versioned {
		return nil
	}
	_, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
		Bucket:                  aws.String(name),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
	})
	if err != nil {
		return fmt.Errorf("enable versioning on bucket %s: %w", name, err)
	}
	return nil
}

// NewBucket creates a versioned bucket with a unique name derived from the
// test's name and returns the name. It fails the test on error.
func (s *Server) NewBucket(t interface {
	TB
	Name() string
}) string {
	t.Helper()
	name := BucketName(t.Name())
	if err := s.CreateBucket(context.Background(), name, true); err != nil {
		t.Fatalf("miniotest: %v", err)
	}
	return name
}

// BucketName turns hint into a valid, unique bucket name (3 to 63 lower-case
// letters, digits and hyphens).
func BucketName(hint string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(hint) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			if s := b.String(); s != "" && !strings.HasSuffix(s, "-") {
				b.WriteByte('-')
			}
		}
	}
	base := strings.Trim(b.String(), "-")
	if len(base) > 45 {
		base = strings.Trim(base[:45], "-")
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	if base == "" {
		base = "bucket"
	}
	return base + "-" + hex.EncodeToString(rnd[:])
}
