package e2e_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart/lambdarttest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localstack"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/miniotest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
)

// Settings of the shared stack: short budgets so that faults are fast.
const (
	nxcloudTimeout = 2 * time.Second
	maxUploadBytes = 1 << 20
	httpTimeout    = 10 * time.Second
	retryDelay     = 200 * time.Millisecond
	retryAttempts  = 2
	phone          = localstack.DefaultPhone
	defaultPhone   = "4915112345678" // NXCLOUD_BUSINESS_PHONE of the extra Runtimes
)

var (
	// st is the stack every test uses.
	st *localstack.Stack
	// output captures everything the stack and the functions print, and
	// every answer the tests received, for the secret check at the end.
	output = &lambdarttest.Buffer{}
	// secrets collects every secret value the suite used.
	secrets = &lambdarttest.Secrets{}
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if _, err := miniotest.FindBinary(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: the end-to-end tests need MinIO: run make minio (%v)\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	var err error
	st, err = localstack.Start(ctx, localstack.Options{
		Env: []string{
			"NXCLOUD_TIMEOUT=" + nxcloudTimeout.String(),
			fmt.Sprintf("MAX_UPLOAD_BYTES=%d", maxUploadBytes),
		},
		HTTPTimeout:       httpTimeout,
		UploadTimeout:     60 * time.Second,
		UploadConcurrency: 3,
		MaxRetryAttempts:  retryAttempts,
		RetryDelay:        retryDelay,
		RecordS3:          true,
		Log:               output,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: starting the local stack: %v\n%s", err, tail(output.String(), 60))
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e: local stack ready in %s\n", time.Since(start).Round(time.Millisecond))
	secrets.Add(localstack.DefaultAccessKey, localstack.DefaultAccessSecret)

	code := m.Run()
	// Stop every process first, so that all of their output is in.
	st.Close()

	// Least privilege: every S3 and Secrets Manager request of the functions
	// is granted by the policy template.yaml gives them, and every grant is
	// needed by a request of the suite (a partial run, -run or -skip,
	// checks only the first).
	lp := st.Roles().Ledger().Check(st.Roles().Policies())
	partial := flag.Lookup("test.run").Value.String() != "" || flag.Lookup("test.skip").Value.String() != ""
	if partial {
		lp.Unneeded = nil
	}
	if lp.Failed() {
		fmt.Fprintf(os.Stderr, "FAIL: least privilege (template.yaml against what the functions did in this suite):\n%s", lp)
		code = 1
	} else {
		fmt.Fprintf(os.Stderr, "e2e: least privilege: every request granted, every grant needed\n%s", lp)
	}

	// Whatever the tests did, no secret may have reached any output.
	if leaks := findLeaks(); len(leaks) > 0 {
		fmt.Fprintln(os.Stderr, "FAIL: secret values appeared in the functions' output or answers:")
		for _, l := range leaks {
			fmt.Fprintln(os.Stderr, "  "+l)
		}
		code = 1
	}
	if code != 0 {
		if f, err := os.CreateTemp("", "nxcloud-e2e-*.log"); err == nil {
			_, _ = f.WriteString(output.String())
			_ = f.Close()
			fmt.Fprintf(os.Stderr, "e2e: the stack's whole output is in %s\n", f.Name())
		}
	}
	return code
}

// findLeaks checks the captured output against every secret value, access
// key and sign header the suite produced.
func findLeaks() []string {
	for _, c := range st.NXCloud.Calls("") {
		secrets.Add(c.Header.Get("sign"), c.Header.Get("accessKey"))
	}
	out := output.String()
	fmt.Fprintf(os.Stderr, "e2e: secret values, access keys and signatures checked against %d bytes of output\n", len(out))
	return secrets.Leaks(out)
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// testContext is a context bounded well within the suite's budget.
func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// randomID returns n (at most 52) random characters, to keep tests apart.
func randomID(n int) string { return strings.ToLower(rand.Text() + rand.Text())[:n] }

func sha256Hex(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }

// readEvent reads a file of events/.
func readEvent(t *testing.T, name string) []byte {
	t.Helper()
	root, err := localstack.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "events", name))
	if err != nil {
		t.Fatalf("reading events/%s: %v", name, err)
	}
	return b
}

// ---------------------------------------------------------------- runtimes

// startRuntime starts one more execution environment of a function with a
// changed environment ("KEY=value" sets a variable, "-KEY" removes it) and
// the credentials of the deployment it names, its output captured with the
// stack's. It is closed when the test ends.
func startRuntime(t *testing.T, logicalID string, changes ...string) (*lambdart.Runtime, *lambdarttest.Buffer, error) {
	t.Helper()
	env, err := st.FunctionEnv(testContext(t, 30*time.Second), logicalID, changes...)
	if err != nil {
		t.Fatalf("the environment of %s with %v: %v", logicalID, changes, err)
	}
	own := &lambdarttest.Buffer{}
	timeout := httpTimeout
	if logicalID == localstack.UploadTemplateFileFunction || logicalID == localstack.UploadMediaFunction {
		timeout = 60 * time.Second
	}
	w := io.MultiWriter(st.Output("extra "+logicalID), own)
	rt, err := lambdart.Start(testContext(t, 30*time.Second), lambdart.Function{
		Name:    logicalID,
		Path:    st.Binary(logicalID),
		Env:     env,
		Timeout: timeout,
		Stdout:  w,
		Stderr:  w,
	})
	if err != nil {
		return nil, own, err
	}
	t.Cleanup(func() { _ = rt.Close() })
	return rt, own, nil
}

// mustRuntime is startRuntime that fails the test on an error.
func mustRuntime(t *testing.T, logicalID string, changes ...string) *lambdart.Runtime {
	t.Helper()
	rt, _ := mustRuntimeLog(t, logicalID, changes...)
	return rt
}

// mustRuntimeLog is mustRuntime that also returns the Runtime's own output.
func mustRuntimeLog(t *testing.T, logicalID string, changes ...string) (*lambdart.Runtime, *lambdarttest.Buffer) {
	t.Helper()
	rt, logs, err := startRuntime(t, logicalID, changes...)
	if err != nil {
		t.Fatalf("starting %s with %v: %v", logicalID, changes, err)
	}
	return rt, logs
}

// ---------------------------------------------------------------- HTTP

// apiResponse is one HTTP answer, through the HTTP API or a direct invoke.
type apiResponse = localstack.APIResponse

// apiCall sends a request to the stack's HTTP API; path is sent as is
// (already escaped).
func apiCall(t *testing.T, method, path string) apiResponse {
	t.Helper()
	return httpCall(t, method, st.APIURL+path, nil, nil)
}

// httpCall makes one request with headers and body, redirects not
// followed, and records the answer in the suite's output.
func httpCall(t *testing.T, method, target string, headers map[string]string, body []byte) apiResponse {
	t.Helper()
	req, err := http.NewRequestWithContext(testContext(t, httpTimeout+5*time.Second), method, target, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v) // Content-Length is the body's own, as curl sends it
	}
	cli := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := cli.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, target, err)
	}
	fmt.Fprintf(output, "e2e answer | %s %s -> %d %s\n", method, target, resp.StatusCode, b)
	return apiResponse{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// invoker is st.Invoke bound to a function, or an extra Runtime.
type invoker func(ctx context.Context, payload []byte) (*lambdart.Result, error)

func stackFunction(logicalID string) invoker {
	return func(ctx context.Context, payload []byte) (*lambdart.Result, error) {
		return st.Invoke(ctx, logicalID, payload)
	}
}

// invokeAPI invokes an HTTP function directly with an API Gateway event and
// decodes its answer.
func invokeAPI(t *testing.T, fn invoker, payload []byte) apiResponse {
	t.Helper()
	res, err := fn(testContext(t, httpTimeout+5*time.Second), payload)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	if res.Error != nil {
		t.Fatalf("invoke: the function failed: %s: %s", res.Error.Type, res.Error.Message)
	}
	fmt.Fprintf(output, "e2e answer | invoke -> %s\n", res.Payload)
	r, err := localstack.ParseAPIGatewayResponse(res.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if r.Base64 {
		t.Fatalf("a JSON answer came base64-encoded: %s", res.Payload)
	}
	return r
}

// checkJSON fails unless the answer is application/json.
func checkJSON(t *testing.T, r apiResponse) {
	t.Helper()
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		t.Errorf("Content-Type = %q, want application/json (answer %s)", r.Header.Get("Content-Type"), r)
	}
	if !json.Valid(r.Body) {
		t.Errorf("the body is not JSON: %s", r)
	}
}

// checkError checks the status and the exact error body shape
// {"error":{"message":"...","nxcloud_code":N}}; code nil means nxcloud_code
// must be absent. It returns the message.
func checkError(t *testing.T, r apiResponse, status int, code *int) string {
	t.Helper()
	checkJSON(t, r)
	if r.Status != status {
		t.Errorf("status = %d, want %d (answer %s)", r.Status, status, r)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(r.Body, &top); err != nil {
		t.Fatalf("the error body is not a JSON object: %s", r)
	}
	if len(top) != 1 || top["error"] == nil {
		t.Fatalf("the error body must be exactly {\"error\":{...}}: %s", r)
	}
	var inner map[string]json.RawMessage
	if err := json.Unmarshal(top["error"], &inner); err != nil {
		t.Fatalf("error is not an object: %s", r)
	}
	for k := range inner {
		if k != "message" && k != "nxcloud_code" {
			t.Errorf("unexpected member error.%s in %s", k, r)
		}
	}
	var msg string
	if err := json.Unmarshal(inner["message"], &msg); err != nil || strings.TrimSpace(msg) == "" {
		t.Errorf("error.message must be a non-empty string: %s", r)
	}
	rawCode, has := inner["nxcloud_code"]
	switch {
	case code == nil && has:
		t.Errorf("nxcloud_code must be absent when NXCloud gave no code: %s", r)
	case code != nil && !has:
		t.Errorf("nxcloud_code %d missing: %s", *code, r)
	case code != nil:
		var got int
		if err := json.Unmarshal(rawCode, &got); err != nil || got != *code {
			t.Errorf("nxcloud_code = %s, want the integer %d", rawCode, *code)
		}
	}
	return msg
}

func intp(i int) *int { return &i }

// ---------------------------------------------------------------- NXCloud

// callsOf returns the NXCloud calls of action that name mediaID.
func callsOf(action, mediaID string) []nxcloudtest.Call {
	var out []nxcloudtest.Call
	for _, c := range st.NXCloud.Calls(action) {
		if c.MediaID == mediaID || bytes.Contains(c.Body, []byte(mediaID)) {
			out = append(out, c)
		}
	}
	return out
}

// callsSince returns the calls of action after the first n.
func callsSince(action string, n int) []nxcloudtest.Call {
	all := st.NXCloud.Calls(action)
	if n > len(all) {
		return nil
	}
	return all[n:]
}

// faultMu keeps the tests that inject faults or change credentials apart;
// they also never run beside the parallel tests (they do not call
// t.Parallel, and parallel tests start only after every serial test ended).
var faultMu sync.Mutex

// serial marks a test that injects NXCloud faults: it holds faultMu and,
// when it ends, removes whatever faults its calls left queued.
func serial(t *testing.T, actions ...string) {
	t.Helper()
	faultMu.Lock()
	t.Cleanup(func() {
		for _, a := range actions {
			drainFaults(t, a)
		}
		faultMu.Unlock()
	})
}

// drainFaults consumes the faults still queued for action with unsigned
// calls of its own, so that they cannot reach a later test.
func drainFaults(t *testing.T, action string) {
	t.Helper()
	hc := &http.Client{Timeout: 100 * time.Millisecond}
	for range 50 {
		n := len(st.NXCloud.Calls(action))
		resp, err := hc.Post(st.NXCloudURL+"/api/wa/"+action, "application/json", strings.NewReader("{}"))
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
		// The call is recorded when the server is done with it.
		deadline := time.Now().Add(2 * time.Second)
		for len(st.NXCloud.Calls(action)) <= n && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		calls := callsSince(action, n)
		if len(calls) == 0 || calls[len(calls)-1].Fault == nil {
			return
		}
	}
	t.Errorf("could not drain the faults queued for %s", action)
}
