package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart/lambdarttest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localstack"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/metrics"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/upload"
)

// summary is ReconcileFunction's answer.
type summary struct {
	Examined int `json:"examined"`
	Pending  int `json:"pending"`
	Uploaded int `json:"uploaded"`
	Rejected int `json:"rejected"`
	Failed   int `json:"failed"`
}

// sweeper is an extra ReconcileFunction environment sweeping prefix, a
// prefix of its own so that it sees only its test's objects, and its output.
func sweeper(t *testing.T, prefix, settle string, changes ...string) (invoker, *lambdarttest.Buffer) {
	t.Helper()
	rt, logs := mustRuntimeLog(t, localstack.ReconcileFunction, append([]string{"UPLOAD_PREFIX=" + prefix, "RECONCILE_SETTLE=" + settle}, changes...)...)
	return rt.Invoke, logs
}

// sweep invokes a sweep with event and returns its summary, checking that
// it is exactly the five documented members.
func sweep(t *testing.T, ctx context.Context, fn invoker, event string) summary {
	t.Helper()
	res, err := fn(ctx, []byte(event))
	if err != nil {
		t.Fatalf("invoke the sweep: %v", err)
	}
	if res.Error != nil {
		t.Fatalf("the sweep failed: %s: %s", res.Error.Type, res.Error.Message)
	}
	fmt.Fprintf(output, "e2e answer | sweep -> %s\n", res.Payload)
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(res.Payload, &keys); err != nil {
		t.Fatalf("the sweep answered %s: %v", res.Payload, err)
	}
	if got := slices.Sorted(maps.Keys(keys)); !slices.Equal(got, []string{"examined", "failed", "pending", "rejected", "uploaded"}) {
		t.Errorf("the sweep answered the members %v, want examined, pending, uploaded, rejected, failed", got)
	}
	var s summary
	if err := json.Unmarshal(res.Payload, &s); err != nil {
		t.Fatalf("the sweep answered %s: %v", res.Payload, err)
	}
	return s
}

// emfValues parses the EMF lines of a function's output, failing the test
// on a line that declares metrics but is not valid EMF.
func emfValues(t *testing.T, out string) []metrics.Value {
	t.Helper()
	var vals []metrics.Value
	for _, line := range strings.Split(out, "\n") {
		if i := strings.IndexByte(line, '{'); i >= 0 && strings.Contains(line, `"_aws"`) {
			vs, err := metrics.Parse([]byte(line[i:]))
			if err != nil {
				t.Errorf("an EMF line does not parse as EMF: %v: %s", err, line)
				continue
			}
			vals = append(vals, vs...)
		}
	}
	return vals
}

// hasValue reports a value of metric name with exactly dims, and value when
// value is not negative.
func hasValue(vals []metrics.Value, name string, dims map[string]string, value float64) bool {
	for _, v := range vals {
		if v.Namespace == "NXCloudMedia" && v.Name == name && maps.Equal(v.Dimensions, dims) && (value < 0 || v.Value == value) {
			return true
		}
	}
	return false
}

// TestReconcileMissedEvent: an object whose event never came (stored under a
// prefix no notification serves) is uploaded once by the sweep and tagged;
// the next sweep finds nothing pending and sends nothing. The sweep's log
// carries the metrics as EMF.
func TestReconcileMissedEvent(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	prefix := "sweep-" + randomID(6) + "/"
	fn, logs := sweeper(t, prefix, "1ms")
	key := prefix + phone + "/missed " + randomID(4) + ".pdf"
	body := sized(4096 + len(randomID(3)))
	put := putObject(t, ctx, key, body, nil)

	if got, want := sweep(t, ctx, fn, `{}`), (summary{Examined: 1, Pending: 1, Uploaded: 1}); got != want {
		t.Errorf("first sweep = %+v, want %+v", got, want)
	}
	tags := objectTags(t, ctx, st.Bucket, key, "")
	ups := uploadsOf(body)
	if len(ups) != 1 || tags["nxcloud-status"] != "uploaded" || tags["nxcloud-media-id"] != ups[0].ID {
		t.Fatalf("tags %v, NXCloud holds %d copies: want one upload, tagged with its id", tags, len(ups))
	}
	if ups[0].BusinessPhone != phone || ups[0].FileName != baseName(key) {
		t.Errorf("NXCloud got %+v, want phone %s and file %s", ups[0], phone, baseName(key))
	}
	if rec := recordOf(t, ctx, st.Bucket, key, aws.ToString(put.VersionId)); rec == nil || rec.Status != upload.Uploaded || rec.MediaID != ups[0].ID {
		t.Errorf("record %+v, want uploaded as %s", rec, ups[0].ID)
	}

	// A scheduled event is as good as {}; nothing is pending any more.
	scheduled := `{"version":"0","id":"1","detail-type":"Scheduled Event","source":"aws.events","time":"2026-12-02T10:00:00Z","resources":[],"detail":{}}`
	if got, want := sweep(t, ctx, fn, scheduled), (summary{Examined: 1}); got != want {
		t.Errorf("second sweep = %+v, want %+v", got, want)
	}
	if n := len(uploadCallsOf(body)); n != 1 {
		t.Errorf("NXCloud got %d uploads of the file, want 1", n)
	}

	// Its metrics, as EMF lines in its log.
	var vals []metrics.Value
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if vals = emfValues(t, logs.String()); hasValue(vals, metrics.Uploads, map[string]string{"Outcome": "uploaded"}, 1) {
			break
		}
	}
	for _, w := range []struct {
		name  string
		dims  map[string]string
		value float64
	}{
		{metrics.Uploads, map[string]string{"Outcome": "uploaded"}, 1},
		{metrics.UploadBytes, map[string]string{"Outcome": "uploaded"}, float64(len(body))},
		{metrics.NXCloudLatency, map[string]string{"Action": nxcloud.ActionUploadTemplateFile, "Code": "0"}, -1},
		{metrics.NXCloudLatency, map[string]string{"Action": nxcloud.ActionUploadTemplateFile}, -1},
		{metrics.CredentialRefreshes, map[string]string{"Result": "ok"}, 1},
		{metrics.ColdStarts, map[string]string{"FunctionName": localstack.ReconcileFunction}, 1},
	} {
		if !hasValue(vals, w.name, w.dims, w.value) {
			t.Errorf("no EMF value %s %v = %v in the sweep's log", w.name, w.dims, w.value)
		}
	}
}

func baseName(key string) string { return key[strings.LastIndexByte(key, '/')+1:] }

// TestReconcileUploadMetrics: the upload function's log carries the
// uploads by outcome and the bytes sent as EMF.
func TestReconcileUploadMetrics(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	body := sized(5000 + int(randomID(2)[0]))
	key := st.Prefix + phone + "/metrics-" + randomID(6) + ".pdf"
	putObject(t, ctx, key, body, nil)
	if tags := waitTags(t, ctx, key); tags["nxcloud-status"] != "uploaded" {
		t.Fatalf("tags = %v", tags)
	}
	var own bytes.Buffer
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		own.Reset()
		for _, line := range strings.Split(output.String(), "\n") {
			if strings.HasPrefix(line, localstack.UploadTemplateFileFunction+" | ") {
				own.WriteString(line + "\n")
			}
		}
		if hasValue(emfValues(t, own.String()), metrics.UploadBytes, map[string]string{"Outcome": "uploaded"}, float64(len(body))) {
			return
		}
	}
	t.Errorf("the upload function logged no EMF UploadBytes = %d for the upload", len(body))
}

// TestReconcileFailureQueue: an object whose event went to the failure
// queue (NXCloud failing every retry) is uploaded once by the sweep after
// the fault is gone.
func TestReconcileFailureQueue(t *testing.T) {
	action := nxcloud.ActionUploadTemplateFile
	serial(t, action)
	ctx := testContext(t, 90*time.Second)
	id := "fq-" + randomID(6)
	prefix := st.Prefix + phone + "/" + id + "/"
	key := prefix + "menu.pdf"
	body := randomPDF()
	calls := len(st.NXCloud.Calls(action))
	st.NXCloud.Inject(action, nxcloudtest.Fault{HTTPStatus: 503, Times: retryAttempts + 1})
	putObject(t, ctx, key, body, func(in *s3.PutObjectInput) { in.Metadata = map[string]string{"business-phone": phone} })

	queued := func() bool {
		for _, f := range st.Failed() {
			if strings.Contains(string(f.Event), id) { // the key is URL-encoded there
				return true
			}
		}
		return false
	}
	for !queued() {
		if ctx.Err() != nil {
			t.Fatal("the event never reached the failure queue")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(uploadsOf(body)); n != 0 {
		t.Fatalf("NXCloud holds %d copies before the sweep, want none", n)
	}

	fn, _ := sweeper(t, prefix, "1ms")
	if got, want := sweep(t, ctx, fn, `{}`), (summary{Examined: 1, Pending: 1, Uploaded: 1}); got != want {
		t.Errorf("sweep = %+v, want %+v", got, want)
	}
	ups := uploadsOf(body)
	if tags := objectTags(t, ctx, st.Bucket, key, ""); len(ups) != 1 || tags["nxcloud-media-id"] != ups[0].ID {
		t.Errorf("after the sweep: tags %v, %d copies in NXCloud, want one, tagged", tags, len(ups))
	}
	if n := len(callsSince(action, calls)); n != retryAttempts+2 {
		t.Errorf("NXCloud got %d calls, want %d failed and 1 by the sweep", n, retryAttempts+1)
	}
}

// TestReconcileRacesEvent: sweeps running while the object's own event is
// delivered send it once.
func TestReconcileRacesEvent(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 90*time.Second)
	prefix := st.Prefix + phone + "/race-" + randomID(6) + "/"
	a, _ := sweeper(t, prefix, "1ms")
	b, _ := sweeper(t, prefix, "1ms")
	key := prefix + "menu.pdf"
	body := sized(512 << 10)
	put := putObject(t, ctx, key, body, func(in *s3.PutObjectInput) { in.Metadata = map[string]string{"business-phone": phone} })
	// MinIO's event is on its way; one more at the same time, and two sweeps.
	ev := eventFor(st.Bucket, key, len(body), put)
	var wg sync.WaitGroup
	sums := make([]summary, 2)
	for i, fn := range []invoker{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sums[i] = sweep(t, ctx, fn, `{}`)
		}()
	}
	st.Enqueue(ev)
	wg.Wait()
	if tags := waitTags(t, ctx, key); tags["nxcloud-status"] != "uploaded" {
		t.Errorf("tags = %v, want uploaded", tags)
	}
	if err := st.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(uploadCallsOf(body)); n != 1 {
		t.Errorf("NXCloud got %d uploads of the file from two sweeps and two deliveries, want 1", n)
	}
	for i, s := range sums {
		if s.Failed != 0 || s.Uploaded > 1 {
			t.Errorf("sweep %d = %+v: want no failure and at most the one upload", i, s)
		}
	}
}

// TestReconcileLeavesAlone: a version younger than the settle time, an
// uploaded one, a rejected one and one with a live claim are not sent.
func TestReconcileLeavesAlone(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	prefix := "sweep-" + randomID(6) + "/"
	direct := mustRuntime(t, localstack.UploadTemplateFileFunction, "UPLOAD_PREFIX="+prefix)

	uploaded, rejected, claimed, young := prefix+phone+"/uploaded.pdf", prefix+phone+"/rejected.txt", prefix+phone+"/claimed.pdf", prefix+phone+"/young.pdf"
	for _, k := range []string{uploaded, rejected} {
		body := randomPDF()
		ct := "application/pdf"
		if k == rejected {
			ct = "text/plain"
		}
		put := putObject(t, ctx, k, body, func(in *s3.PutObjectInput) { in.ContentType = aws.String(ct) })
		if ferr := invokeUpload(t, ctx, direct.Invoke, eventFor(st.Bucket, k, len(body), put)); ferr != nil {
			t.Fatalf("%s: %s", k, ferr.Message)
		}
	}
	if s := objectTags(t, ctx, st.Bucket, rejected, "")["nxcloud-status"]; s != "rejected" {
		t.Fatalf("%s is %q, want rejected", rejected, s)
	}
	claimedPut := putObject(t, ctx, claimed, randomPDF(), nil)
	fn, _ := sweeper(t, prefix, "2s")
	time.Sleep(3 * time.Second) // all of the above are older than the settle time
	putObject(t, ctx, young, randomPDF(), nil)
	claim, _ := json.Marshal(map[string]any{"bucket": st.Bucket, "key": claimed, "version_id": aws.ToString(claimedPut.VersionId), "owner": "e2e", "lease_ms": 60000})
	putObject(t, ctx, upload.ClaimKey(claimed, aws.ToString(claimedPut.VersionId)), claim, func(in *s3.PutObjectInput) { in.ContentType = aws.String("application/json") })

	calls := len(st.NXCloud.Calls(uploadAction))
	if got, want := sweep(t, ctx, fn, `{}`), (summary{Examined: 4}); got != want {
		t.Errorf("sweep = %+v, want %+v", got, want)
	}
	for _, k := range []string{claimed, young} {
		if tags := objectTags(t, ctx, st.Bucket, k, ""); len(tags) != 0 {
			t.Errorf("%s was touched: tags %v", k, tags)
		}
	}
	for _, c := range callsSince(uploadAction, calls) {
		if strings.Contains(c.FileName, "claimed") || strings.Contains(c.FileName, "young") || strings.Contains(c.FileName, "uploaded") {
			t.Errorf("NXCloud got %s from the sweep", c.FileName)
		}
	}
}

const uploadAction = nxcloud.ActionUploadTemplateFile

// TestReconcileDeadline: a sweep that cannot send everything in time (NXCloud
// answering slowly) answers its summary before the function's deadline and
// leaves the rest to the next run, which sends each version once.
func TestReconcileDeadline(t *testing.T) {
	serial(t, uploadAction)
	ctx := testContext(t, 120*time.Second)
	prefix := "sweep-" + randomID(6) + "/"
	bodies := map[string][]byte{}
	for i := range 12 {
		k := fmt.Sprintf("%s%s/slow-%02d.pdf", prefix, phone, i)
		bodies[k] = randomPDF()
		putObject(t, ctx, k, bodies[k], nil)
	}
	fn, _ := sweeper(t, prefix, "1ms") // its timeout is 10 s
	st.NXCloud.Inject(uploadAction, nxcloudtest.Fault{HTTPStatus: 500, Delay: 3 * time.Second, Times: len(bodies)})
	start := time.Now()
	s := sweep(t, ctx, fn, `{}`)
	t.Logf("the sweep against a slow NXCloud answered %+v after %s", s, time.Since(start).Round(time.Millisecond))
	if took := time.Since(start); took >= httpTimeout {
		t.Errorf("the sweep answered after %s, its timeout is %s", took, httpTimeout)
	}
	if s.Examined != 12 || s.Pending != 12 || s.Uploaded != 0 || s.Failed == 0 || s.Failed >= 12 {
		t.Errorf("sweep against a slow NXCloud = %+v, want 12 pending, some failed, some left", s)
	}
	drainFaults(t, uploadAction)
	if got, want := sweep(t, ctx, fn, `{}`), (summary{Examined: 12, Pending: 12, Uploaded: 12}); got != want {
		t.Errorf("next sweep = %+v, want %+v", got, want)
	}
	for k, b := range bodies {
		if n := len(uploadsOf(b)); n != 1 {
			t.Errorf("%s: %d copies in NXCloud, want 1", k, n)
		}
	}
}
