package secret

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// TestStaleServedWhenSecretsManagerOutlastsTheDeadline is the regression
// test of a slow Secrets Manager (or the SDK's retries with backoff) using up
// the caller's whole budget after the TTL: the stale value must be served
// while the caller still has time to use it, and the background fetch must
// update the cache when it ends.
func TestStaleServedWhenSecretsManagerOutlastsTheDeadline(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	release := make(chan struct{})
	calls := 0
	sm := &fakeSM{getSecretValue: func(ctx context.Context, _ *secretsmanager.GetSecretValueInput) (*secretsmanager.GetSecretValueOutput, error) {
		calls++
		if calls > 1 {
			<-release // hangs until the test lets it go
		}
		return answer(credsJSON(testKey, testSecret)), nil
	}}
	p := NewProvider(sm, testSecretID, WithTTL(time.Minute), WithClock(clock), WithLogger(slog.New(slog.DiscardHandler)))
	if _, err := p.Retrieve(context.Background()); err != nil {
		t.Fatal(err)
	}
	now = now.Add(90 * time.Second) // past the TTL, within the grace

	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	start := time.Now()
	got, err := p.Retrieve(ctx)
	if err != nil {
		t.Fatalf("Retrieve with Secrets Manager hanging: %v, want the stale value", err)
	}
	if got.AccessKey != testKey {
		t.Errorf("got access key %q, want the cached one", got.AccessKey)
	}
	if d := time.Since(start); d > 300*time.Millisecond {
		t.Errorf("Retrieve took %v: it must keep the second half of the caller's budget", d)
	}
	if ctx.Err() != nil {
		t.Errorf("the caller's deadline passed before the stale value was served")
	}
	close(release)
}
