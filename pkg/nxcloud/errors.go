package nxcloud

import (
	"errors"
	"fmt"
	"strings"
)

// APIError is an answer of NXCloud with a code other than 0.
type APIError struct {
	Action     string // the NXCloud action, e.g. getMedia
	Code       int    // NXCloud result code
	Message    string // NXCloud message, as answered
	HTTPStatus int    // HTTP status of the answer
}

// Error names the action, the code and NXCloud's message.
func (e *APIError) Error() string {
	return fmt.Sprintf("nxcloud %s: code %d: %s", e.Action, e.Code, e.Message)
}

// IsAuth reports an authentication failure (codes 1000 to 1099).
func (e *APIError) IsAuth() bool { return e.Code >= 1000 && e.Code <= 1099 }

// IsParameter reports a parameter exception (9000).
func (e *APIError) IsParameter() bool { return e.Code == 9000 }

// IsMerchant reports a merchant phone problem: not a WhatsApp number (9002) or
// not bound to an application (9006).
func (e *APIError) IsMerchant() bool { return e.Code == 9002 || e.Code == 9006 }

// IsFailure reports a generic failure on NXCloud's side (-1, 9001).
func (e *APIError) IsFailure() bool { return e.Code == -1 || e.Code == 9001 }

// IsPermanent reports a rejection that repeating the same request cannot fix
// (9000, 9002, 9006).
func (e *APIError) IsPermanent() bool { return e.IsParameter() || e.IsMerchant() }

// ResponseError is an answer that is not the documented JSON: a non-2xx HTTP
// status or a body that does not parse. Excerpt holds at most a bounded prefix
// of the body.
type ResponseError struct {
	Action     string
	HTTPStatus int
	Excerpt    string
	Reason     string // e.g. "unexpected HTTP status", "body is not the documented JSON"
}

// Error names the action, the reason, the HTTP status and the excerpt.
func (e *ResponseError) Error() string {
	return fmt.Sprintf("nxcloud %s: %s (HTTP %d): %q", e.Action, e.Reason, e.HTTPStatus, e.Excerpt)
}

// Temporary reports whether the answer is worth retrying (HTTP 429 or 5xx).
func (e *ResponseError) Temporary() bool {
	return e.HTTPStatus == 429 || e.HTTPStatus >= 500
}

// CredentialsError wraps a failure of the CredentialsProvider: the call never
// reached NXCloud.
type CredentialsError struct{ Err error }

// Error describes the provider's failure.
func (e *CredentialsError) Error() string { return "nxcloud credentials: " + e.Err.Error() }

// Unwrap returns the provider's error.
func (e *CredentialsError) Unwrap() error { return e.Err }

// AsAPIError returns the *APIError in err's chain, if any.
func AsAPIError(err error) (*APIError, bool) {
	var e *APIError
	ok := errors.As(err, &e)
	return e, ok
}

// ErrTimeout is in the chain of the error a call returns when NXCloud did not
// answer within the call's budget: the context's deadline, the client's
// WithTimeout budget, or a network timeout. Check it with errors.Is; the
// context's error (context.DeadlineExceeded) is in the chain too when the
// deadline was the cause.
var ErrTimeout = errors.New("nxcloud did not answer in time")

// ErrNotConfigured is in the chain of a *CredentialsError when the
// credentials were never configured (the secret still holds the template's
// placeholder): the call never reached NXCloud.
var ErrNotConfigured = errors.New("the NXCloud credentials are not configured")

// ErrInvalidInput is in the chain of the error a call returns when its
// arguments are unusable (an empty merchant phone or media id, an upload
// without a body, ...): the call never reached NXCloud.
var ErrInvalidInput = errors.New("invalid nxcloud call input")

// timeoutError reports a call that ran out of time. It unwraps to ErrTimeout,
// the last error seen and, when the deadline was the cause, the context's
// error.
type timeoutError struct {
	action string
	errs   []error // ErrTimeout first, then the causes
}

func (e *timeoutError) Error() string {
	msg := "nxcloud " + e.action
	if len(e.errs) > 1 {
		if cause := e.errs[1].Error(); strings.HasPrefix(cause, msg) {
			msg = cause
		} else {
			msg += ": " + cause
		}
	}
	return msg + ": no answer in time: raise the timeout or check the network path to NXCloud"
}

func (e *timeoutError) Unwrap() []error { return e.errs }
