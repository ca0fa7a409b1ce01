package e2e_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localstack"
)

// The suite's least-privilege check runs in TestMain, once every test has
// run: the functions run with credentials that carry exactly their policy
// in template.yaml (MinIO users, the local Secrets Manager), every S3 and
// Secrets Manager request they make is recorded with the IAM actions S3
// authorizes it with, and the suite fails on a request their policy does
// not grant and on a grant no request needs. The tests below exercise the
// grants of paths the other tests do not take.

// TestReconcileMeetsTheEventsClaim: a sweep that finds the version's claim
// taken between its listing and its own claim (the event's delivery got
// there first) reads that claim, finds the verdict and sends nothing. A gate
// in front of S3 holds the sweep's claim until the delivery is done.
func TestReconcileMeetsTheEventsClaim(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	target, _ := url.Parse(st.S3Endpoint)
	proxy := httputil.NewSingleHostReverseProxy(target)
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/nxcloud-claims/") {
			select {
			case arrived <- struct{}{}:
			default:
			}
			<-release
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(gate.Close)

	prefix := "sweep-" + randomID(6) + "/"
	key := prefix + phone + "/raced.pdf"
	body := randomPDF()
	put := putObject(t, ctx, key, body, nil) // no event: no notification serves the prefix
	fn, _ := sweeper(t, prefix, "1ms", "AWS_ENDPOINT_URL_S3="+gate.URL)
	direct := mustRuntime(t, localstack.UploadTemplateFileFunction, "UPLOAD_PREFIX="+prefix)

	done := make(chan summary, 1)
	go func() { done <- sweep(t, ctx, fn, `{}`) }()
	select {
	case <-arrived:
	case <-ctx.Done():
		close(release)
		t.Fatal("the sweep never tried to claim the version")
	}
	if ferr := invokeUpload(t, ctx, direct.Invoke, eventFor(st.Bucket, key, len(body), put)); ferr != nil {
		close(release)
		t.Fatalf("the event's delivery failed: %s", ferr.Message)
	}
	close(release)
	if got, want := <-done, (summary{Examined: 1, Pending: 1}); got != want {
		t.Errorf("sweep = %+v, want %+v: the version was decided by its event meanwhile", got, want)
	}
	if n := len(uploadCallsOf(body)); n != 1 {
		t.Errorf("NXCloud got %d uploads of the file, want 1", n)
	}
}

// TestReconcileKeepsUserTags: a version the sweep sends keeps the tags it
// had; the sweep adds its own.
func TestReconcileKeepsUserTags(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	prefix := "sweep-" + randomID(6) + "/"
	fn, _ := sweeper(t, prefix, "1ms")
	key := prefix + phone + "/tagged.pdf"
	put := putObject(t, ctx, key, randomPDF(), func(in *s3.PutObjectInput) { in.Tagging = aws.String("team=menus&source=e2e") })
	if got, want := sweep(t, ctx, fn, `{}`), (summary{Examined: 1, Pending: 1, Uploaded: 1}); got != want {
		t.Errorf("sweep = %+v, want %+v", got, want)
	}
	tags := objectTags(t, ctx, st.Bucket, key, aws.ToString(put.VersionId))
	if tags["team"] != "menus" || tags["source"] != "e2e" || tags["nxcloud-status"] != "uploaded" || tags["nxcloud-media-id"] == "" {
		t.Errorf("tags %v: want the user's team and source kept beside nxcloud-status=uploaded and the media id", tags)
	}
}
