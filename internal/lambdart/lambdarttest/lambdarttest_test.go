package lambdarttest_test

import (
	"strings"
	"testing"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart/lambdarttest"
)

// TestSecretsLeaks: the leak check the end-to-end and fault suites run over
// all their output finds a planted value without naming it, and stays quiet
// otherwise.
func TestSecretsLeaks(t *testing.T) {
	t.Parallel()
	var s lambdarttest.Secrets
	s.Add("AKplanted-1", "", "short")
	out := "fn | {\"msg\":\"ok\"}\nfn | {\"error\":\"key AKplanted-1 refused\"}\n"
	if got := s.Leaks(out); len(got) != 1 || strings.Contains(got[0], "AKplanted-1") || !strings.Contains(got[0], `"fn | {\"error\":\"key "`) {
		t.Errorf("Leaks = %q, want one leak described by its line, without the value", got)
	}
	if got := s.Leaks("fn | short\n"); len(got) != 0 {
		t.Errorf("Leaks = %q, want none (values under 8 characters are not checked)", got)
	}
}
