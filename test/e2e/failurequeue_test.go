package e2e_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localstack"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
)

// TestFailureRecord: an upload event whose every attempt failed is in the
// local failure queue as Lambda's on-failure destination record, the body
// of the SQS message operators read in AWS: version, timestamp,
// requestContext (requestId, functionArn, condition RetriesExhausted,
// approximateInvokeCount), requestPayload (the event), responseContext
// (statusCode, executedVersion, functionError) and responsePayload (the
// last error's errorMessage and errorType), and nothing else.
func TestFailureRecord(t *testing.T) {
	serial(t, uploadAction)
	ctx := testContext(t, 60*time.Second)
	key := st.Prefix + phone + "/record-" + randomID(6) + ".pdf"
	failed := len(st.Failed())
	st.NXCloud.Inject(uploadAction, nxcloudtest.Fault{HTTPStatus: 500, Times: retryAttempts + 1})
	body := randomPDF()
	put := putObject(t, ctx, key, body, nil)
	for deadline := time.Now().Add(tagWait); len(st.Failed()) == failed && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if err := st.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}

	r := apiCall(t, http.MethodGet, localstack.FailureQueuePath)
	var records []map[string]json.RawMessage
	if err := json.Unmarshal(r.Body, &records); err != nil || r.Status != http.StatusOK {
		t.Fatalf("GET %s = %s: want a JSON array of records", localstack.FailureQueuePath, r)
	}
	var rec map[string]json.RawMessage
	for _, c := range records {
		if strings.Contains(string(c["requestPayload"]), "record-") && strings.Contains(string(c["requestPayload"]), aws.ToString(put.VersionId)) {
			rec = c
		}
	}
	if rec == nil {
		t.Fatalf("no record of the event in the failure queue: %s", r.Body)
	}
	members := func(raw json.RawMessage) (map[string]any, []string) {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s is not an object", raw)
		}
		return m, slices.Sorted(maps.Keys(m))
	}
	top, keys := members(mustJSON(t, rec))
	if want := []string{"requestContext", "requestPayload", "responseContext", "responsePayload", "timestamp", "version"}; !slices.Equal(keys, want) {
		t.Errorf("members %v, want %v", keys, want)
	}
	if top["version"] != "1.0" {
		t.Errorf("version %v, want 1.0", top["version"])
	}
	if ts, _ := top["timestamp"].(string); !strings.HasSuffix(ts, "Z") {
		t.Errorf("timestamp %q, want RFC 3339 in UTC", ts)
	} else if at, err := time.Parse(time.RFC3339Nano, ts); err != nil || time.Since(at) > time.Minute {
		t.Errorf("timestamp %q: %v, want the time of the last attempt", ts, err)
	}
	rc, keys := members(rec["requestContext"])
	if want := []string{"approximateInvokeCount", "condition", "functionArn", "requestId"}; !slices.Equal(keys, want) {
		t.Errorf("requestContext members %v, want %v", keys, want)
	}
	if rc["condition"] != "RetriesExhausted" || rc["approximateInvokeCount"] != float64(retryAttempts+1) ||
		rc["functionArn"] != lambdart.FunctionARN(localstack.UploadTemplateFileFunction)+":$LATEST" || rc["requestId"] == "" {
		t.Errorf("requestContext %v, want RetriesExhausted after %d attempts of %s", rc, retryAttempts+1, localstack.UploadTemplateFileFunction)
	}
	var ev struct {
		Records []struct {
			S3 struct {
				Object struct {
					VersionID string `json:"versionId"`
				} `json:"object"`
			} `json:"s3"`
		} `json:"Records"`
	}
	if err := json.Unmarshal(rec["requestPayload"], &ev); err != nil || len(ev.Records) != 1 || ev.Records[0].S3.Object.VersionID != aws.ToString(put.VersionId) {
		t.Errorf("requestPayload %s, want the S3 event of the version", rec["requestPayload"])
	}
	rsc, keys := members(rec["responseContext"])
	if want := []string{"executedVersion", "functionError", "statusCode"}; !slices.Equal(keys, want) ||
		rsc["statusCode"] != float64(200) || rsc["executedVersion"] != "$LATEST" || rsc["functionError"] != "Unhandled" {
		t.Errorf("responseContext %v, want statusCode 200, executedVersion $LATEST, functionError Unhandled", rsc)
	}
	rp, keys := members(rec["responsePayload"])
	if msg, _ := rp["errorMessage"].(string); !slices.Equal(keys, []string{"errorMessage", "errorType"}) || !strings.Contains(msg, "500") || rp["errorType"] == "" {
		t.Errorf("responsePayload %v, want the last attempt's errorMessage (NXCloud's 500) and errorType", rp)
	}
	// Once NXCloud is back, the sweep or a redelivery of requestPayload sends it.
	drainFaults(t, uploadAction)
	st.Enqueue(rec["requestPayload"])
	if err := st.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if tags := objectTags(t, ctx, st.Bucket, key, ""); tags["nxcloud-status"] != "uploaded" {
		t.Errorf("redelivery of the record's requestPayload: tags %v, want uploaded", tags)
	}
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
