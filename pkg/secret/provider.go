package secret

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"golang.org/x/sync/singleflight"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/config"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

// GetSecretValueAPI is the one Secrets Manager call the provider needs;
// *secretsmanager.Client implements it.
type GetSecretValueAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

var _ nxcloud.CredentialsProvider = (*Provider)(nil)

// fetchTimeout bounds one shared GetSecretValue call. The call is detached
// from the context of the caller that started it (see Provider), so it needs
// a bound of its own.
const fetchTimeout = 30 * time.Second

// maxStaleRetryInterval caps how long a stale value is served without asking
// Secrets Manager again (see Provider).
const maxStaleRetryInterval = 30 * time.Second

// Provider is an nxcloud.CredentialsProvider that reads the credentials from
// one Secrets Manager secret and caches them in memory.
//
// Caching: Retrieve answers the cached credentials while they are younger
// than the TTL and fetches them otherwise; Refresh always fetches. Concurrent
// callers (Retrieve and Refresh alike) share one in-flight GetSecretValue
// call (singleflight), and no lock is held during the call. A cached Retrieve
// takes no lock and allocates nothing.
//
// Contexts: each caller waits for the shared call only as long as its own
// context allows and then returns an *UnavailableError wrapping ctx.Err().
// The shared call itself is detached from the cancellation of the caller
// that started it (so that one caller giving up does not fail the others)
// and is bounded by its own 30s timeout; a value it brings back is cached.
//
// Stale grace (a deliberate choice): when a fetch made because the TTL has
// passed fails with an *UnavailableError (Secrets Manager unreachable,
// throttling, an AWS-side error, never a malformed value) and a value was
// fetched earlier, Retrieve keeps answering that value for up to one more
// TTL after it expired (so at most 2×TTL after it was fetched) and logs a
// warning naming the secret ID and the error, never the value. During the
// grace a new fetch is attempted at most every TTL/10 (capped at 30s), so
// that an outage does not add Secrets Manager's latency to every call.
// When the caller's context has a deadline and a stale value could stand in,
// Retrieve waits for the fetch at most half of the remaining time (a slow or
// retrying Secrets Manager must not use up the budget of the call the value
// is for); the fetch goes on in the background and caches what it gets.
// Past the grace, or with nothing cached, the error is returned. Refresh
// never answers a stale value: it is called because the cached credentials
// were just refused. A malformed secret is an error at once: it is a
// configuration problem that must be seen.
type Provider struct {
	api      GetSecretValueAPI
	secretID string
	ttl      time.Duration
	now      func() time.Time
	log      *slog.Logger

	group singleflight.Group
	cur   atomic.Pointer[entry]
}

// entry is one immutable cached value.
type entry struct {
	creds   nxcloud.Credentials
	fetched time.Time // when the value was read from Secrets Manager
	// retryAt is set while a stale value is served after a failed fetch:
	// before it, Retrieve answers the stale value without fetching.
	retryAt time.Time
}

// Option configures a Provider.
type Option func(*Provider)

// WithTTL sets how long fetched credentials are served from memory (default
// config.DefaultSecretTTL, 5m). A non-positive d is ignored.
func WithTTL(d time.Duration) Option {
	return func(p *Provider) {
		if d > 0 {
			p.ttl = d
		}
	}
}

// WithClock sets the clock used for the TTL (default time.Now). A nil
// function is ignored.
func WithClock(now func() time.Time) Option {
	return func(p *Provider) {
		if now != nil {
			p.now = now
		}
	}
}

// WithLogger sets the logger for the warning about stale credentials and the
// line recording each fetch (default slog.Default()). Neither ever holds the
// secret's value or the access key. A nil logger is ignored.
func WithLogger(l *slog.Logger) Option {
	return func(p *Provider) {
		if l != nil {
			p.log = l
		}
	}
}

// NewProvider returns a Provider reading the secret secretID (a name or an
// ARN) through api, which must not be nil (a *secretsmanager.Client in
// production). Nothing is fetched until the first Retrieve or Refresh.
func NewProvider(api GetSecretValueAPI, secretID string, opts ...Option) *Provider {
	p := &Provider{
		api:      api,
		secretID: secretID,
		ttl:      config.DefaultSecretTTL,
		now:      time.Now,
		log:      slog.Default(),
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Retrieve returns the cached credentials, fetching them when nothing is
// cached or the cached value is older than the TTL. Errors are
// *MalformedError or *UnavailableError; see Provider for the stale grace.
func (p *Provider) Retrieve(ctx context.Context) (nxcloud.Credentials, error) {
	now := p.now()
	e := p.cur.Load()
	if e != nil {
		age := now.Sub(e.fetched)
		if age < p.ttl {
			return e.creds, nil
		}
		if !e.retryAt.IsZero() && now.Before(e.retryAt) && age < 2*p.ttl {
			return e.creds, nil
		}
	}

	fctx := ctx
	if dl, ok := ctx.Deadline(); ok && e != nil && now.Sub(e.fetched) < 2*p.ttl {
		// A stale value can stand in: wait for Secrets Manager (slow, or
		// retrying) at most half of the caller's remaining time, so that
		// the stale value is served while there is still time to use it.
		// The fetch goes on detached and caches what it brings back.
		var cancel context.CancelFunc
		fctx, cancel = context.WithTimeout(ctx, time.Until(dl)/2)
		defer cancel()
	}
	creds, err := p.fetch(fctx)
	if err == nil {
		return creds, nil
	}
	var ue *UnavailableError
	if e == nil || ctx.Err() != nil || !errors.As(err, &ue) {
		return nxcloud.Credentials{}, err
	}
	now = p.now()
	age := now.Sub(e.fetched)
	if age >= 2*p.ttl {
		return nxcloud.Credentials{}, err
	}
	// Serve the stale value; remember the failure so that the next calls
	// do not all wait for Secrets Manager again. CompareAndSwap: a fetch that
	// succeeded meanwhile wins.
	stale := &entry{creds: e.creds, fetched: e.fetched, retryAt: now.Add(p.staleRetryInterval())}
	p.cur.CompareAndSwap(e, stale)
	p.log.LogAttrs(ctx, slog.LevelWarn, "serving cached NXCloud credentials past their TTL: Secrets Manager is unavailable",
		slog.String("secret_id", p.secretID),
		slog.Duration("age", age),
		slog.Duration("ttl", p.ttl),
		slog.Duration("grace_left", 2*p.ttl-age),
		slog.String("error", ue.Err.Error()),
	)
	return e.creds, nil
}

// Refresh fetches the credentials now (sharing a fetch already in flight),
// replaces the cached value and returns it. It is what picks up a rotated
// secret. It never answers a stale value.
func (p *Provider) Refresh(ctx context.Context) (nxcloud.Credentials, error) {
	return p.fetch(ctx)
}

func (p *Provider) staleRetryInterval() time.Duration {
	return min(p.ttl/10, maxStaleRetryInterval)
}

// fetch joins or starts the shared GetSecretValue call and waits for it as
// long as ctx allows.
func (p *Provider) fetch(ctx context.Context) (nxcloud.Credentials, error) {
	if err := ctx.Err(); err != nil {
		return nxcloud.Credentials{}, &UnavailableError{SecretID: p.secretID, Err: err}
	}
	ch := p.group.DoChan(p.secretID, func() (any, error) { return p.load(ctx) })
	select {
	case r := <-ch:
		if r.Err != nil {
			return nxcloud.Credentials{}, r.Err
		}
		return r.Val.(*entry).creds, nil
	case <-ctx.Done():
		return nxcloud.Credentials{}, &UnavailableError{SecretID: p.secretID, Err: ctx.Err()}
	}
}

// load performs one GetSecretValue call, parses the value and caches it.
func (p *Provider) load(ctx context.Context) (*entry, error) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	defer cancel()
	out, err := p.api.GetSecretValue(fctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(p.secretID)})
	if err != nil {
		return nil, &UnavailableError{SecretID: p.secretID, Err: err}
	}
	creds, err := parse(p.secretID, out)
	if err != nil {
		return nil, err
	}
	e := &entry{creds: creds, fetched: p.now()}
	p.cur.Store(e)
	p.log.LogAttrs(ctx, slog.LevelInfo, "NXCloud credentials loaded from Secrets Manager",
		slog.String("secret_id", p.secretID),
		slog.String("version_id", aws.ToString(out.VersionId)),
	)
	return e, nil
}

// parse extracts the credentials from a GetSecretValue answer. Its errors
// never quote the value: encoding/json's own messages can echo bytes of the
// input (a syntax error names the offending character, a type error the
// offending number), so they are translated, not wrapped.
func parse(secretID string, out *secretsmanager.GetSecretValueOutput) (nxcloud.Credentials, error) {
	malformed := func(field, reason string) error {
		return &MalformedError{SecretID: secretID, Field: field, Reason: reason}
	}
	if out == nil || out.SecretString == nil {
		if out != nil && len(out.SecretBinary) > 0 {
			return nxcloud.Credentials{}, malformed("", "holds a SecretBinary value and no SecretString: store the credentials as a SecretString")
		}
		return nxcloud.Credentials{}, malformed("", "has no SecretString value")
	}

	if strings.TrimSpace(*out.SecretString) == "" {
		return nxcloud.Credentials{}, malformed("", "the SecretString is empty")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(*out.SecretString), &obj); err != nil {
		// Not even the syntax error's offset is reported: for a truncated
		// value it would tell the value's length.
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nxcloud.Credentials{}, malformed("", "the SecretString is JSON but not an object")
		}
		return nxcloud.Credentials{}, malformed("", "the SecretString is not valid JSON")
	}
	if obj == nil { // the JSON literal null
		return nxcloud.Credentials{}, malformed("", "the SecretString is JSON but not an object")
	}

	field := func(name string) (string, error) {
		raw, ok := obj[name]
		if !ok {
			return "", malformed(name, "is missing or empty")
		}
		var s *string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", malformed(name, "is not a JSON string")
		}
		if s == nil || strings.TrimSpace(*s) == "" {
			return "", malformed(name, "is missing or empty")
		}
		return *s, nil
	}
	key, err := field(FieldAccessKey)
	if err != nil {
		return nxcloud.Credentials{}, err
	}
	sec, err := field(FieldAccessSecret)
	if err != nil {
		return nxcloud.Credentials{}, err
	}
	for _, f := range [...][2]string{{FieldAccessKey, key}, {FieldAccessSecret, sec}} {
		if f[1] == Placeholder {
			return nxcloud.Credentials{}, &MalformedError{SecretID: secretID, Field: f[0], Placeholder: true,
				Reason: "still holds the template's placeholder " + Placeholder + ": the secret is not configured yet; store your NXCloud credentials with " +
					"aws secretsmanager put-secret-value --secret-id " + secretID + ` --secret-string '{"accessKey":"<your accessKey>","accessSecret":"<your accessSecret>"}'`}
		}
	}
	return nxcloud.Credentials{AccessKey: key, AccessSecret: sec}, nil
}
