package ledger

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// S3Error is a failed S3 request of the bundle: the operation, the
// permissions it needs (named when S3 denied access) and S3's error.
type S3Error struct {
	Op          string // e.g. "write record nxcloud-records/templates/a.pdf/v1"
	Permissions string // e.g. "s3:PutObject on nxcloud-records/*"
	Err         error
}

func (e *S3Error) Error() string {
	if e.AccessDenied() {
		return fmt.Sprintf("%s: access denied: the function's role needs %s (and s3:ListBucket on the bucket): %v", e.Op, e.Permissions, e.Err)
	}
	return e.Op + ": " + e.Err.Error()
}

func (e *S3Error) Unwrap() error { return e.Err }

// AccessDenied reports S3 refusing the request for lack of permissions.
func (e *S3Error) AccessDenied() bool {
	return s3Code(e.Err) == "AccessDenied" || s3Status(e.Err) == http.StatusForbidden
}

// Throttled reports S3 asking to slow down (503 SlowDown, 429).
func (e *S3Error) Throttled() bool {
	code, status := s3Code(e.Err), s3Status(e.Err)
	return code == "SlowDown" || status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests
}

// s3Err wraps err as the failure of op.
func s3Err(op, permissions string, err error) error {
	return &S3Error{Op: op, Permissions: permissions, Err: err}
}

// S3Err wraps the error of an S3 request the caller made for one object
// version (HeadObject, GetObject of the file) as an *S3Error.
func S3Err(op, permissions string, err error) error { return s3Err(op, permissions, err) }

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

// IsPreconditionFailed reports a failed If-Match or If-None-Match (412).
func IsPreconditionFailed(err error) bool {
	return s3Code(err) == "PreconditionFailed" || s3Status(err) == http.StatusPreconditionFailed
}

// IsConflict reports a conditional write that raced another one (409
// ConditionalRequestConflict): try again.
func IsConflict(err error) bool {
	return s3Code(err) == "ConditionalRequestConflict" || s3Status(err) == http.StatusConflict
}
