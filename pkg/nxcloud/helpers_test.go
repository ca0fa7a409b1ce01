package nxcloud_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
)

const testPhone = "8615812341795"

// newTestClient builds a client for srv with fast retries; opts come last
// and so win.
func newTestClient(t testing.TB, srv *nxcloudtest.Server, opts ...nxcloud.Option) *nxcloud.Client {
	t.Helper()
	base := []nxcloud.Option{
		nxcloud.WithBaseURL(srv.URL()),
		nxcloud.WithCredentials(nxcloud.StaticCredentials(srv.Credentials())),
		nxcloud.WithRetry(3, time.Millisecond, 5*time.Millisecond),
	}
	c, err := nxcloud.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

// fakeProvider is a CredentialsProvider whose Refresh can hand out rotated
// credentials, and which counts its calls.
type fakeProvider struct {
	mu          sync.Mutex
	current     nxcloud.Credentials
	next        *nxcloud.Credentials // what Refresh switches to, if set
	retrieveErr error
	refreshErr  error
	retrieves   int
	refreshes   int
}

func (p *fakeProvider) Retrieve(context.Context) (nxcloud.Credentials, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.retrieves++
	if p.retrieveErr != nil {
		return nxcloud.Credentials{}, p.retrieveErr
	}
	return p.current, nil
}

func (p *fakeProvider) Refresh(context.Context) (nxcloud.Credentials, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refreshes++
	if p.refreshErr != nil {
		return nxcloud.Credentials{}, p.refreshErr
	}
	if p.next != nil {
		p.current = *p.next
	}
	return p.current, nil
}

func (p *fakeProvider) counts() (retrieves, refreshes int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.retrieves, p.refreshes
}

// waitCalls waits until srv recorded at least n calls of action: a call is
// recorded when its handler returns, which for a delayed call is after the
// client gave up.
func waitCalls(t testing.TB, srv *nxcloudtest.Server, action string, n int) []nxcloudtest.Call {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		calls := srv.Calls(action)
		if len(calls) >= n {
			return calls
		}
		if time.Now().After(deadline) {
			t.Fatalf("server recorded %d %s calls, want at least %d", len(calls), action, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
