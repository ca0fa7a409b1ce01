package upload

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// s3Status returns the HTTP status of an S3 error answer, 0 when there was
// no answer.
func s3Status(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// s3Code returns the S3 error code (NoSuchKey, PreconditionFailed, ...).
func s3Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// IsNotFound reports an object, version or bucket that does not exist (HEAD
// answers a bare 404 NotFound, GET a NoSuchKey or NoSuchVersion).
func IsNotFound(err error) bool {
	switch s3Code(err) {
	case "NoSuchKey", "NotFound", "NoSuchVersion", "NoSuchBucket":
		return true
	}
	return s3Status(err) == http.StatusNotFound
}

// isPreconditionFailed reports a failed If-Match or If-None-Match (412).
func isPreconditionFailed(err error) bool {
	return s3Code(err) == "PreconditionFailed" || s3Status(err) == http.StatusPreconditionFailed
}

// isConflict reports a conditional write that raced another one (409
// ConditionalRequestConflict): try again.
func isConflict(err error) bool {
	return s3Code(err) == "ConditionalRequestConflict" || s3Status(err) == http.StatusConflict
}

// s3Error wraps the error of the S3 operation op. Access denied names the
// permissions the function's role lacks, so the operator knows what to grant.
func s3Error(op, permissions string, err error) error {
	if s3Code(err) == "AccessDenied" || s3Status(err) == http.StatusForbidden {
		return fmt.Errorf("%s: access denied: the function's role needs %s on this object (and s3:ListBucket on the bucket): %w", op, permissions, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
