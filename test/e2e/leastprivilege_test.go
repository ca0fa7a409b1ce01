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

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localstack"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
)

// The suite's least-privilege check runs in TestMain, once every test has
// run: the functions run with credentials that carry exactly their policy
// in template.yaml (MinIO users, the local Secrets Manager), every S3 and
// Secrets Manager request they make is recorded with the IAM actions S3
// authorizes it with, and the suite fails on a request their policy does
// not grant and on a grant no request needs. The tests below exercise the
// grants of paths the other tests do not take, for both destinations.

// destination is one upload destination: the function of its events, the
// variable of its prefix, its NXCloud action and a file it takes.
type destination struct {
	name, fn, prefixVar, action, file, contentType string
}

var destinations = []destination{
	{"template", localstack.UploadTemplateFileFunction, "UPLOAD_PREFIX", nxcloud.ActionUploadTemplateFile, "menu.pdf", "application/pdf"},
	{"message", localstack.UploadMediaFunction, "MEDIA_PREFIX", nxcloud.ActionUploadMedia, "photo.jpg", "image/jpeg"},
}

// sweepOf is a sweep of fresh prefixes (no notification serves them) with d's
// prefix the one returned; changes go to its environment.
func sweepOf(t *testing.T, d destination, changes ...string) (invoker, string) {
	t.Helper()
	up, media := "sweep-"+randomID(6)+"/", "sweep-m-"+randomID(6)+"/"
	fn, _ := sweeper(t, up, "1ms", append([]string{"MEDIA_PREFIX=" + media}, changes...)...)
	if d.prefixVar == "MEDIA_PREFIX" {
		return fn, media
	}
	return fn, up
}

// put stores a file of d under prefix.
func (d destination) put(t *testing.T, prefix string, mod func(*s3.PutObjectInput)) (string, []byte, *s3.PutObjectOutput) {
	t.Helper()
	key := prefix + phone + "/" + randomID(6) + "-" + d.file
	body := append([]byte("file "+d.name+" "), randomID(32)...)
	put := putObject(t, testContext(t, 30*time.Second), key, body, func(in *s3.PutObjectInput) {
		in.ContentType = aws.String(d.contentType)
		if mod != nil {
			mod(in)
		}
	})
	return key, body, put
}

// TestReconcileMeetsTheEventsClaim: a sweep that finds the version's claim
// taken between its listing and its own claim (the event's delivery got
// there first) reads that claim, finds the verdict and sends nothing. A gate
// in front of S3 holds the sweep's claim until the delivery is done.
func TestReconcileMeetsTheEventsClaim(t *testing.T) {
	t.Parallel()
	for _, d := range destinations {
		t.Run(d.name, func(t *testing.T) {
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

			fn, prefix := sweepOf(t, d, "AWS_ENDPOINT_URL_S3="+gate.URL)
			key, body, put := d.put(t, prefix, nil)
			direct := mustRuntime(t, d.fn, d.prefixVar+"="+prefix)

			// The sweep's answer is checked here, not in its goroutine
			// (t.Fatal there would leave this test waiting).
			type answer struct {
				res *lambdart.Result
				err error
			}
			done := make(chan answer, 1)
			go func() {
				res, err := fn(ctx, []byte(`{}`))
				done <- answer{res, err}
			}()
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
			a := <-done
			if a.err != nil || a.res.Error != nil {
				t.Fatalf("the sweep: %v, %+v", a.err, a.res.Error)
			}
			if got, want := sweepSummary(t, a.res), (summary{Examined: 1, Pending: 1}); got != want {
				t.Errorf("sweep = %+v, want %+v: the version was decided by its event meanwhile", got, want)
			}
			if n := len(uploadsOf(body)); n != 1 {
				t.Errorf("NXCloud stored the file %d times, want once", n)
			}
		})
	}
}

// TestReconcileKeepsUserTags: a version the sweep sends keeps the tags it
// had; the sweep adds its own.
func TestReconcileKeepsUserTags(t *testing.T) {
	t.Parallel()
	for _, d := range destinations {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 60*time.Second)
			fn, prefix := sweepOf(t, d)
			key, _, put := d.put(t, prefix, func(in *s3.PutObjectInput) { in.Tagging = aws.String("team=menus&source=e2e") })
			if got, want := sweep(t, ctx, fn, `{}`), (summary{Examined: 1, Pending: 1, Uploaded: 1}); got != want {
				t.Errorf("sweep = %+v, want %+v", got, want)
			}
			tags := objectTags(t, ctx, st.Bucket, key, aws.ToString(put.VersionId))
			if tags["team"] != "menus" || tags["source"] != "e2e" || tags["nxcloud-status"] != "uploaded" || tags["nxcloud-media-id"] == "" {
				t.Errorf("tags %v: want the user's team and source kept beside nxcloud-status=uploaded and the media id", tags)
			}
		})
	}
}

// TestTransientFailureReleasesTheClaim: a send NXCloud fails (HTTP 503)
// releases the version's claim, so that the next attempt claims it at once:
// Lambda's retry of the upload function, and the sweep's next run (the run
// that failed ends with an error, so its alarm fires).
func TestTransientFailureReleasesTheClaim(t *testing.T) {
	for _, d := range destinations {
		t.Run(d.name+" event", func(t *testing.T) {
			serial(t, d.action)
			ctx := testContext(t, 60*time.Second)
			prefix := "direct-" + randomID(6) + "/"
			fn := mustRuntime(t, d.fn, d.prefixVar+"="+prefix)
			key, body, put := d.put(t, prefix, nil)
			st.NXCloud.Inject(d.action, nxcloudtest.Fault{HTTPStatus: 503})
			ev := eventFor(st.Bucket, key, len(body), put)
			if ferr := invokeUpload(t, ctx, fn.Invoke, ev); ferr == nil {
				t.Fatal("the first attempt succeeded against NXCloud's 503")
			}
			if c := claimsUnder(t, key); c != 0 {
				t.Errorf("%d claims left after the failed attempt, want it released", c)
			}
			if ferr := invokeUpload(t, ctx, fn.Invoke, ev); ferr != nil {
				t.Fatalf("the retry failed: %s", ferr.Message)
			}
			if tags := objectTags(t, ctx, st.Bucket, key, ""); tags["nxcloud-status"] != "uploaded" || len(uploadsOf(body)) != 1 {
				t.Errorf("after the retry: tags %v, stored %d times; want uploaded once", tags, len(uploadsOf(body)))
			}
		})
		t.Run(d.name+" sweep", func(t *testing.T) {
			serial(t, d.action)
			ctx := testContext(t, 60*time.Second)
			fn, prefix := sweepOf(t, d)
			key, body, _ := d.put(t, prefix, nil)
			st.NXCloud.Inject(d.action, nxcloudtest.Fault{HTTPStatus: 503})
			res, err := fn(ctx, []byte(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			if res.Error == nil {
				t.Errorf("the sweep whose send failed answered %s: want an error, so that its alarm fires", res.Payload)
			}
			if c := claimsUnder(t, key); c != 0 {
				t.Errorf("%d claims left after the failed send, want it released", c)
			}
			if got, want := sweep(t, ctx, fn, `{}`), (summary{Examined: 1, Pending: 1, Uploaded: 1}); got != want {
				t.Errorf("next sweep = %+v, want %+v", got, want)
			}
			if n := len(uploadsOf(body)); n != 1 {
				t.Errorf("NXCloud stored the file %d times, want once", n)
			}
		})
	}
}

// claimsUnder counts the claim objects of the versions of key.
func claimsUnder(t *testing.T, key string) int {
	t.Helper()
	out, err := st.S3Client().ListObjectsV2(testContext(t, 10*time.Second), &s3.ListObjectsV2Input{Bucket: aws.String(st.Bucket), Prefix: aws.String("nxcloud-claims/" + key)})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Contents)
}
