package faults_test

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart/lambdarttest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localsm"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localstack"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/miniotest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
)

const (
	module     = "github.com/nxcloud-media-lambda/nxcloud-media-lambda"
	pkgGet     = module + "/functions/get-media"
	pkgDelete  = module + "/functions/delete-media"
	pkgUpload  = module + "/functions/upload-template-file"
	secretName = "nxcloud/faults"
	phone      = "8615812341795"
)

func TestMain(m *testing.M) {
	code := lambdarttest.Main(m)
	miniotest.StopShared()
	writeOutcomes()
	// Across tests too: no output holds a value any test forbade.
	for _, l := range allSecrets.Leaks(allOutput.String()) {
		fmt.Fprintln(os.Stderr, "FAIL: secret in function output:", l)
		code = 1
	}
	os.Exit(code)
}

// allSecrets and allOutput are every value a test forbade and every output
// captured, for TestMain's check.
var (
	allSecrets lambdarttest.Secrets
	allOutput  lambdarttest.Buffer
)

// world is one test's dependencies: a local NXCloud with its own
// credentials, a local Secrets Manager holding them, and the output of
// every function started in it. When the test ends (after its functions
// stopped) the output is checked for secrets and recorded for TestMain.
type world struct {
	t   *testing.T
	nx  *nxcloudtest.Server
	sm  *localsm.Server
	out *lambdarttest.Buffer
	// roles give each function the credentials of its policy in
	// template.yaml (Secrets Manager; S3 too in a bucketWorld).
	roles *localstack.Roles
	// secrets must never appear in out.
	secrets lambdarttest.Secrets
}

// randomHex returns 2n random characters (base32, lower case).
func randomHex(n int) string { return strings.ToLower(rand.Text())[:2*n] }

// newWorld starts NXCloud and Secrets Manager with fresh credentials.
func newWorld(t *testing.T, nxOpts ...nxcloudtest.Option) *world {
	t.Helper()
	key, sec := "AKfault"+randomHex(6), "sk-fault-"+randomHex(12)
	w := &world{t: t, out: &lambdarttest.Buffer{}}
	w.nx = nxcloudtest.NewTestServer(t, append([]nxcloudtest.Option{nxcloudtest.WithCredentials(key, sec)}, nxOpts...)...)
	w.sm = localsm.NewTestServer(t)
	w.putSecret(key, sec)
	w.grant(nil, "")
	// Registered before any function starts, so it runs after they stopped.
	t.Cleanup(w.checkOutput)
	return w
}

// grant makes the functions' credentials those of their policies in
// template.yaml for bucket on m (no S3 rights without m), the local Secrets
// Manager refusing what a policy does not grant.
func (w *world) grant(m *miniotest.Server, bucket string) {
	w.t.Helper()
	root, err := localstack.FindRepoRoot()
	if err != nil {
		w.t.Fatal(err)
	}
	if w.roles, err = localstack.NewRoles(root, m, bucket, w.sm, secretName); err != nil {
		w.t.Fatal(err)
	}
	w.sm.SetAuthorizer(w.roles.Authorize)
}

// putSecret stores the credentials in Secrets Manager (a rotation when a
// value is there already) and adds them to the forbidden strings.
func (w *world) putSecret(key, sec string) {
	b, _ := json.Marshal(map[string]string{"accessKey": key, "accessSecret": sec})
	w.sm.Put(secretName, string(b))
	w.forbid(key, sec, string(b))
}

// rotate makes NXCloud accept only new credentials; with inSecret the new
// value is stored in Secrets Manager too (a complete rotation).
func (w *world) rotate(inSecret bool) (key, sec string) {
	key, sec = "AKrot"+randomHex(6), "sk-rot-"+randomHex(12)
	w.nx.SetCredentials(key, sec)
	w.forbid(key, sec)
	if inSecret {
		w.putSecret(key, sec)
	}
	return key, sec
}

func (w *world) forbid(s ...string) {
	w.secrets.Add(s...)
	allSecrets.Add(s...)
}

// signatures returns the sign header of every call NXCloud received.
func (w *world) signatures() []string {
	var out []string
	for _, c := range w.nx.Calls("") {
		if s := c.Header.Get("sign"); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// checkOutput fails the test when the output holds a secret, an access key
// or a signature, and adds the output to TestMain's check.
func (w *world) checkOutput() {
	w.forbid(append(w.signatures(), miniotest.DefaultSecretKey)...)
	text := w.out.String()
	for _, l := range w.secrets.Leaks(text) {
		w.t.Errorf("function output holds a secret, an access key or a signature: %s", l)
	}
	_, _ = allOutput.Write([]byte(text))
}

// fnOpts are the settings of one function run.
type fnOpts struct {
	name    string        // logical id
	nxURL   string        // NXCLOUD_BASE_URL; default the world's NXCloud
	timeout time.Duration // function timeout; default 5s
	env     []string      // more variables, winning over the defaults
}

// start runs the function built from pkg under the local Runtime API.
func (w *world) start(pkg string, o fnOpts) *lambdart.Runtime {
	w.t.Helper()
	if o.nxURL == "" {
		o.nxURL = w.nx.URL()
	}
	if o.timeout == 0 {
		o.timeout = 5 * time.Second
	}
	env := []string{
		"NXCLOUD_SECRET_ID=" + secretName,
		"NXCLOUD_BASE_URL=" + o.nxURL,
		"NXCLOUD_TIMEOUT=2s",
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + w.sm.URL(),
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_LAMBDA_LOG_LEVEL=DEBUG", // the most output there is to leak from
	}
	// The function's own credentials, for the deployment its variables
	// name; a test's own variables (credentials included) win.
	withRole, err := w.roles.Env(w.t.Context(), o.name, append(env, o.env...))
	if err != nil {
		w.t.Fatalf("credentials of %s: %v", o.name, err)
	}
	for _, kv := range withRole {
		if strings.HasPrefix(kv, "AWS_ACCESS_KEY_ID=") {
			env = append(env, kv)
		}
		if sk, ok := strings.CutPrefix(kv, "AWS_SECRET_ACCESS_KEY="); ok {
			env = append(env, kv)
			w.forbid(sk)
		}
	}
	return lambdarttest.Start(w.t, lambdart.Function{
		Name:    o.name,
		Path:    lambdarttest.Bootstrap(w.t, pkg),
		Timeout: o.timeout,
		Env:     append(env, o.env...),
		Stdout:  w.out,
		Stderr:  w.out,
	})
}

// httpAnswer is what an HTTP function answered.
type httpAnswer struct {
	status  int
	body    string
	code    *int // error.nxcloud_code
	message string
	elapsed time.Duration
	res     *lambdart.Result
}

// invokeHTTP invokes an HTTP function once and decodes its answer; the
// invocation itself must not fail (the function always answers).
func invokeHTTP(t *testing.T, rt *lambdart.Runtime, payload []byte) httpAnswer {
	t.Helper()
	start := time.Now()
	res, err := rt.Invoke(t.Context(), payload)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	a := httpAnswer{elapsed: time.Since(start), res: res}
	if res.Error != nil {
		t.Fatalf("the invocation failed (%s: %s) after %v: the function must answer an HTTP status",
			res.Error.Type, res.Error.Message, a.elapsed)
	}
	resp, err := localstack.ParseAPIGatewayResponse(res.Payload)
	if err != nil {
		t.Fatal(err)
	}
	a.status, a.body = resp.Status, string(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if a.status != 200 {
		var e struct {
			Error *struct {
				Message     string `json:"message"`
				NXCloudCode *int   `json:"nxcloud_code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(resp.Body, &e); err != nil || e.Error == nil || e.Error.Message == "" {
			t.Errorf("status %d with body %s: want the error shape {\"error\":{\"message\":...}}", a.status, resp.Body)
		} else {
			a.code, a.message = e.Error.NXCloudCode, e.Error.Message
		}
	}
	return a
}

// outcomes are the rows of the report written to $FAULTS_REPORT when it
// is set: one fault tried and what was observed.
var outcomes lambdarttest.Buffer

func recordOutcome(area, fault, observed string) {
	fmt.Fprintf(&outcomes, "| %s | %s | %s |\n", area, fault, strings.ReplaceAll(observed, "|", "/"))
}

// writeOutcomes writes the Markdown table of outcomes, by area, to
// $FAULTS_REPORT.
func writeOutcomes() {
	path := os.Getenv("FAULTS_REPORT")
	if path == "" {
		return
	}
	rows := strings.SplitAfter(outcomes.String(), "\n")
	slices.Sort(rows)
	if err := os.WriteFile(path, []byte("| Area | Fault | Observed |\n|---|---|---|\n"+strings.Join(rows, "")), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "faults: writing FAULTS_REPORT:", err)
	}
}
