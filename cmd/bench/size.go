package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// refDirs are the reference main packages, relative to functions/ as the
// Makefile's recipe names its packages.
var refDirs = map[string]string{
	helloID: "../bench/hello",
	probeID: "../bench/appnew",
	peerID:  "../bench/peer",
}

// buildFunction runs the Makefile's build-<id> target for goarch into
// work/<goarch>-size/<id>/bootstrap.
func (r *runner) buildFunction(ctx context.Context, id, goarch string, extra ...string) (string, error) {
	dir := filepath.Join(r.work, goarch+"-size", id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	args := append([]string{"--no-print-directory", "build-" + id, "ARTIFACTS_DIR=" + dir, "GOARCH=" + goarch}, extra...)
	cmd := exec.CommandContext(ctx, "make", args...)
	cmd.Dir = r.root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("make %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return filepath.Join(dir, "bootstrap"), nil
}

// buildRef builds a reference main package with the Makefile's own function
// recipe (the same go build flags, the same environment): the id is added to
// FUNCTIONS on make's command line, with its folder.
func (r *runner) buildRef(ctx context.Context, id, goarch string) (string, error) {
	return r.buildFunction(ctx, id, goarch, "FUNCTIONS="+id, "FUNCTION_DIR_"+id+"="+refDirs[id])
}

// sizes builds every bootstrap for arm64 and amd64 and checks the get and
// delete functions' dependencies.
func (r *runner) sizes(ctx context.Context) error {
	for _, arch := range []string{"arm64", "amd64"} {
		r.progress("building for %s", arch)
		hello, err := r.buildRef(ctx, helloID, arch)
		if err != nil {
			return err
		}
		hs, err := fileSize(hello)
		if err != nil {
			return err
		}
		for _, id := range functionIDs {
			p, err := r.buildFunction(ctx, id, arch)
			if err != nil {
				return err
			}
			n, err := fileSize(p)
			if err != nil {
				return err
			}
			limit := 1.6
			if id == "UploadTemplateFileFunction" {
				limit = 2
			}
			r.rep.sizes = append(r.rep.sizes, sizeRow{id: id, arch: arch, bytes: n, hello: hs, limit: limit})
		}
		r.rep.helloSizes = append(r.rep.helloSizes, sizeRow{id: helloID, arch: arch, bytes: hs, hello: hs})
	}
	for _, id := range []string{"GetMediaFunction", "DeleteMediaFunction", "UploadTemplateFileFunction"} {
		pkg := "./functions/" + map[string]string{
			"GetMediaFunction": "get-media", "DeleteMediaFunction": "delete-media", "UploadTemplateFileFunction": "upload-template-file",
		}[id]
		cmd := exec.CommandContext(ctx, "go", "list", "-deps", "-tags", "lambda.norpc", pkg)
		cmd.Dir = r.root
		cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("go list -deps %s: %w", pkg, err)
		}
		var s3 []string
		deps := strings.Fields(string(out))
		for _, d := range deps {
			if d == "github.com/aws/aws-sdk-go-v2/service/s3" || strings.HasPrefix(d, "github.com/aws/aws-sdk-go-v2/service/s3/") {
				s3 = append(s3, d)
			}
		}
		r.rep.deps = append(r.rep.deps, depsRow{id: id, pkg: pkg, deps: len(deps), s3: s3})
	}
	return nil
}

func fileSize(p string) (int64, error) {
	st, err := os.Stat(p)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}
