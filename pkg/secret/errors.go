package secret

import (
	"errors"
	"fmt"

	"github.com/aws/smithy-go"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

// secretShape is the expected SecretString, quoted in every MalformedError so
// that the operator knows what to store.
const secretShape = `{"accessKey": "...", "accessSecret": "..."}`

// Placeholder is the value template.yaml stores in a secret it creates: a
// field that still holds it means the secret is not configured.
const Placeholder = "REPLACE_ME"

// Names of the fields of the secret's JSON value.
const (
	FieldAccessKey    = "accessKey"
	FieldAccessSecret = "accessSecret"
)

// MalformedError reports a secret whose value is not the expected JSON
// object. It is a configuration problem: retrying does not help until the
// secret is fixed. It never holds any part of the secret's value.
type MalformedError struct {
	SecretID string // name or ARN of the secret, as configured
	Field    string // the offending field (accessKey or accessSecret), or "" when the whole value is wrong
	Reason   string // what is wrong, e.g. "is missing or empty"
	// Placeholder is set when the field still holds Placeholder: the secret
	// was never configured. The error then matches nxcloud.ErrNotConfigured.
	Placeholder bool
}

// Is reports whether target is nxcloud.ErrNotConfigured and the secret still
// holds the placeholder.
func (e *MalformedError) Is(target error) bool {
	return e.Placeholder && target == nxcloud.ErrNotConfigured
}

func (e *MalformedError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("secret %q: field %q %s: the SecretString must be JSON %s", e.SecretID, e.Field, e.Reason, secretShape)
	}
	return fmt.Sprintf("secret %q: %s: the SecretString must be JSON %s", e.SecretID, e.Reason, secretShape)
}

// ErrUnavailable is matched (errors.Is) by every *UnavailableError: the
// secret could not be read from Secrets Manager.
var ErrUnavailable = errors.New("secrets manager unavailable")

// UnavailableError reports a failed GetSecretValue call (network, throttling,
// a Secrets Manager exception such as ResourceNotFoundException or
// AccessDeniedException) or a caller's context ending before the value
// arrived. Err is the underlying error, kept in the chain for errors.As and
// errors.Is (smithy.APIError, *types.ResourceNotFoundException,
// context.DeadlineExceeded, ...).
type UnavailableError struct {
	SecretID string
	Err      error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("secret %q: %s: %v: %s", e.SecretID, ErrUnavailable, e.Err, hint(e.Err))
}

// Unwrap returns the underlying error.
func (e *UnavailableError) Unwrap() error { return e.Err }

// Is reports whether target is ErrUnavailable.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// hint tells the operator what to fix for the well-known Secrets Manager
// error codes.
func hint(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "ResourceNotFoundException":
			return "check that NXCLOUD_SECRET_ID names an existing secret in the function's region (name or full ARN)"
		case "AccessDeniedException", "AccessDenied":
			return "allow secretsmanager:GetSecretValue on this secret in the function's role"
		case "DecryptionFailure":
			return "allow kms:Decrypt on the secret's KMS key in the function's role"
		case "InvalidRequestException":
			return "the secret may be scheduled for deletion: restore it or point NXCLOUD_SECRET_ID at another secret"
		}
	}
	return "retry later; if it persists check the network path to Secrets Manager and AWS_ENDPOINT_URL_SECRETS_MANAGER"
}
