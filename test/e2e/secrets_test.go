package e2e_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localstack"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
)

// TestSecretMissing: a secret Secrets Manager does not have is a 503 for
// both HTTP functions (fresh Runtimes: nothing cached).
func TestSecretMissing(t *testing.T) {
	t.Parallel()
	missing := "e2e/missing-" + randomID(8)
	for _, tc := range []struct{ fn, event, method string }{
		{localstack.GetMediaFunction, "get-media.json", http.MethodGet},
		{localstack.DeleteMediaFunction, "delete-media.json", http.MethodDelete},
	} {
		rt := mustRuntime(t, tc.fn, "NXCLOUD_SECRET_ID="+missing)
		r := invokeAPI(t, rt.Invoke, readEvent(t, tc.event))
		checkError(t, r, http.StatusServiceUnavailable, nil)

		id := addMedia(t, "nosecret.pdf", "application/pdf")
		r = invokeAPI(t, rt.Invoke, localstack.MediaEvent(tc.method, mediaPath(id, "business_phone="+phone)))
		checkError(t, r, http.StatusServiceUnavailable, nil)
		if n := len(callsOf(nxcloud.ActionGetMedia, id)) + len(callsOf(nxcloud.ActionDeleteMedia, id)); n != 0 {
			t.Errorf("%s called NXCloud %d times without credentials", tc.fn, n)
		}
	}
}

// TestSecretsManagerDown: Secrets Manager refusing the call is a 503
// (serial: the failure is injected into the shared Secrets Manager).
func TestSecretsManagerDown(t *testing.T) {
	faultMu.Lock()
	defer faultMu.Unlock()
	rt := mustRuntime(t, localstack.GetMediaFunction)
	st.Secrets.FailNext(100, "AccessDeniedException", http.StatusBadRequest)
	defer st.Secrets.FailNext(0, "", 0)
	id := addMedia(t, "denied.pdf", "application/pdf")
	r := invokeAPI(t, rt.Invoke, localstack.MediaEvent(http.MethodGet, mediaPath(id, "business_phone="+phone)))
	checkError(t, r, http.StatusServiceUnavailable, nil)
	if n := len(callsOf(nxcloud.ActionGetMedia, id)); n != 0 {
		t.Errorf("NXCloud got %d calls without credentials", n)
	}
}

// TestSecretMalformed: a secret without the expected fields is a 503 whose
// body holds nothing of the secret; the function's log names the field.
func TestSecretMalformed(t *testing.T) {
	t.Parallel()
	r8 := randomID(8)
	for _, tc := range []struct {
		name, value, field string
		parts              []string // parts of the value that must not show
	}{
		{"accessSecret missing", `{"accessKey":"AKmalformed-` + r8 + `"}`, "accessSecret", []string{"AKmalformed-" + r8}},
		{"accessSecret empty", `{"accessKey":"AKempty-` + r8 + `","accessSecret":""}`, "accessSecret", []string{"AKempty-" + r8}},
		{"accessKey missing", `{"accessSecret":"only-secret-` + r8 + `"}`, "accessKey", []string{"only-secret-" + r8}},
		{"not JSON", `plain-text-secret-` + r8, "", []string{"plain-text-secret-" + r8}},
		{"JSON array", `["array-secret-` + r8 + `"]`, "", []string{"array-secret-" + r8}},
		{"the template's placeholders", `{"accessKey":"REPLACE_ME","accessSecret":"REPLACE_ME"}`, "accessKey", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			secrets.Add(tc.value)
			secrets.Add(tc.parts...)
			name := "e2e/malformed-" + randomID(8)
			st.Secrets.Put(name, tc.value)
			rt, logs := mustRuntimeLog(t, localstack.GetMediaFunction, "NXCLOUD_SECRET_ID="+name)
			id := addMedia(t, "malformed.pdf", "application/pdf")
			r := invokeAPI(t, rt.Invoke, localstack.MediaEvent(http.MethodGet, mediaPath(id, "business_phone="+phone)))
			msg := checkError(t, r, http.StatusServiceUnavailable, nil)
			if placeholder := strings.Contains(tc.value, "REPLACE_ME"); placeholder != strings.Contains(msg, "aws secretsmanager put-secret-value") {
				t.Errorf("503 message %q: the put-secret-value fix must be given exactly for the placeholders", msg)
			}
			for _, p := range append([]string{tc.value}, tc.parts...) {
				if strings.Contains(string(r.Body), p) {
					t.Errorf("the 503 body holds part of the secret's value")
				}
			}
			if n := len(callsOf(nxcloud.ActionGetMedia, id)); n != 0 {
				t.Errorf("NXCloud got %d calls with a malformed secret", n)
			}
			// The process's output is read through a pipe: give it a moment.
			for end := time.Now().Add(3 * time.Second); tc.field != "" && !strings.Contains(logs.String(), tc.field) && time.Now().Before(end); {
				time.Sleep(20 * time.Millisecond)
			}
			if tc.field != "" && !strings.Contains(logs.String(), tc.field) {
				t.Errorf("no function log line names the field %s of the malformed secret", tc.field)
			}
		})
	}
}

// TestRotatedSecret: after the credentials change at NXCloud and in the
// secret, warm functions get NXCloud's authentication code once, reload the
// secret, retry, and the caller never sees an error (serial: it changes the
// shared credentials for good).
func TestRotatedSecret(t *testing.T) {
	faultMu.Lock()
	defer faultMu.Unlock()
	ctx := testContext(t, 60*time.Second)

	// Warm every function with the current credentials.
	before := addMedia(t, "before.pdf", "application/pdf")
	if r := apiCall(t, http.MethodGet, mediaPath(before, "business_phone="+phone)); r.Status != http.StatusOK {
		t.Fatalf("GET before the rotation = %s", r)
	}
	if r := apiCall(t, http.MethodDelete, mediaPath(before, "business_phone="+phone)); r.Status != http.StatusOK {
		t.Fatalf("DELETE before the rotation = %s", r)
	}
	warm := randomPDF()
	putObject(t, ctx, st.Prefix+phone+"/rotation-before-"+randomID(6)+".pdf", warm, nil)

	// Rotate.
	key, secret := "AKrotated-"+randomID(12), "rotated-secret-"+randomID(24)
	secrets.Add(key, secret)
	val, _ := json.Marshal(map[string]string{"accessKey": key, "accessSecret": secret})
	secrets.Add(string(val))
	st.NXCloud.SetCredentials(key, secret)
	st.Secrets.Put(st.SecretID, string(val))

	for _, method := range []string{http.MethodGet, http.MethodDelete} {
		action := nxcloud.ActionGetMedia
		if method == http.MethodDelete {
			action = nxcloud.ActionDeleteMedia
		}
		id := addMedia(t, "after.pdf", "application/pdf")
		r := apiCall(t, method, mediaPath(id, "business_phone="+phone))
		checkJSON(t, r)
		if r.Status != http.StatusOK {
			t.Fatalf("%s after the rotation = %s, want 200", method, r)
		}
		calls := callsOf(action, id)
		if len(calls) != 2 || calls[0].Code != nxcloudtest.CodeUnknownAccessKey || calls[1].Code != nxcloudtest.CodeOK ||
			calls[1].Header.Get("accessKey") != key {
			codes := []int{}
			for _, c := range calls {
				codes = append(codes, c.Code)
			}
			t.Errorf("%s: NXCloud codes %v, want [1001 0]: one refused call with the old key, one retry with the new", method, codes)
		}
	}

	// The upload function picks up the rotation too.
	body := randomPDF()
	k := st.Prefix + phone + "/rotation-after-" + randomID(6) + ".pdf"
	putObject(t, ctx, k, body, nil)
	tags := waitTags(t, ctx, k)
	if tags["nxcloud-status"] != "uploaded" {
		t.Fatalf("upload after the rotation: tags %v, want nxcloud-status=uploaded", tags)
	}
	if n := len(uploadsOf(body)); n != 1 {
		t.Errorf("NXCloud stored the file %d times, want 1", n)
	}
	if err := st.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	for _, f := range st.Failed() {
		if strings.Contains(string(f.Event), "rotation-") {
			t.Errorf("an upload around the rotation reached the failure queue: %s", f.Error)
		}
	}
}

// TestLeakCheck: the suite's list of values TestMain checks the whole
// output against holds the stack's credentials (lambdarttest tests the check).
func TestLeakCheck(t *testing.T) {
	t.Parallel()
	if !secrets.Has(localstack.DefaultAccessSecret) || !secrets.Has(localstack.DefaultAccessKey) {
		t.Errorf("the secret list misses the stack's credentials")
	}
}

// TestSecretCache: a warm function keeps its credentials across invocations
// and fetches them again after NXCLOUD_SECRET_TTL (serial: it counts the
// calls of the shared Secrets Manager).
func TestSecretCache(t *testing.T) {
	faultMu.Lock()
	defer faultMu.Unlock()
	const ttl = 1500 * time.Millisecond
	cred := st.NXCloud.Credentials()
	val, _ := json.Marshal(map[string]string{"accessKey": cred.AccessKey, "accessSecret": cred.AccessSecret})
	secrets.Add(string(val))
	name := "e2e/ttl-" + randomID(8)
	st.Secrets.Put(name, string(val))
	rt := mustRuntime(t, localstack.GetMediaFunction, "NXCLOUD_SECRET_ID="+name, "NXCLOUD_SECRET_TTL="+ttl.String())

	get := func() {
		t.Helper()
		id := addMedia(t, "ttl.pdf", "application/pdf")
		if r := invokeAPI(t, rt.Invoke, localstack.MediaEvent(http.MethodGet, mediaPath(id, "business_phone="+phone))); r.Status != http.StatusOK {
			t.Fatalf("GET = %s, want 200", r)
		}
	}
	start := time.Now()
	c0 := st.Secrets.Calls("GetSecretValue")
	get()
	get()
	get()
	if got := st.Secrets.Calls("GetSecretValue") - c0; got != 1 && time.Since(start) < ttl {
		t.Errorf("three invocations within the TTL fetched the secret %d times, want once", got)
	}
	time.Sleep(ttl + 200*time.Millisecond)
	c1 := st.Secrets.Calls("GetSecretValue")
	get()
	if got := st.Secrets.Calls("GetSecretValue") - c1; got != 1 {
		t.Errorf("after NXCLOUD_SECRET_TTL the secret was fetched %d times, want once", got)
	}
}
