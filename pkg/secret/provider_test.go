package secret

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart/lambdarttest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/config"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

const (
	testSecretID = "nxcloud/credentials"
	testKey      = "AKIDEXAMPLEKEY123"
	testSecret   = "s3cr3t-Value-DoNotLeak"
	rotatedKey   = "AKIDROTATEDKEY456"
	rotatedSec   = "r0tated-Value-DoNotLeak"
)

// fakeSM is a function-field fake of GetSecretValueAPI that counts calls.
type fakeSM struct {
	getSecretValue func(ctx context.Context, in *secretsmanager.GetSecretValueInput) (*secretsmanager.GetSecretValueOutput, error)
	calls          atomic.Int32
}

func (f *fakeSM) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.calls.Add(1)
	return f.getSecretValue(ctx, in)
}

// answer returns a GetSecretValue output holding s as SecretString.
func answer(s string) *secretsmanager.GetSecretValueOutput {
	return &secretsmanager.GetSecretValueOutput{
		Name:         aws.String(testSecretID),
		SecretString: aws.String(s),
		VersionId:    aws.String("v1"),
	}
}

func credsJSON(key, sec string) string {
	return `{"accessKey":"` + key + `","accessSecret":"` + sec + `"}`
}

// value is a mutable secret value for fakes whose answer changes (rotation,
// outages).
type value struct {
	mu  sync.Mutex
	out *secretsmanager.GetSecretValueOutput
	err error
}

func (v *value) set(out *secretsmanager.GetSecretValueOutput, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.out, v.err = out, err
}

func (v *value) fake() *fakeSM {
	return &fakeSM{getSecretValue: func(_ context.Context, in *secretsmanager.GetSecretValueInput) (*secretsmanager.GetSecretValueOutput, error) {
		if got := aws.ToString(in.SecretId); got != testSecretID {
			return nil, &types.ResourceNotFoundException{Message: aws.String("wrong id " + got)}
		}
		v.mu.Lock()
		defer v.mu.Unlock()
		return v.out, v.err
	}}
}

// clock is an injectable, manually advanced clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func mustRetrieve(t *testing.T, p *Provider) nxcloud.Credentials {
	t.Helper()
	c, err := p.Retrieve(context.Background())
	if err != nil {
		t.Fatalf("Retrieve: %v", err)
	}
	return c
}

func TestDefaultTTL(t *testing.T) {
	t.Parallel()
	p := NewProvider(&fakeSM{}, testSecretID)
	if p.ttl != config.DefaultSecretTTL {
		t.Errorf("default ttl = %v, want %v", p.ttl, config.DefaultSecretTTL)
	}
	p = NewProvider(&fakeSM{}, testSecretID, WithTTL(0), WithTTL(-time.Second), WithClock(nil), WithLogger(nil))
	if p.ttl != config.DefaultSecretTTL || p.now == nil || p.log == nil {
		t.Errorf("invalid options were not ignored: ttl %v", p.ttl)
	}
	for ttl, want := range map[time.Duration]time.Duration{time.Minute: 6 * time.Second, 5 * time.Minute: 30 * time.Second, time.Hour: 30 * time.Second} {
		if got := NewProvider(&fakeSM{}, testSecretID, WithTTL(ttl)).staleRetryInterval(); got != want {
			t.Errorf("stale retry interval for ttl %v = %v, want %v", ttl, got, want)
		}
	}
}

func TestRetrieveCachesForTTL(t *testing.T) {
	t.Parallel()
	const ttl = time.Minute
	tests := []struct {
		name      string
		advance   time.Duration // after the first Retrieve
		wantCalls int32
		want      nxcloud.Credentials
	}{
		{"immediately", 0, 1, nxcloud.Credentials{AccessKey: testKey, AccessSecret: testSecret}},
		{"just before ttl", ttl - time.Nanosecond, 1, nxcloud.Credentials{AccessKey: testKey, AccessSecret: testSecret}},
		{"at ttl", ttl, 2, nxcloud.Credentials{AccessKey: rotatedKey, AccessSecret: rotatedSec}},
		{"long after ttl", 10 * ttl, 2, nxcloud.Credentials{AccessKey: rotatedKey, AccessSecret: rotatedSec}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var v value
			v.set(answer(credsJSON(testKey, testSecret)), nil)
			sm := v.fake()
			clk := newClock()
			p := NewProvider(sm, testSecretID, WithTTL(ttl), WithClock(clk.Now), WithLogger(slog.New(slog.DiscardHandler)))

			if got := mustRetrieve(t, p); got.AccessKey != testKey || got.AccessSecret != testSecret {
				t.Fatalf("first Retrieve = wrong credentials")
			}
			v.set(answer(credsJSON(rotatedKey, rotatedSec)), nil) // rotated behind the cache
			clk.Advance(tc.advance)
			for range 3 {
				if got := mustRetrieve(t, p); got != tc.want {
					t.Errorf("Retrieve after %v: got key %q, want %q", tc.advance, got.AccessKey, tc.want.AccessKey)
				}
			}
			if n := sm.calls.Load(); n != tc.wantCalls {
				t.Errorf("GetSecretValue calls = %d, want %d", n, tc.wantCalls)
			}
		})
	}
}

func TestConcurrentRetrieveSharesOneFetch(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	sm := &fakeSM{getSecretValue: func(ctx context.Context, _ *secretsmanager.GetSecretValueInput) (*secretsmanager.GetSecretValueOutput, error) {
		<-release
		return answer(credsJSON(testKey, testSecret)), nil
	}}
	p := NewProvider(sm, testSecretID, WithLogger(slog.New(slog.DiscardHandler)))

	const n = 50
	var started, done sync.WaitGroup
	started.Add(n)
	errs := make(chan error, n)
	for range n {
		done.Go(func() {
			started.Done()
			c, err := p.Retrieve(context.Background())
			if err == nil && c.AccessSecret != testSecret {
				err = errors.New("wrong credentials")
			}
			errs <- err
		})
	}
	started.Wait()
	time.Sleep(50 * time.Millisecond) // let the callers pile up on the in-flight fetch
	close(release)
	done.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := sm.calls.Load(); got != 1 {
		t.Errorf("GetSecretValue calls = %d, want 1 shared by %d callers", got, n)
	}
}

func TestRefreshForcesFetch(t *testing.T) {
	t.Parallel()
	var v value
	v.set(answer(credsJSON(testKey, testSecret)), nil)
	sm := v.fake()
	clk := newClock()
	p := NewProvider(sm, testSecretID, WithClock(clk.Now), WithLogger(slog.New(slog.DiscardHandler)))

	if got := mustRetrieve(t, p); got.AccessKey != testKey {
		t.Fatal("first Retrieve: wrong key")
	}
	v.set(answer(credsJSON(rotatedKey, rotatedSec)), nil)
	if got := mustRetrieve(t, p); got.AccessKey != testKey {
		t.Fatal("cached Retrieve must not see the rotation yet")
	}
	got, err := p.Refresh(context.Background())
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if got.AccessKey != rotatedKey || got.AccessSecret != rotatedSec {
		t.Fatal("Refresh did not return the rotated credentials")
	}
	if got := mustRetrieve(t, p); got.AccessKey != rotatedKey {
		t.Fatal("Retrieve after Refresh: the cache was not replaced")
	}
	if n := sm.calls.Load(); n != 2 {
		t.Errorf("GetSecretValue calls = %d, want 2", n)
	}
	// The refreshed value starts a new TTL.
	clk.Advance(config.DefaultSecretTTL - time.Second)
	mustRetrieve(t, p)
	if n := sm.calls.Load(); n != 2 {
		t.Errorf("GetSecretValue calls = %d after Retrieve within the new TTL, want 2", n)
	}
}

func TestMalformedSecret(t *testing.T) {
	t.Parallel()
	const shape = `: the SecretString must be JSON {"accessKey": "...", "accessSecret": "..."}`
	tests := []struct {
		name      string
		out       *secretsmanager.GetSecretValueOutput
		wantField string
		wantErr   string
	}{
		{
			name:      "missing accessKey",
			out:       answer(`{"accessSecret":"` + testSecret + `"}`),
			wantField: FieldAccessKey,
			wantErr:   `secret "nxcloud/credentials": field "accessKey" is missing or empty` + shape,
		},
		{
			name:      "missing accessSecret",
			out:       answer(`{"accessKey":"` + testKey + `"}`),
			wantField: FieldAccessSecret,
			wantErr:   `secret "nxcloud/credentials": field "accessSecret" is missing or empty` + shape,
		},
		{
			name:      "empty accessSecret",
			out:       answer(credsJSON(testKey, "")),
			wantField: FieldAccessSecret,
			wantErr:   `secret "nxcloud/credentials": field "accessSecret" is missing or empty` + shape,
		},
		{
			name:      "blank accessKey",
			out:       answer(credsJSON(` \t\n `, testSecret)),
			wantField: FieldAccessKey,
			wantErr:   `secret "nxcloud/credentials": field "accessKey" is missing or empty` + shape,
		},
		{
			name:      "null accessSecret",
			out:       answer(`{"accessKey":"` + testKey + `","accessSecret":null}`),
			wantField: FieldAccessSecret,
			wantErr:   `secret "nxcloud/credentials": field "accessSecret" is missing or empty` + shape,
		},
		{
			name:      "wrong case key",
			out:       answer(`{"AccessKey":"` + testKey + `","accessSecret":"` + testSecret + `"}`),
			wantField: FieldAccessKey,
			wantErr:   `secret "nxcloud/credentials": field "accessKey" is missing or empty` + shape,
		},
		{
			name:      "number accessSecret",
			out:       answer(`{"accessKey":"` + testKey + `","accessSecret":90817263544}`),
			wantField: FieldAccessSecret,
			wantErr:   `secret "nxcloud/credentials": field "accessSecret" is not a JSON string` + shape,
		},
		{
			name:      "template placeholders",
			out:       answer(credsJSON(Placeholder, Placeholder)),
			wantField: FieldAccessKey,
			wantErr: `secret "nxcloud/credentials": field "accessKey" still holds the template's placeholder REPLACE_ME: the secret is not configured yet; ` +
				`store your NXCloud credentials with aws secretsmanager put-secret-value --secret-id nxcloud/credentials ` +
				`--secret-string '{"accessKey":"<your accessKey>","accessSecret":"<your accessSecret>"}'` + shape,
		},
		{
			name:      "placeholder accessSecret",
			out:       answer(credsJSON(testKey, Placeholder)),
			wantField: FieldAccessSecret,
			wantErr: `secret "nxcloud/credentials": field "accessSecret" still holds the template's placeholder REPLACE_ME: the secret is not configured yet; ` +
				`store your NXCloud credentials with aws secretsmanager put-secret-value --secret-id nxcloud/credentials ` +
				`--secret-string '{"accessKey":"<your accessKey>","accessSecret":"<your accessSecret>"}'` + shape,
		},
		{
			name:    "not JSON",
			out:     answer("accessKey=" + testKey + "\naccessSecret=" + testSecret),
			wantErr: `secret "nxcloud/credentials": the SecretString is not valid JSON` + shape,
		},
		{
			name:    "truncated JSON",
			out:     answer(`{"accessKey":"` + testKey + `","accessSecret":"` + testSecret),
			wantErr: `secret "nxcloud/credentials": the SecretString is not valid JSON` + shape,
		},
		{
			name:    "bare secret string",
			out:     answer(testSecret),
			wantErr: `secret "nxcloud/credentials": the SecretString is not valid JSON` + shape,
		},
		{
			name:    "JSON string",
			out:     answer(`"` + testSecret + `"`),
			wantErr: `secret "nxcloud/credentials": the SecretString is JSON but not an object` + shape,
		},
		{
			name:    "JSON array",
			out:     answer(`["` + testKey + `","` + testSecret + `"]`),
			wantErr: `secret "nxcloud/credentials": the SecretString is JSON but not an object` + shape,
		},
		{
			name:    "JSON number",
			out:     answer(`31415926535`),
			wantErr: `secret "nxcloud/credentials": the SecretString is JSON but not an object` + shape,
		},
		{
			name:    "JSON null",
			out:     answer(`null`),
			wantErr: `secret "nxcloud/credentials": the SecretString is JSON but not an object` + shape,
		},
		{
			name:    "empty string",
			out:     answer(``),
			wantErr: `secret "nxcloud/credentials": the SecretString is empty` + shape,
		},
		{
			name:    "SecretBinary only",
			out:     &secretsmanager.GetSecretValueOutput{Name: aws.String(testSecretID), SecretBinary: []byte(credsJSON(testKey, testSecret))},
			wantErr: `secret "nxcloud/credentials": holds a SecretBinary value and no SecretString: store the credentials as a SecretString` + shape,
		},
		{
			name:    "no value",
			out:     &secretsmanager.GetSecretValueOutput{Name: aws.String(testSecretID)},
			wantErr: `secret "nxcloud/credentials": has no SecretString value` + shape,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var v value
			v.set(tc.out, nil)
			log, buf := lambdarttest.Logger()
			p := NewProvider(v.fake(), testSecretID, WithLogger(log))
			for _, call := range []func(context.Context) (nxcloud.Credentials, error){p.Retrieve, p.Refresh} {
				c, err := call(context.Background())
				if err == nil {
					t.Fatal("no error for a malformed secret")
				}
				if c != (nxcloud.Credentials{}) {
					t.Error("credentials returned with an error")
				}
				var me *MalformedError
				if !errors.As(err, &me) {
					t.Fatalf("error %T is not a *MalformedError: %v", err, err)
				}
				if me.Field != tc.wantField || me.SecretID != testSecretID {
					t.Errorf("MalformedError = %+v, want field %q", me, tc.wantField)
				}
				if errors.Is(err, ErrUnavailable) {
					t.Error("a malformed secret must not be reported as unavailable")
				}
				if placeholder := strings.Contains(tc.name, "placeholder"); errors.Is(err, nxcloud.ErrNotConfigured) != placeholder {
					t.Errorf("errors.Is(err, nxcloud.ErrNotConfigured) = %v, want %v", !placeholder, placeholder)
				}
				if err.Error() != tc.wantErr {
					t.Errorf("error\n got %s\nwant %s", err, tc.wantErr)
				}
				assertNoLeak(t, "error", err.Error())
			}
			assertNoLeak(t, "log", buf.String())
		})
	}
}

// assertNoLeak fails when s holds any part of the test credentials.
func assertNoLeak(t *testing.T, what, s string) {
	t.Helper()
	for _, secret := range []string{testKey, testSecret, rotatedKey, rotatedSec, "90817263544", "31415926535", "'a'", "'s'"} {
		if strings.Contains(s, secret) {
			t.Errorf("%s leaks %q: %s", what, secret, s)
		}
	}
}

func throttling() error {
	return &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded", Fault: smithy.FaultClient}
}

func TestStaleServedWhileUnavailable(t *testing.T) {
	t.Parallel()
	const ttl = 4 * time.Minute // stale retry interval: ttl/10 = 24s
	var v value
	v.set(answer(credsJSON(testKey, testSecret)), nil)
	sm := v.fake()
	clk := newClock()
	log, buf := lambdarttest.Logger()
	p := NewProvider(sm, testSecretID, WithTTL(ttl), WithClock(clk.Now), WithLogger(log))
	want := nxcloud.Credentials{AccessKey: testKey, AccessSecret: testSecret}
	mustRetrieve(t, p)

	v.set(nil, throttling())
	steps := []struct {
		name      string
		advance   time.Duration
		call      func(context.Context) (nxcloud.Credentials, error)
		wantCalls int32
		wantErr   bool
	}{
		{"expired: fetch fails, stale served", ttl, p.Retrieve, 2, false},
		{"within retry interval: stale without fetching", 12 * time.Second, p.Retrieve, 2, false},
		{"Refresh never serves stale", 0, p.Refresh, 3, true},
		{"retry interval passed: fetch again, stale served", 12 * time.Second, p.Retrieve, 4, false},
		{"grace nearly over: still stale", ttl - 25*time.Second, p.Retrieve, 5, false},
		{"grace over: error", time.Second, p.Retrieve, 6, true},
		{"still over: error, fetch each time", 0, p.Retrieve, 7, true},
	}
	for _, st := range steps {
		clk.Advance(st.advance)
		got, err := st.call(context.Background())
		if st.wantErr {
			if err == nil {
				t.Fatalf("%s: no error", st.name)
			}
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("%s: error not ErrUnavailable: %v", st.name, err)
			}
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != "ThrottlingException" {
				t.Errorf("%s: the SDK error is not in the chain: %v", st.name, err)
			}
			assertNoLeak(t, "error", err.Error())
		} else {
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if got != want {
				t.Errorf("%s: wrong credentials", st.name)
			}
		}
		if n := sm.calls.Load(); n != st.wantCalls {
			t.Errorf("%s: GetSecretValue calls = %d, want %d", st.name, n, st.wantCalls)
		}
	}

	logs := buf.String()
	if !strings.Contains(logs, `"level":"WARN"`) || !strings.Contains(logs, "past their TTL") || !strings.Contains(logs, "ThrottlingException") {
		t.Errorf("no warning logged for the stale value:\n%s", logs)
	}
	assertNoLeak(t, "log", logs)

	// Back up: a fresh value replaces the stale one.
	v.set(answer(credsJSON(rotatedKey, rotatedSec)), nil)
	if got := mustRetrieve(t, p); got.AccessKey != rotatedKey {
		t.Error("recovered Secrets Manager: rotated value not picked up")
	}
}

func TestNoStaleAfterMalformed(t *testing.T) {
	t.Parallel()
	var v value
	v.set(answer(credsJSON(testKey, testSecret)), nil)
	clk := newClock()
	p := NewProvider(v.fake(), testSecretID, WithClock(clk.Now), WithLogger(slog.New(slog.DiscardHandler)))
	mustRetrieve(t, p)
	v.set(answer(`{"accessKey":"`+testKey+`"}`), nil)
	clk.Advance(config.DefaultSecretTTL)
	_, err := p.Retrieve(context.Background())
	var me *MalformedError
	if !errors.As(err, &me) || me.Field != FieldAccessSecret {
		t.Fatalf("Retrieve after the secret became malformed: err = %v, want a MalformedError naming accessSecret", err)
	}
}

func TestUnavailableWithNothingCached(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		err      error
		wantHint string
	}{
		{"not found", &types.ResourceNotFoundException{Message: aws.String("Secrets Manager can't find the specified secret.")}, "NXCLOUD_SECRET_ID"},
		{"access denied", &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized"}, "secretsmanager:GetSecretValue"},
		{"kms", &types.DecryptionFailure{Message: aws.String("kms")}, "kms:Decrypt"},
		{"throttled", throttling(), "retry later"},
		{"network", errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), "retry later"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var v value
			v.set(nil, tc.err)
			log, buf := lambdarttest.Logger()
			p := NewProvider(v.fake(), testSecretID, WithLogger(log))
			_, err := p.Retrieve(context.Background())
			if err == nil {
				t.Fatal("no error")
			}
			var ue *UnavailableError
			if !errors.As(err, &ue) || !errors.Is(err, ErrUnavailable) || !errors.Is(err, tc.err) {
				t.Fatalf("error %v: want an *UnavailableError wrapping the SDK error", err)
			}
			if !strings.Contains(err.Error(), testSecretID) || !strings.Contains(err.Error(), tc.wantHint) {
				t.Errorf("error %q: want the secret id and the hint %q", err, tc.wantHint)
			}
			var me *MalformedError
			if errors.As(err, &me) {
				t.Error("an unavailable secret is not malformed")
			}
			assertNoLeak(t, "log", buf.String())
		})
	}
}

func TestContextCancellation(t *testing.T) {
	t.Parallel()

	t.Run("already cancelled", func(t *testing.T) {
		t.Parallel()
		sm := &fakeSM{getSecretValue: func(context.Context, *secretsmanager.GetSecretValueInput) (*secretsmanager.GetSecretValueOutput, error) {
			return answer(credsJSON(testKey, testSecret)), nil
		}}
		p := NewProvider(sm, testSecretID)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		for _, call := range []func(context.Context) (nxcloud.Credentials, error){p.Retrieve, p.Refresh} {
			if _, err := call(ctx); !errors.Is(err, context.Canceled) || !errors.Is(err, ErrUnavailable) {
				t.Errorf("err = %v, want context.Canceled and ErrUnavailable", err)
			}
		}
		if n := sm.calls.Load(); n != 0 {
			t.Errorf("GetSecretValue called %d times with a cancelled context", n)
		}
	})

	t.Run("cancelled while waiting", func(t *testing.T) {
		t.Parallel()
		entered := make(chan struct{})
		release := make(chan struct{})
		fetchCtxErr := make(chan error, 1)
		sm := &fakeSM{getSecretValue: func(ctx context.Context, _ *secretsmanager.GetSecretValueInput) (*secretsmanager.GetSecretValueOutput, error) {
			close(entered)
			<-release
			fetchCtxErr <- ctx.Err()
			return answer(credsJSON(testKey, testSecret)), nil
		}}
		p := NewProvider(sm, testSecretID, WithLogger(slog.New(slog.DiscardHandler)))

		ctx, cancel := context.WithCancel(context.Background())
		first := make(chan error, 1)
		go func() { _, err := p.Retrieve(ctx); first <- err }()
		<-entered
		second := make(chan error, 1)
		go func() { _, err := p.Retrieve(context.Background()); second <- err }()

		cancel()
		select {
		case err := <-first:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled caller: err = %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("cancelled caller still waiting for the fetch")
		}
		close(release)
		if err := <-second; err != nil {
			t.Errorf("a caller sharing the fetch failed because another caller gave up: %v", err)
		}
		if err := <-fetchCtxErr; err != nil {
			t.Errorf("the shared fetch was cancelled with its first caller: %v", err)
		}
		if n := sm.calls.Load(); n != 1 {
			t.Errorf("GetSecretValue calls = %d, want 1", n)
		}
	})

	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		defer close(release)
		sm := &fakeSM{getSecretValue: func(context.Context, *secretsmanager.GetSecretValueInput) (*secretsmanager.GetSecretValueOutput, error) {
			<-release
			return nil, errors.New("released")
		}}
		p := NewProvider(sm, testSecretID, WithLogger(slog.New(slog.DiscardHandler)))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if _, err := p.Refresh(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want context.DeadlineExceeded", err)
		}
	})
}

// TestNoCredentialsInLogsOrErrors walks the provider through success,
// rotation, outage with stale serving, and failure, capturing every log line
// and error, and checks that neither the access key nor the secret shows up.
func TestNoCredentialsInLogsOrErrors(t *testing.T) {
	t.Parallel()
	var v value
	v.set(answer(credsJSON(testKey, testSecret)), nil)
	clk := newClock()
	log, buf := lambdarttest.Logger()
	p := NewProvider(v.fake(), testSecretID, WithTTL(time.Minute), WithClock(clk.Now), WithLogger(log))

	var errs []string
	record := func(_ nxcloud.Credentials, err error) {
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	ctx := context.Background()
	record(p.Retrieve(ctx))
	v.set(answer(credsJSON(rotatedKey, rotatedSec)), nil)
	record(p.Refresh(ctx))
	v.set(nil, &types.InternalServiceError{Message: aws.String("boom")})
	clk.Advance(time.Minute)
	record(p.Retrieve(ctx)) // stale
	record(p.Refresh(ctx))  // error
	v.set(answer(`{"accessKey":"`+testKey+`","accessSecret":`), nil)
	record(p.Refresh(ctx))
	v.set(answer(`{"accessKey":"`+rotatedKey+`","accessSecret":""}`), nil)
	record(p.Refresh(ctx))

	if len(errs) != 3 {
		t.Errorf("got %d errors, want 3: %q", len(errs), errs)
	}
	for _, e := range errs {
		assertNoLeak(t, "error", e)
	}
	logs := buf.String()
	if strings.Count(logs, "\n") < 3 {
		t.Errorf("expected the fetch and stale lines in the log, got:\n%s", logs)
	}
	assertNoLeak(t, "log", logs)
}

func BenchmarkRetrieveWarm(b *testing.B) {
	sm := &fakeSM{getSecretValue: func(context.Context, *secretsmanager.GetSecretValueInput) (*secretsmanager.GetSecretValueOutput, error) {
		return answer(credsJSON(testKey, testSecret)), nil
	}}
	p := NewProvider(sm, testSecretID, WithTTL(time.Hour), WithLogger(slog.New(slog.DiscardHandler)))
	ctx := context.Background()
	if _, err := p.Retrieve(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Retrieve(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if n := sm.calls.Load(); n != 1 {
		b.Fatalf("GetSecretValue calls = %d, want 1", n)
	}
}
