package nxcloudtest

import "testing"

// NewTestServer starts a Server on 127.0.0.1 on a free port and closes it when
// the test ends. Point a client at s.URL().
func NewTestServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := NewServer(opts...)
	if _, err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("nxcloudtest: starting the local NXCloud: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
