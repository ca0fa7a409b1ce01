package nxcloud

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Defaults of the client's options.
const (
	// DefaultTimeout is the whole budget of one GetMedia or DeleteMedia call,
	// retries included.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxAttempts is how many times GetMedia and DeleteMedia try a call
	// that failed on the network or with HTTP 5xx/429.
	DefaultMaxAttempts = 3
	// DefaultRetryBaseDelay is the backoff ceiling before the first retry.
	DefaultRetryBaseDelay = 100 * time.Millisecond
	// DefaultRetryMaxDelay caps the backoff ceiling of later retries.
	DefaultRetryMaxDelay = time.Second
	// MaxAnswerBytes is the largest answer body the client reads; a larger
	// body is a *ResponseError.
	MaxAnswerBytes = 1 << 20
	// maxExcerpt bounds ResponseError.Excerpt.
	maxExcerpt = 200
)

// Client calls the NXCloud WhatsApp media API
// (https://github.com/nxtele/http-api-document). Build it with [NewClient]; it
// is safe for concurrent use by multiple goroutines.
type Client struct {
	baseURL     string
	creds       CredentialsProvider
	hc          *http.Client
	now         func() time.Time
	alg         Algorithm
	timeout     time.Duration
	maxAttempts int
	baseDelay   time.Duration
	maxDelay    time.Duration
	log         *slog.Logger
	observe     func(context.Context, Call)
}

// Call is one HTTP exchange with NXCloud as an observer sees it (see
// WithObserver): every attempt of GetMedia and DeleteMedia, every request of
// UploadTemplateFile and UploadMedia.
type Call struct {
	Action string
	// HTTPStatus is the status of the answer; 0 when none came (a network
	// error, a timeout, a body that could not be sent).
	HTTPStatus int
	// Answered reports an answer in the documented JSON; Code is its code
	// (0 for success).
	Answered bool
	Code     int
	// Duration is from sending the request to reading the answer.
	Duration time.Duration
}

// Option configures a Client. An option that is given an unusable value makes
// NewClient fail with an error naming the option.
type Option func(*Client) error

// NewClient builds a client. WithCredentials is required; every other option
// has a default: DefaultBaseURL, a tuned *http.Client that reuses
// connections, time.Now, MD5 signatures, DefaultTimeout, and
// DefaultMaxAttempts attempts with a full-jitter backoff between
// DefaultRetryBaseDelay and DefaultRetryMaxDelay.
func NewClient(opts ...Option) (*Client, error) {
	c := &Client{
		baseURL:     DefaultBaseURL,
		now:         time.Now,
		alg:         MD5,
		timeout:     DefaultTimeout,
		maxAttempts: DefaultMaxAttempts,
		baseDelay:   DefaultRetryBaseDelay,
		maxDelay:    DefaultRetryMaxDelay,
		log:         slog.New(slog.DiscardHandler),
	}
	for i, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("nxcloud.NewClient: option %d is nil: pass only nxcloud.With... options", i)
		}
		if err := opt(c); err != nil {
			return nil, fmt.Errorf("nxcloud.NewClient: %w", err)
		}
	}
	if c.creds == nil {
		return nil, errors.New("nxcloud.NewClient: WithCredentials is required: pass a CredentialsProvider such as nxcloud.StaticCredentials")
	}
	if c.hc == nil {
		c.hc = defaultHTTPClient()
	}
	return c, nil
}

// defaultHTTPClient is an *http.Client tuned for many small calls to one host:
// kept-alive connections, a generous idle pool per host, no redirects (an API
// answer that redirects is reported, not followed with a changed method) and
// no overall timeout (calls are bounded by their context instead, so that
// large uploads are not cut off).
func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 64
	t.MaxIdleConnsPerHost = 16
	t.IdleConnTimeout = 90 * time.Second
	t.DisableKeepAlives = false
	t.ForceAttemptHTTP2 = true
	return &http.Client{
		Transport: t,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// WithBaseURL sets the NXCloud endpoint (default DefaultBaseURL), e.g. the URL
// of a local nxcloudtest server. It must be an absolute http or https URL
// without query or fragment; a trailing slash is ignored.
func WithBaseURL(u string) Option {
	return func(c *Client) error {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.RawQuery != "" || p.Fragment != "" {
			return fmt.Errorf("WithBaseURL: %q is not an http(s) base URL such as %s", u, DefaultBaseURL)
		}
		c.baseURL = strings.TrimRight(u, "/")
		return nil
	}
}

// WithCredentials sets where the client gets its access key and secret
// (required).
func WithCredentials(p CredentialsProvider) Option {
	return func(c *Client) error {
		if p == nil {
			return errors.New("WithCredentials: the provider is nil: pass a CredentialsProvider such as nxcloud.StaticCredentials")
		}
		c.creds = p
		return nil
	}
}

// WithHTTPClient sets the HTTP client. The default reuses connections; a
// client given here should too. Its Timeout, if any, also bounds uploads.
func WithHTTPClient(h *http.Client) Option {
	return func(c *Client) error {
		if h == nil {
			return errors.New("WithHTTPClient: the client is nil: omit the option to use the default")
		}
		c.hc = h
		return nil
	}
}

// WithClock sets the clock the ts header is read from (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(c *Client) error {
		if now == nil {
			return errors.New("WithClock: the clock is nil: omit the option to use time.Now")
		}
		c.now = now
		return nil
	}
}

// WithAlgorithm sets the signature algorithm (default MD5). With SHA256 the
// client sends the header "algorithm: sha256".
func WithAlgorithm(a Algorithm) Option {
	return func(c *Client) error {
		parsed, err := ParseAlgorithm(string(a))
		if err != nil {
			return fmt.Errorf("WithAlgorithm: %w", err)
		}
		c.alg = parsed
		return nil
	}
}

// WithTimeout sets the whole budget of one GetMedia or DeleteMedia call,
// retries and backoff included (default DefaultTimeout). The context's
// deadline, when earlier, wins. Uploads have no budget of their own: their
// context bounds them.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) error {
		if d <= 0 {
			return fmt.Errorf("WithTimeout: %v is not a positive duration", d)
		}
		c.timeout = d
		return nil
	}
}

// WithRetry sets how GetMedia and DeleteMedia retry network errors and HTTP
// 5xx/429 answers: at most maxAttempts attempts in all (1 disables retries),
// sleeping a random duration between 0 and min(maxDelay, baseDelay*2^(n-1))
// before retry n ("full jitter"). Defaults: DefaultMaxAttempts,
// DefaultRetryBaseDelay, DefaultRetryMaxDelay.
func WithRetry(maxAttempts int, baseDelay, maxDelay time.Duration) Option {
	return func(c *Client) error {
		switch {
		case maxAttempts < 1:
			return fmt.Errorf("WithRetry: maxAttempts %d is below 1: use 1 to disable retries", maxAttempts)
		case baseDelay < 0:
			return fmt.Errorf("WithRetry: baseDelay %v is negative", baseDelay)
		case maxDelay < baseDelay:
			return fmt.Errorf("WithRetry: maxDelay %v is below baseDelay %v", maxDelay, baseDelay)
		}
		c.maxAttempts, c.baseDelay, c.maxDelay = maxAttempts, baseDelay, maxDelay
		return nil
	}
}

// WithLogger sets a logger for debug lines about each attempt (action,
// attempt, HTTP status, code, duration). Secrets, signatures and the access
// key are never logged. nil (the default) discards.
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) error {
		if l == nil {
			l = slog.New(slog.DiscardHandler)
		}
		c.log = l
		return nil
	}
}

// WithObserver sets a function called after every HTTP exchange with NXCloud
// (each attempt and each upload request), for example to record metrics. It
// is called on the caller's goroutine, must return quickly and must be safe
// for concurrent use. nil (the default) observes nothing.
func WithObserver(f func(context.Context, Call)) Option {
	return func(c *Client) error {
		c.observe = f
		return nil
	}
}

// jsonRequest is the body of getMedia and deleteMedia, fields in the
// documented order.
type jsonRequest struct {
	BusinessPhone    string `json:"business_phone"`
	MessagingProduct string `json:"messaging_product"`
	MediaID          string `json:"Media-ID"`
}

// answer is a parsed NXCloud answer with code 0.
type answer struct {
	status int
	raw    []byte          // the whole body
	data   json.RawMessage // the data member; nil when absent
}

// GetMedia returns the information NXCloud holds about an uploaded media file
// (https://github.com/nxtele/http-api-document, WhatsApp "Get Media File";
// nxcloud-docs/getMedia.md). Media.Raw is the data object exactly as NXCloud
// sent it.
//
// Network errors and HTTP 5xx/429 are retried with backoff within the call's
// budget (WithTimeout and ctx); an authentication code (1000 to 1099)
// refreshes the credentials and retries once. Errors: *APIError (code other
// than 0), *ResponseError (not the documented answer), *CredentialsError,
// ErrTimeout, ErrInvalidInput.
func (c *Client) GetMedia(ctx context.Context, businessPhone, mediaID string) (*Media, error) {
	ans, err := c.callJSON(ctx, ActionGetMedia, businessPhone, mediaID)
	if err != nil {
		return nil, err
	}
	bad := func(reason string) error {
		return &ResponseError{Action: ActionGetMedia, HTTPStatus: ans.status, Excerpt: excerpt(ans.raw), Reason: reason}
	}
	if !isJSONObject(ans.data) {
		return nil, bad("data is not the documented object")
	}
	var m Media
	if err := json.Unmarshal(ans.data, &m); err != nil {
		return nil, bad("data is not the documented object")
	}
	m.Raw = ans.data
	return &m, nil
}

// DeleteMedia deletes an uploaded media file
// (https://github.com/nxtele/http-api-document, WhatsApp "Delete Media File";
// nxcloud-docs/deleteMedia.md). It succeeds on code 0 unless data says
// "success": false. Retries and errors as for GetMedia.
func (c *Client) DeleteMedia(ctx context.Context, businessPhone, mediaID string) error {
	ans, err := c.callJSON(ctx, ActionDeleteMedia, businessPhone, mediaID)
	if err != nil {
		return err
	}
	if isJSONObject(ans.data) {
		var d struct {
			Success *bool `json:"success"`
		}
		if json.Unmarshal(ans.data, &d) == nil && d.Success != nil && !*d.Success {
			return &ResponseError{Action: ActionDeleteMedia, HTTPStatus: ans.status, Excerpt: excerpt(ans.raw), Reason: "code 0 but data.success is false"}
		}
	}
	return nil
}

// callJSON runs one getMedia/deleteMedia call within the client's budget,
// with retries and the one authentication refresh.
func (c *Client) callJSON(ctx context.Context, action, phone, mediaID string) (answer, error) {
	if phone == "" {
		return answer{}, fmt.Errorf("nxcloud %s: %w: the business phone is empty: pass the merchant phone with country code", action, ErrInvalidInput)
	}
	if mediaID == "" {
		return answer{}, fmt.Errorf("nxcloud %s: %w: the media id is empty: pass the id NXCloud returned on upload", action, ErrInvalidInput)
	}
	// Marshal once: these exact bytes are signed and sent on every attempt.
	body, err := json.Marshal(jsonRequest{BusinessPhone: phone, MessagingProduct: MessagingProduct, MediaID: mediaID})
	if err != nil {
		return answer{}, fmt.Errorf("nxcloud %s: encoding the body: %w", action, err)
	}

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	cred, err := c.retrieve(ctx)
	if err != nil {
		return answer{}, err
	}
	refreshed := false
	for attempt := 1; ; {
		ans, err := c.doJSON(ctx, action, attempt, cred, body)
		if err == nil {
			return ans, nil
		}
		var apiErr *APIError
		var respErr *ResponseError
		switch {
		case errors.As(err, &apiErr):
			if !apiErr.IsAuth() || refreshed {
				return answer{}, err
			}
			// A rotated secret: fetch it anew and try once more. This retry
			// does not count against maxAttempts.
			refreshed = true
			c.log.DebugContext(ctx, "nxcloud authentication refused, refreshing credentials", "action", action, "code", apiErr.Code)
			if cred, err = c.refresh(ctx); err != nil {
				return answer{}, err
			}
			continue
		case errors.As(err, &respErr):
			if !respErr.Temporary() {
				return answer{}, err
			}
		default: // no answer: a network error
			if ctx.Err() != nil || isNetTimeout(err) {
				return answer{}, interrupted(ctx, action, err)
			}
		}
		if attempt >= c.maxAttempts {
			return answer{}, fmt.Errorf("nxcloud %s: giving up after %d attempts: %w", action, attempt, err)
		}
		delay := c.backoff(attempt)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= delay {
			return answer{}, fmt.Errorf("nxcloud %s: giving up after %d attempts, no time left to retry: %w", action, attempt, err)
		}
		if serr := sleep(ctx, delay); serr != nil {
			return answer{}, interrupted(ctx, action, err)
		}
		attempt++
	}
}

// doJSON makes one attempt of a JSON call: fresh ts and sign.
func (c *Client) doJSON(ctx context.Context, action string, attempt int, cred Credentials, body []byte) (answer, error) {
	ts := Timestamp(c.now())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint(action), bytes.NewReader(body))
	if err != nil {
		return answer{}, fmt.Errorf("nxcloud %s: building the request: %w", action, err)
	}
	c.setHeaders(req.Header, cred, action, ts, Sign(c.alg, cred, action, ts, body))
	req.Header.Set("Content-Type", "application/json")

	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.report(ctx, action, attempt, 0, start, err)
		return answer{}, fmt.Errorf("nxcloud %s: %w", action, err)
	}
	ans, err := readAnswer(action, resp)
	c.report(ctx, action, attempt, resp.StatusCode, start, err)
	return ans, err
}

// report tells the observer about one exchange and logs it at debug level;
// status 0 means no answer came, err is then the transport's error.
func (c *Client) report(ctx context.Context, action string, attempt, status int, start time.Time, err error) {
	d := time.Since(start)
	if c.observe != nil {
		call := Call{Action: action, HTTPStatus: status, Duration: d}
		if apiErr, ok := AsAPIError(err); ok {
			call.Answered, call.Code = true, apiErr.Code
		} else if status != 0 && err == nil {
			call.Answered = true
		}
		c.observe(ctx, call)
	}
	if !c.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	if status == 0 {
		c.log.DebugContext(ctx, "nxcloud call failed", "action", action, "attempt", attempt, "duration", d, "error", err)
		return
	}
	attrs := []any{"action", action, "attempt", attempt, "status", status, "duration", d}
	if apiErr, ok := AsAPIError(err); ok {
		attrs = append(attrs, "code", apiErr.Code)
	} else if err != nil {
		attrs = append(attrs, "error", err)
	} else {
		attrs = append(attrs, "code", 0)
	}
	c.log.DebugContext(ctx, "nxcloud answered", attrs...)
}

func (c *Client) endpoint(action string) string { return c.baseURL + "/api/wa/" + action }

// setHeaders sets the signed headers under their documented spelling (the
// map keys are deliberately not canonicalized, so they go out as documented).
func (c *Client) setHeaders(h http.Header, cred Credentials, action, ts, sign string) {
	h["accessKey"] = []string{cred.AccessKey}
	h["ts"] = []string{ts}
	h["bizType"] = []string{BizTypeWhatsApp}
	h["action"] = []string{action}
	h["sign"] = []string{sign}
	if c.alg != MD5 {
		h["algorithm"] = []string{string(c.alg)}
	}
	h.Set("Accept", "application/json")
}

func (c *Client) retrieve(ctx context.Context) (Credentials, error) {
	cred, err := c.creds.Retrieve(ctx)
	if err != nil {
		return Credentials{}, &CredentialsError{Err: err}
	}
	return cred, checkCredentials(cred)
}

func (c *Client) refresh(ctx context.Context) (Credentials, error) {
	cred, err := c.creds.Refresh(ctx)
	if err != nil {
		return Credentials{}, &CredentialsError{Err: fmt.Errorf("refresh after an authentication code: %w", err)}
	}
	return cred, checkCredentials(cred)
}

// checkCredentials rejects credentials that cannot make a valid request.
func checkCredentials(cred Credentials) error {
	switch {
	case cred.AccessKey == "":
		return &CredentialsError{Err: errors.New("the accessKey is empty: set it in the secret")}
	case cred.AccessSecret == "":
		return &CredentialsError{Err: errors.New("the accessSecret is empty: set it in the secret")}
	case strings.ContainsFunc(cred.AccessKey, func(r rune) bool { return r < 0x21 || r == 0x7f }):
		return &CredentialsError{Err: errors.New("the accessKey contains spaces or control characters: fix it in the secret")}
	}
	return nil
}

// readAnswer reads and parses an answer, bounded by MaxAnswerBytes. It returns
// the answer when the code is 0, else an *APIError or *ResponseError.
func readAnswer(action string, resp *http.Response) (answer, error) {
	defer func() {
		// Drain a little so that the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswerBytes+1))
	if err != nil {
		return answer{}, fmt.Errorf("nxcloud %s: reading the answer (HTTP %d): %w", action, resp.StatusCode, err)
	}
	bad := func(reason string) error {
		return &ResponseError{Action: action, HTTPStatus: resp.StatusCode, Excerpt: excerpt(raw), Reason: reason}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return answer{}, bad("unexpected HTTP status")
	}
	if len(raw) > MaxAnswerBytes {
		return answer{}, bad("body is larger than 1 MiB")
	}
	var env struct {
		Code    *int            `json:"code"`
		Message *string         `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &env); err != nil || env.Code == nil {
		return answer{}, bad("body is not the documented JSON")
	}
	if *env.Code != 0 {
		msg := ""
		if env.Message != nil {
			msg = *env.Message
		}
		return answer{}, &APIError{Action: action, Code: *env.Code, Message: msg, HTTPStatus: resp.StatusCode}
	}
	data := env.Data
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		data = nil
	}
	return answer{status: resp.StatusCode, raw: raw, data: data}, nil
}

func isJSONObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{'
}

// excerpt returns at most maxExcerpt bytes of b, cut at a rune boundary.
func excerpt(b []byte) string {
	if len(b) <= maxExcerpt {
		return string(b)
	}
	b = b[:maxExcerpt]
	for i := 0; i < utf8.UTFMax && len(b) > 0; i++ {
		if r, size := utf8.DecodeLastRune(b); r != utf8.RuneError || size != 1 {
			break
		}
		b = b[:len(b)-1]
	}
	return string(b)
}

// backoff returns the sleep before retry number attempt (1-based): full
// jitter under an exponentially growing, capped ceiling.
func (c *Client) backoff(attempt int) time.Duration {
	ceiling := c.maxDelay
	if shift := attempt - 1; shift < 32 {
		if d := c.baseDelay << shift; d > 0 && d < c.maxDelay {
			ceiling = d
		}
	}
	if ceiling <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(ceiling) + 1))
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func isNetTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// interrupted classifies a call that ended without an answer because its
// context ended or the network timed out. A deadline or a network timeout is
// ErrTimeout (with ctx.Err() kept in the chain); a cancellation is reported as
// such.
func interrupted(ctx context.Context, action string, err error) error {
	ctxErr := ctx.Err()
	if errors.Is(ctxErr, context.Canceled) && !isNetTimeout(err) {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("nxcloud %s: call canceled: %w", action, err)
		}
		return fmt.Errorf("nxcloud %s: call canceled: %w (%w)", action, ctxErr, err)
	}
	errs := []error{ErrTimeout, err}
	if ctxErr != nil && !errors.Is(err, ctxErr) {
		errs = append(errs, ctxErr)
	}
	return &timeoutError{action: action, errs: errs}
}
