package upload

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3Options returns the S3 client options the upload function runs with;
// pathStyle is for a local S3 endpoint (AWS_ENDPOINT_URL_S3 or
// AWS_ENDPOINT_URL set), whose buckets are not DNS names.
//
// Response checksums stay validated whenever S3 sends one (the SDK default,
// WhenSupported): the SDK checks them on the fly while the body streams to
// NXCloud, nothing is buffered, and a mismatch fails the last Read, which
// aborts the multipart request before its closing boundary, so NXCloud never
// receives a corrupt file as complete. The SDK's warning for objects without
// a checksum (multipart uploads, older objects) is silenced: it is not an
// error and would be a non-JSON line in the function's log.
func S3Options(pathStyle bool) func(*s3.Options) {
	return func(o *s3.Options) {
		o.UsePathStyle = pathStyle
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenSupported
		o.DisableLogOutputChecksumValidationSkipped = true
	}
}
