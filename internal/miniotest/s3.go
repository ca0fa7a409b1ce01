package miniotest

import (
	"context"
	"crypto/rand"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// AWSConfig returns an SDK configuration that reaches the server: its root
// credentials, region us-east-1, base endpoint the server.
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
	return s3.NewFromConfig(s.AWSConfig(), append([]func(*s3.Options){func(o *s3.Options) { o.UsePathStyle = true }}, optFns...)...)
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

// NewBucket creates a bucket, versioned or not, with a unique name derived
// from the test's name, and returns the name.
func (s *Server) NewBucket(t testing.TB, versioned bool) string {
	t.Helper()
	base := strings.Trim(notBucketChars.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	name := strings.TrimLeft(fmt.Sprintf("%s-%x", strings.TrimRight(base[:min(len(base), 45)], "-"), rnd), "-")
	if err := s.CreateBucket(t.Context(), name, versioned); err != nil {
		t.Fatalf("miniotest: %v", err)
	}
	return name
}

// notBucketChars are the runs of characters a bucket name cannot hold.
var notBucketChars = regexp.MustCompile(`[^a-z0-9]+`)

// Tags returns the tags of a version of an object ("" for the current one);
// a failure fails the test.
func Tags(t testing.TB, cli *s3.Client, bucket, key, version string) map[string]string {
	t.Helper()
	in := &s3.GetObjectTaggingInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if version != "" {
		in.VersionId = aws.String(version)
	}
	out, err := cli.GetObjectTagging(context.Background(), in)
	if err != nil {
		t.Fatalf("tags of %s: %v", key, err)
	}
	tags := map[string]string{}
	for _, tg := range out.TagSet {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	return tags
}

// Keys lists the keys under prefix (current versions, up to 1,000); a
// failure fails the test.
func Keys(t testing.TB, cli *s3.Client, bucket, prefix string) []string {
	t.Helper()
	out, err := cli.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatalf("list %s: %v", prefix, err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}
