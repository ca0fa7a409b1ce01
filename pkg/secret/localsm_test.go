package secret_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localsm"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/secret"
)

// These tests drive the Provider through the real AWS SDK client against the
// local Secrets Manager endpoint: they prove that the wire protocol, the
// error decoding and the SDK's retries behave as the fakes assume.

const smSecretID = "nxcloud/credentials"

// loadConfig loads the SDK configuration as a function does, with static
// credentials, and retries without backoff delay so that the tests are quick.
func loadConfig(t *testing.T) aws.Config {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIDLOCAL", "local-signing-secret", "")),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
			})
		}),
	)
	if err != nil {
		t.Fatalf("LoadDefaultConfig: %v", err)
	}
	return cfg
}

func newSDKClient(t *testing.T, sm *localsm.Server) *secretsmanager.Client {
	t.Helper()
	return secretsmanager.NewFromConfig(loadConfig(t), func(o *secretsmanager.Options) {
		o.BaseEndpoint = aws.String(sm.URL())
	})
}

func quiet() secret.Option { return secret.WithLogger(slog.New(slog.DiscardHandler)) }

func TestRealSDKRetrieveByNameAndARN(t *testing.T) {
	t.Parallel()
	sm := localsm.NewTestServer(t)
	sm.Put(smSecretID, `{"accessKey":"AK-local","accessSecret":"S-local"}`)
	client := newSDKClient(t, sm)
	for _, id := range []string{smSecretID, sm.ARN(smSecretID)} {
		p := secret.NewProvider(client, id, quiet())
		c, err := p.Retrieve(context.Background())
		if err != nil {
			t.Fatalf("Retrieve(%q): %v", id, err)
		}
		if c.AccessKey != "AK-local" || c.AccessSecret != "S-local" {
			t.Errorf("Retrieve(%q): wrong credentials", id)
		}
	}
	if n := sm.Calls(localsm.OpGetSecretValue); n != 2 {
		t.Errorf("GetSecretValue calls = %d, want 2", n)
	}
}

func TestRealSDKRotationPickedUpByRefresh(t *testing.T) {
	t.Parallel()
	sm := localsm.NewTestServer(t)
	sm.Put(smSecretID, `{"accessKey":"AK-1","accessSecret":"S-1"}`)
	p := secret.NewProvider(newSDKClient(t, sm), smSecretID, quiet())
	ctx := context.Background()
	if c, err := p.Retrieve(ctx); err != nil || c.AccessKey != "AK-1" {
		t.Fatalf("Retrieve: %v", err)
	}
	sm.Put(smSecretID, `{"accessKey":"AK-2","accessSecret":"S-2"}`)
	if c, _ := p.Retrieve(ctx); c.AccessKey != "AK-1" {
		t.Error("Retrieve within the TTL must answer the cached value")
	}
	c, err := p.Refresh(ctx)
	if err != nil || c.AccessKey != "AK-2" || c.AccessSecret != "S-2" {
		t.Fatalf("Refresh after rotation: err %v, rotated value not picked up", err)
	}
	if n := sm.Calls(localsm.OpGetSecretValue); n != 2 {
		t.Errorf("GetSecretValue calls = %d, want 2", n)
	}
}

func TestRealSDKErrors(t *testing.T) {
	t.Parallel()

	t.Run("not found", func(t *testing.T) {
		t.Parallel()
		sm := localsm.NewTestServer(t)
		_, err := secret.NewProvider(newSDKClient(t, sm), "missing", quiet()).Retrieve(context.Background())
		var nf *types.ResourceNotFoundException
		if !errors.Is(err, secret.ErrUnavailable) || !errors.As(err, &nf) {
			t.Fatalf("err = %v, want ErrUnavailable wrapping *types.ResourceNotFoundException", err)
		}
	})

	t.Run("binary secret", func(t *testing.T) {
		t.Parallel()
		sm := localsm.NewTestServer(t)
		sm.PutBinary(smSecretID, []byte(`{"accessKey":"AK","accessSecret":"S"}`))
		_, err := secret.NewProvider(newSDKClient(t, sm), smSecretID, quiet()).Retrieve(context.Background())
		var me *secret.MalformedError
		if !errors.As(err, &me) {
			t.Fatalf("err = %v, want *secret.MalformedError", err)
		}
	})

	t.Run("throttling retried by the SDK", func(t *testing.T) {
		t.Parallel()
		sm := localsm.NewTestServer(t)
		sm.Put(smSecretID, `{"accessKey":"AK","accessSecret":"S"}`)
		sm.FailNext(2, "ThrottlingException", 400)
		c, err := secret.NewProvider(newSDKClient(t, sm), smSecretID, quiet()).Retrieve(context.Background())
		if err != nil || c.AccessKey != "AK" {
			t.Fatalf("Retrieve: %v", err)
		}
		if n := sm.Calls(localsm.OpGetSecretValue); n != 3 {
			t.Errorf("GetSecretValue calls = %d, want 3 (two throttled, one retried)", n)
		}
	})

	t.Run("outage serves the stale value", func(t *testing.T) {
		t.Parallel()
		sm := localsm.NewTestServer(t)
		sm.Put(smSecretID, `{"accessKey":"AK","accessSecret":"S"}`)
		var mu sync.Mutex
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		p := secret.NewProvider(newSDKClient(t, sm), smSecretID, quiet(), secret.WithTTL(time.Minute), secret.WithClock(clock))
		if _, err := p.Retrieve(context.Background()); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		now = now.Add(time.Minute)
		mu.Unlock()
		sm.FailNext(100, "InternalServiceError", 500)
		c, err := p.Retrieve(context.Background())
		if err != nil || c.AccessKey != "AK" {
			t.Fatalf("Retrieve during an outage within the grace: %v", err)
		}
		_, err = p.Refresh(context.Background())
		if !errors.Is(err, secret.ErrUnavailable) {
			t.Fatalf("Refresh during an outage: err = %v, want ErrUnavailable", err)
		}
	})
}

func TestRealSDKConcurrentCallersShareOneCall(t *testing.T) {
	t.Parallel()
	sm := localsm.NewTestServer(t)
	sm.Put(smSecretID, `{"accessKey":"AK","accessSecret":"S"}`)
	sm.SetDelay(100 * time.Millisecond)
	p := secret.NewProvider(newSDKClient(t, sm), smSecretID, quiet())
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := p.Retrieve(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := sm.Calls(localsm.OpGetSecretValue); n != 1 {
		t.Errorf("GetSecretValue calls = %d, want 1", n)
	}
}

// TestRealSDKEndpointFromEnvironment uses AWS_ENDPOINT_URL_SECRETS_MANAGER,
// as the local run does, instead of BaseEndpoint. Not parallel: t.Setenv.
func TestRealSDKEndpointFromEnvironment(t *testing.T) {
	sm := localsm.NewTestServer(t)
	sm.Put(smSecretID, `{"accessKey":"AK-env","accessSecret":"S-env"}`)
	t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", sm.URL())
	client := secretsmanager.NewFromConfig(loadConfig(t))
	c, err := secret.NewProvider(client, smSecretID, quiet()).Retrieve(context.Background())
	if err != nil || c.AccessKey != "AK-env" {
		t.Fatalf("Retrieve through AWS_ENDPOINT_URL_SECRETS_MANAGER: %v", err)
	}
}

// Example wires a Provider to Secrets Manager. In a function the client is
// secretsmanager.NewFromConfig(cfg) on the Lambda's configuration; here it
// points at a local endpoint (AWS_ENDPOINT_URL_SECRETS_MANAGER does the same
// without code).
func Example() {
	sm := localsm.New()
	url, err := sm.Start("127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sm.Close()
	sm.Put("nxcloud/credentials", `{"accessKey":"AK-example","accessSecret":"S-example"}`)

	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
	if err != nil {
		fmt.Println(err)
		return
	}
	client := secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(url) })

	p := secret.NewProvider(client, "nxcloud/credentials",
		secret.WithTTL(5*time.Minute),
		secret.WithLogger(slog.New(slog.DiscardHandler)))
	creds, err := p.Retrieve(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("credentials loaded:", creds.AccessKey != "" && creds.AccessSecret != "")
	// Output: credentials loaded: true
}
