package template_test

import (
	"debug/buildinfo"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
)

const modulePath = "github.com/nxcloud-media-lambda/nxcloud-media-lambda"

// makeCmd runs make in the repository root with the environment of this
// process minus what would change the Makefile's defaults (GOARCH, GOOS,
// CGO_ENABLED, ARTIFACTS_DIR) or tie the child to a parent make.
func makeCmd(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	cmd := exec.Command("make", append([]string{"--no-print-directory"}, args...)...)
	cmd.Dir = root
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return slices.Contains([]string{"GOARCH", "GOOS", "CGO_ENABLED", "ARTIFACTS_DIR",
			"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"}, k)
	})
	return cmd
}

// TestMakefileTargets dry-runs the targets SAM and people use.
func TestMakefileTargets(t *testing.T) {
	t.Parallel()
	for _, id := range functions(source(t)) {
		t.Run("build-"+id, func(t *testing.T) {
			t.Parallel()
			dir := functionDirs[id]
			for _, tc := range []struct {
				args []string
				want []string
			}{
				{[]string{"ARTIFACTS_DIR=/sam/artifacts"}, []string{
					"CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64", "-tags lambda.norpc", "-trimpath",
					"-ldflags='-s -w'", `-o "/sam/artifacts/bootstrap"`, "./functions/" + dir,
				}},
				{[]string{"ARTIFACTS_DIR=/tmp/host", "GOARCH=amd64"}, []string{"GOARCH=amd64", `-o "/tmp/host/bootstrap"`}},
				{nil, []string{`-o ".aws-sam/build/` + id + `/bootstrap"`}},
			} {
				out, err := makeCmd(t, append([]string{"-n", "build-" + id}, tc.args...)...).CombinedOutput()
				if err != nil {
					t.Fatalf("make -n build-%s %v: %v\n%s", id, tc.args, err, out)
				}
				var build string
				for _, l := range strings.Split(string(out), "\n") {
					if strings.Contains(l, " build ") {
						build = l
					}
				}
				for _, w := range tc.want {
					if !strings.Contains(build, w) {
						t.Errorf("make build-%s %v: %q lacks %q", id, tc.args, build, w)
					}
				}
			}
		})
	}
	for _, tc := range []struct {
		target string
		want   []string // any of
	}{
		{"test", []string{"go test"}},
		{"bench", []string{"-bench", "./cmd/bench"}},
		{"lint", []string{"golangci-lint"}},
		{"local", []string{`exec "bin/local"`}},
		{"local-docker", []string{`exec "bin/local" -docker`}},
		{"demo", []string{`exec "bin/local" demo`}},
		{"build", []string{`-o "bin/UploadTemplateFileFunction/bootstrap"`}},
		{"deploy", []string{"sam deploy"}},
		{"minio", []string{"github.com/minio/minio@"}},
	} {
		t.Run(tc.target, func(t *testing.T) {
			t.Parallel()
			out, err := makeCmd(t, "-n", tc.target).CombinedOutput()
			if err != nil {
				t.Fatalf("make -n %s: %v\n%s", tc.target, err, out)
			}
			if !slices.ContainsFunc(tc.want, func(w string) bool { return strings.Contains(string(out), w) }) {
				t.Errorf("make -n %s runs none of %q:\n%s", tc.target, tc.want, out)
			}
		})
	}
}

// TestBuildBootstrap builds every function as `sam build` does and checks
// the result is what provided.al2023 on arm64 runs: a static, stripped
// linux/arm64 executable built with -tags lambda.norpc.
func TestBuildBootstrap(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds every function; skipped with -short")
	}
	for id, dir := range functionDirs {
		t.Run(id, func(t *testing.T) {
			t.Parallel()
			if _, err := os.Stat(filepath.Join(root, "functions", dir)); err != nil {
				t.Skipf("functions/%s does not exist yet", dir)
			}
			artifacts := t.TempDir()
			if out, err := makeCmd(t, "build-"+id, "ARTIFACTS_DIR="+artifacts).CombinedOutput(); err != nil {
				t.Fatalf("make build-%s: %v\n%s", id, err, out)
			}
			bootstrap := filepath.Join(artifacts, "bootstrap")
			st, err := os.Stat(bootstrap)
			if err != nil {
				t.Fatalf("no bootstrap: %v", err)
			}
			if st.Mode().Perm()&0o111 == 0 {
				t.Errorf("bootstrap is not executable: %v", st.Mode())
			}
			checkStaticStrippedARM64(t, bootstrap)

			bi, err := buildinfo.ReadFile(bootstrap)
			if err != nil {
				t.Fatalf("build info: %v", err)
			}
			if want := modulePath + "/functions/" + dir; bi.Path != want {
				t.Errorf("main package = %s, want %s", bi.Path, want)
			}
			settings := map[string]string{}
			for _, s := range bi.Settings {
				settings[s.Key] = s.Value
			}
			for k, want := range map[string]string{
				"-tags": "lambda.norpc", "CGO_ENABLED": "0", "GOOS": "linux", "GOARCH": "arm64",
				"-trimpath": "true", // -trimpath keeps -ldflags out of the build info; the ELF checks cover -s -w
			} {
				if settings[k] != want {
					t.Errorf("build setting %s = %q, want %q", k, settings[k], want)
				}
			}
			// SPEC: neither the get nor the delete binary links the S3 client
			// (its own module), which the upload function, the sessions and the sweep need.
			linksS3 := slices.ContainsFunc(bi.Deps, func(m *debug.Module) bool { return m.Path == "github.com/aws/aws-sdk-go-v2/service/s3" })
			if want := id != "GetMediaFunction" && id != "DeleteMediaFunction"; linksS3 != want {
				t.Errorf("links the S3 client = %v, want %v: only the functions that use S3 link it", linksS3, want)
			}
		})
	}
}

func checkStaticStrippedARM64(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("bootstrap is not an ELF file: %v", err)
	}
	defer func() { _ = f.Close() }()
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_AARCH64 || f.OSABI != elf.ELFOSABI_NONE && f.OSABI != elf.ELFOSABI_LINUX {
		t.Errorf("bootstrap is %v %v %v, want a 64-bit linux AArch64 executable", f.Class, f.Machine, f.OSABI)
	}
	if f.Type != elf.ET_EXEC {
		t.Errorf("bootstrap type = %v, want ET_EXEC", f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("bootstrap has a %v program header: it is not static", p.Type)
		}
	}
	for _, name := range []string{".interp", ".dynamic", ".symtab", ".strtab", ".debug_info", ".zdebug_info"} {
		if f.Section(name) != nil {
			t.Errorf("bootstrap has a %s section: want static and stripped (-ldflags='-s -w')", name)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("bootstrap links %v", libs)
	}
}
