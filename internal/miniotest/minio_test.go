package miniotest_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/miniotest"
)

// TestMissingBinarySaysMakeMinio: on a machine without MinIO the error
// says how to get it.
func TestMissingBinarySaysMakeMinio(t *testing.T) {
	t.Setenv("MINIO_BIN", filepath.Join(t.TempDir(), "no-minio"))
	if _, err := miniotest.FindBinary(); !errors.Is(err, miniotest.ErrBinaryNotFound) || !strings.Contains(err.Error(), "make minio") {
		t.Fatalf("FindBinary = %v; want ErrBinaryNotFound telling to run make minio", err)
	}
}
