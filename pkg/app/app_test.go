package app_test

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/app"
)

// clearAWSEnv unsets the variables the SDK reads, so the host's own AWS
// set-up does not leak into the test.
func clearAWSEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, "")
			_ = os.Unsetenv(k)
		}
	}
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
}

func TestNew(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantErr string // substring; empty means success
		region  string
	}{
		{"lambda", map[string]string{"NXCLOUD_SECRET_ID": "s", "AWS_REGION": "eu-west-1"}, "", "eu-west-1"},
		{"no region", map[string]string{"NXCLOUD_SECRET_ID": "s"}, "AWS_REGION", ""},
		{"local endpoints without a region", map[string]string{"NXCLOUD_SECRET_ID": "s", "AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://127.0.0.1:4566"}, "", "us-east-1"},
		{"bad variable", map[string]string{"NXCLOUD_SECRET_ID": "s", "AWS_REGION": "eu-west-1", "NXCLOUD_TIMEOUT": "soon"}, "NXCLOUD_TIMEOUT", ""},
		{"no secret id", map[string]string{"AWS_REGION": "eu-west-1"}, "NXCLOUD_SECRET_ID", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearAWSEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			a, err := app.New(context.Background(), os.Getenv, logger)
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New = %v, want an error naming %s", err, tc.wantErr)
				}
			case err != nil:
				t.Fatalf("New: %v", err)
			case a.AWS.Region != tc.region || a.NXCloud == nil:
				t.Errorf("New: region %q (want %q), client %v", a.AWS.Region, tc.region, a.NXCloud)
			}
		})
	}
}

func TestLocalEndpoint(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{}, false},
		{map[string]string{"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000"}, true},
		{map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}, true},
		{map[string]string{"AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://127.0.0.1:4566"}, false},
	} {
		getenv := func(k string) string { return tc.env[k] }
		if got := app.LocalEndpoint(getenv, "AWS_ENDPOINT_URL_S3"); got != tc.want {
			t.Errorf("LocalEndpoint(%v, AWS_ENDPOINT_URL_S3) = %v, want %v", tc.env, got, tc.want)
		}
	}
}
