package lambdarttest_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart/lambdarttest"
)

func TestMain(m *testing.M) { os.Exit(lambdarttest.Main(m)) }

func TestBuildReportsCompilerOutput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte("package main\n\nfunc main() { undefinedThing() }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := lambdarttest.Build(t.Context(), src, filepath.Join(dir, "bootstrap"))
	if err == nil || !strings.Contains(err.Error(), "undefinedThing") {
		t.Fatalf("Build of a broken package = %v, want an error quoting the compiler", err)
	}
}

func TestBootstrapBuildsOnce(t *testing.T) {
	t.Parallel()
	first := lambdarttest.Bootstrap(t, "../testdata/raw")
	st, err := os.Stat(first)
	if err != nil || st.Mode().Perm()&0o111 == 0 {
		t.Fatalf("Bootstrap returned %q (%v), want an executable file", first, err)
	}
	if filepath.Base(first) != "bootstrap" || filepath.Base(filepath.Dir(first)) != "raw" {
		t.Errorf("Bootstrap path %q, want .../raw/bootstrap", first)
	}
	again := lambdarttest.Bootstrap(t, "../testdata/raw")
	st2, err := os.Stat(again)
	if again != first || err != nil || !st2.ModTime().Equal(st.ModTime()) {
		t.Errorf("second Bootstrap = %q (%v), want the same, unrebuilt file %q", again, err, first)
	}
}
