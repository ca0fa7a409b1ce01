package mediaapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/archive"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/sessions/session"
)

// inputError is a request the handler refuses before calling NXCloud. Its
// message tells the caller what to fix.
type inputError struct{ msg string }

func (e *inputError) Error() string { return e.msg }

func badInput(format string, a ...any) error { return &inputError{msg: fmt.Sprintf(format, a...)} }

// errNotFound is a path the API does not serve.
var errNotFound = errors.New("not found: this API serves /media/{mediaId}, /media/{mediaId}/content, /media/{mediaId}/archive, /uploads and /uploads/{uploadId}")

// methodError is a method the function does not serve on a route.
type methodError struct {
	method string
	route  string
	allow  []string
}

func (e *methodError) Error() string {
	return fmt.Sprintf("method %s is not allowed on %s: use %s", e.method, e.route, strings.Join(e.allow, " or "))
}

// storeError is a failure of the upload sessions' storage (S3).
type storeError struct{ err error }

func (e *storeError) Error() string { return "upload sessions storage: " + e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

// call describes the request a failure happened in, for the messages.
type call struct {
	action        string // NXCloud action: getMedia or deleteMedia
	mediaID       string
	phone         string
	phoneFromEnv  bool // the phone is the NXCLOUD_BUSINESS_PHONE default
	phoneFromUser bool // the phone came from ?business_phone=
}

// rule is one row of the status table.
type rule struct {
	cause   string // short name of the row, logged as "cause"
	match   func(err error) bool
	status  int
	message func(err error, c call) string
}

// statusTable is the one place where a failure becomes an HTTP status
// (SPEC.md, "HTTP API"). The first matching row wins; the last row matches
// everything. Messages tell the caller what to fix and never hold internal
// details (URLs, credentials, Go error text of the transport); NXCloud's own
// message is quoted, sanitised.
var statusTable = []rule{
	{
		cause:   "not_found",
		match:   func(err error) bool { return errors.Is(err, errNotFound) },
		status:  http.StatusNotFound,
		message: func(err error, _ call) string { return err.Error() },
	},
	{
		cause:   "method_not_allowed",
		match:   func(err error) bool { var e *methodError; return errors.As(err, &e) },
		status:  http.StatusMethodNotAllowed,
		message: func(err error, _ call) string { return err.Error() },
	},
	{
		cause:  "upload_not_found",
		match:  func(err error) bool { return errors.Is(err, session.ErrUploadNotFound) },
		status: http.StatusNotFound,
		message: func(error, call) string {
			return "no upload session has this upload_id: use the upload_id that POST /uploads answered, or create a session with POST /uploads"
		},
	},
	{
		cause:  "upload_store",
		match:  func(err error) bool { var e *storeError; return errors.As(err, &e) },
		status: http.StatusServiceUnavailable,
		message: func(error, call) string {
			return "the upload sessions' storage did not answer as expected: retry later; if it persists the operator must check the function's logs"
		},
	},
	{
		cause:   "bad_input",
		match:   func(err error) bool { var e *inputError; return errors.As(err, &e) },
		status:  http.StatusBadRequest,
		message: func(err error, _ call) string { return err.Error() },
	},
	{
		cause:   "archive_input",
		match:   archiveKind(archive.Input),
		status:  http.StatusBadRequest,
		message: archiveMessage,
	},
	{
		cause:   "archive_download",
		match:   archiveKind(archive.Download),
		status:  http.StatusBadGateway,
		message: archiveMessage,
	},
	{
		cause:   "archive_too_large",
		match:   archiveKind(archive.TooLarge),
		status:  http.StatusRequestEntityTooLarge,
		message: archiveMessage,
	},
	{
		cause:   "archive_timeout",
		match:   archiveKind(archive.Timeout),
		status:  http.StatusGatewayTimeout,
		message: archiveMessage,
	},
	{
		cause:   "archive_storage",
		match:   archiveKind(archive.Storage),
		status:  http.StatusServiceUnavailable,
		message: archiveMessage,
	},
	{
		cause:  "nxcloud_parameter",
		match:  apiErrorWhere((*nxcloud.APIError).IsParameter),
		status: http.StatusBadRequest,
		message: func(err error, c call) string {
			return fmt.Sprintf("NXCloud rejected the %s parameters (%s): check that mediaId %s is a media id NXCloud returned and that business_phone %s is the merchant phone it belongs to",
				c.action, nxcloudRef(err), quote(c.mediaID), c.phone)
		},
	},
	{
		cause:  "nxcloud_merchant",
		match:  apiErrorWhere((*nxcloud.APIError).IsMerchant),
		status: http.StatusUnprocessableEntity,
		message: func(err error, c call) string {
			ae, _ := nxcloud.AsAPIError(err)
			var what, fix string
			if ae.Code == 9002 {
				what = fmt.Sprintf("the merchant phone %s is not a WhatsApp number", c.phone)
				fix = "pass the phone of your WhatsApp Business number with its country code"
			} else {
				what = fmt.Sprintf("the merchant phone %s is not bound to your NXCloud application", c.phone)
				fix = "bind the number to the application with NXCloud or pass a number that is bound"
			}
			switch {
			case c.phoneFromUser:
				fix += " in ?business_phone="
			case c.phoneFromEnv:
				fix += " in ?business_phone= or in the function's NXCLOUD_BUSINESS_PHONE"
			}
			return fmt.Sprintf("%s (%s): %s", what, nxcloudRef(err), fix)
		},
	},
	{
		cause:  "nxcloud_auth",
		match:  apiErrorWhere((*nxcloud.APIError).IsAuth),
		status: http.StatusBadGateway,
		message: func(err error, _ call) string {
			return fmt.Sprintf("NXCloud refused the function's credentials even after reloading them (%s): the operator must store a valid NXCloud key pair in the function's secret", nxcloudRef(err))
		},
	},
	{
		cause:  "nxcloud_failure",
		match:  apiErrorWhere((*nxcloud.APIError).IsFailure),
		status: http.StatusBadGateway,
		message: func(err error, c call) string {
			return fmt.Sprintf("NXCloud failed to process %s (%s): retry later; if it persists contact NXCloud support", c.action, nxcloudRef(err))
		},
	},
	{
		cause:  "nxcloud_code",
		match:  apiErrorWhere(func(*nxcloud.APIError) bool { return true }),
		status: http.StatusBadGateway,
		message: func(err error, c call) string {
			return fmt.Sprintf("NXCloud answered %s with an undocumented code (%s): retry later; if it persists contact NXCloud support", c.action, nxcloudRef(err))
		},
	},
	{
		cause:  "nxcloud_response",
		match:  func(err error) bool { var e *nxcloud.ResponseError; return errors.As(err, &e) },
		status: http.StatusBadGateway,
		message: func(err error, c call) string {
			var re *nxcloud.ResponseError
			errors.As(err, &re)
			if re.HTTPStatus != 0 && (re.HTTPStatus < 200 || re.HTTPStatus > 299) {
				return fmt.Sprintf("NXCloud answered %s with HTTP status %d: retry later; if it persists contact NXCloud support", c.action, re.HTTPStatus)
			}
			return fmt.Sprintf("NXCloud answered %s with a body that is not its documented JSON: retry later; if it persists contact NXCloud support", c.action)
		},
	},
	{
		cause:  "credentials",
		match:  func(err error) bool { var e *nxcloud.CredentialsError; return errors.As(err, &e) },
		status: http.StatusServiceUnavailable,
		message: func(err error, _ call) string {
			if errors.Is(err, nxcloud.ErrNotConfigured) {
				return `the function's NXCloud credentials are not configured: its secret still holds the template's placeholders; the operator must store them with aws secretsmanager put-secret-value --secret-id <the stack's SecretArn> --secret-string '{"accessKey":"...","accessSecret":"..."}'`
			}
			return "the function cannot load its NXCloud credentials (the secret is unreachable or malformed): retry later; if it persists the operator must check the function's secret and its logs"
		},
	},
	{
		cause: "timeout",
		match: func(err error) bool {
			return errors.Is(err, nxcloud.ErrTimeout) || errors.Is(err, context.DeadlineExceeded)
		},
		status: http.StatusGatewayTimeout,
		message: func(_ error, c call) string {
			return fmt.Sprintf("NXCloud did not answer %s in time: retry later", c.action)
		},
	},
	{
		cause:  "transport",
		match:  func(error) bool { return true },
		status: http.StatusBadGateway,
		message: func(_ error, c call) string {
			return fmt.Sprintf("NXCloud could not be reached for %s: retry later", c.action)
		},
	},
}

// archiveKind matches an *archive.Error of kind k.
func archiveKind(k archive.Kind) func(error) bool {
	return func(err error) bool {
		e, ok := archive.AsError(err)
		return ok && e.Kind == k
	}
}

// archiveMessage is an *archive.Error's own message, written for the caller.
func archiveMessage(err error, _ call) string {
	e, _ := archive.AsError(err)
	return e.Message
}

// classify finds err's row in statusTable.
func classify(err error) *rule {
	for i := range statusTable {
		if statusTable[i].match(err) {
			return &statusTable[i]
		}
	}
	return &statusTable[len(statusTable)-1]
}

// apiErrorWhere matches an *nxcloud.APIError for which pred holds.
func apiErrorWhere(pred func(*nxcloud.APIError) bool) func(error) bool {
	return func(err error) bool {
		ae, ok := nxcloud.AsAPIError(err)
		return ok && pred(ae)
	}
}

// nxcloudCode returns NXCloud's code when NXCloud answered with one.
func nxcloudCode(err error) (int, bool) {
	if ae, ok := nxcloud.AsAPIError(err); ok {
		return ae.Code, true
	}
	return 0, false
}

// maxQuoted bounds the text taken from NXCloud or from the caller into a
// message.
const maxQuoted = 200

// nxcloudRef names NXCloud's code and its message, e.g. "NXCloud 9002:
// Merchant phone number error".
func nxcloudRef(err error) string {
	ae, _ := nxcloud.AsAPIError(err)
	if ae == nil {
		return "NXCloud"
	}
	if m := clean(ae.Message); m != "" {
		return fmt.Sprintf("NXCloud %d: %s", ae.Code, m)
	}
	return fmt.Sprintf("NXCloud %d", ae.Code)
}

// clean makes untrusted text fit for a message: valid UTF-8, no control
// characters, at most maxQuoted characters.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > maxQuoted {
		s = string([]rune(s)[:maxQuoted]) + "…"
	}
	return s
}

// quote quotes untrusted text for a message (cleaned, then Go-quoted).
func quote(s string) string { return fmt.Sprintf("%q", clean(s)) }
