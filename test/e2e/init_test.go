package e2e_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localstack"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

// TestInitFailsOnBadVariable: a bad value of any variable fails every
// function's init with an error whose message names the variable.
func TestInitFailsOnBadVariable(t *testing.T) {
	t.Parallel()
	nxcloudFns := []string{localstack.GetMediaFunction, localstack.DeleteMediaFunction, localstack.UploadTemplateFileFunction, localstack.UploadMediaFunction}
	uploads := []string{localstack.UploadTemplateFileFunction, localstack.UploadMediaFunction, localstack.ReconcileFunction, localstack.ArchiveMediaFunction}
	sessions := []string{localstack.UploadSessionsFunction}
	for _, tc := range []struct {
		variable, change string
		fns              []string
	}{
		{"NXCLOUD_TIMEOUT", "NXCLOUD_TIMEOUT=banana", nxcloudFns},
		{"NXCLOUD_TIMEOUT", "NXCLOUD_TIMEOUT=-5s", nxcloudFns},
		{"MAX_UPLOAD_BYTES", "MAX_UPLOAD_BYTES=-1", nxcloudFns},
		{"MAX_UPLOAD_BYTES", "MAX_UPLOAD_BYTES=lots", nxcloudFns},
		{"NXCLOUD_SECRET_ID", "-NXCLOUD_SECRET_ID", nxcloudFns},
		{"NXCLOUD_SECRET_ID", "NXCLOUD_SECRET_ID=", nxcloudFns},
		{"NXCLOUD_SECRET_TTL", "NXCLOUD_SECRET_TTL=forever", nxcloudFns},
		{"NXCLOUD_SIGN_ALGORITHM", "NXCLOUD_SIGN_ALGORITHM=sha1", nxcloudFns},
		{"NXCLOUD_BASE_URL", "NXCLOUD_BASE_URL=ftp://example.com", nxcloudFns},
		{"NXCLOUD_BUSINESS_PHONE", "NXCLOUD_BUSINESS_PHONE=+86 158", nxcloudFns},
		{"UPLOAD_PREFIX", "UPLOAD_PREFIX=/templates/", nxcloudFns},
		{"MEDIA_PREFIX", "MEDIA_PREFIX=media", uploads},
		{"MEDIA_PREFIX", "MEDIA_PREFIX=nxcloud-media/", uploads},
		{"MEDIA_PREFIX", "MEDIA_PREFIX=templates/media/", uploads}, // inside UPLOAD_PREFIX
		{"ARCHIVE_PREFIX", "ARCHIVE_PREFIX=media/", uploads},       // the same as MEDIA_PREFIX
		{"MEDIA_BUCKET", "-MEDIA_BUCKET", sessions},
		{"MEDIA_BUCKET", "MEDIA_BUCKET=Not_A_Bucket", sessions},
		{"UPLOAD_URL_TTL", "UPLOAD_URL_TTL=soon", sessions},
		{"UPLOAD_URL_TTL", "UPLOAD_URL_TTL=200h", sessions},
		{"MAX_UPLOAD_BYTES", "MAX_UPLOAD_BYTES=0", sessions},
		{"UPLOAD_PREFIX", "UPLOAD_PREFIX=templates", sessions},
		{"NXCLOUD_BUSINESS_PHONE", "NXCLOUD_BUSINESS_PHONE=12", sessions},
	} {
		for _, fn := range tc.fns {
			t.Run(tc.change+" "+fn, func(t *testing.T) {
				t.Parallel()
				rt, _, err := startRuntime(t, fn, tc.change)
				if err == nil {
					_ = rt.Close()
					t.Fatalf("init succeeded with %s", tc.change)
				}
				var ie *lambdart.InitError
				if !errors.As(err, &ie) {
					t.Fatalf("error %v is not an init failure", err)
				}
				if !strings.Contains(ie.Message, tc.variable) {
					t.Errorf("the init error %q (%s) does not name %s", ie.Message, ie.Type, tc.variable)
				}
			})
		}
	}
}

// TestConfigVariants: good non-default values work end to end:
// NXCLOUD_SIGN_ALGORITHM=sha256 signs with SHA-256 and sends the algorithm
// header (the local NXCloud verifies it), and a base URL with a trailing
// slash still reaches the API.
func TestConfigVariants(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		change, algorithm string
	}{
		{"NXCLOUD_SIGN_ALGORITHM=sha256", "sha256"},
		{"NXCLOUD_SIGN_ALGORITHM=md5", ""},
		{"NXCLOUD_BASE_URL=" + st.NXCloudURL + "/", ""},
	} {
		t.Run(tc.change, func(t *testing.T) {
			t.Parallel()
			rt := mustRuntime(t, localstack.GetMediaFunction, tc.change)
			id := addMedia(t, "variant.pdf", "application/pdf")
			r := invokeAPI(t, rt.Invoke, localstack.MediaEvent(http.MethodGet, mediaPath(id, "business_phone="+phone)))
			if r.Status != http.StatusOK {
				t.Fatalf("GET with %s = %s, want 200", tc.change, r)
			}
			calls := callsOf(nxcloud.ActionGetMedia, id)
			if len(calls) != 1 || !calls[0].Verified || calls[0].Header.Get("algorithm") != tc.algorithm {
				t.Errorf("NXCloud calls %+v, want one verified call with algorithm header %q", calls, tc.algorithm)
			}
		})
	}
}
