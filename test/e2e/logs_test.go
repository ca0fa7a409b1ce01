package e2e_test

import (
	"encoding/json"
	"maps"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/iampolicy"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localstack"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/app"
)

// templateEvents returns, by function, the Events of template.yaml with
// their properties as deployed with the defaults.
func templateEvents(t *testing.T) map[string]map[string]any {
	t.Helper()
	root, err := localstack.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := iampolicy.Evaluate(b, iampolicy.Deployment{Pseudo: map[string]string{"AWS::StackId": "arn:aws:cloudformation:us-east-1:000000000000:stack/s/6c0ca1e0-0000-4000-8000-10ca1000c0de"}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for id, r := range tpl["Resources"].(map[string]any) {
		if res := r.(map[string]any); res["Type"] == "AWS::Serverless::Function" {
			props, _ := res["Properties"].(map[string]any)
			evs, _ := props["Events"].(map[string]any)
			out[id] = evs
		}
	}
	return out
}

// eventOf builds an event a function gets from its trigger in template.yaml:
// the HTTP API's for its first route (a fresh media id, upload id or sample
// value in the path), S3's for a fresh object under its key filter, the
// schedule's.
func eventOf(t *testing.T, events map[string]any) []byte {
	t.Helper()
	for _, name := range slices.Sorted(maps.Keys(events)) {
		ev, _ := events[name].(map[string]any)
		props, _ := ev["Properties"].(map[string]any)
		switch ev["Type"] {
		case "HttpApi":
			method, _ := props["Method"].(string)
			route, _ := props["Path"].(string)
			params := map[string]string{}
			path := wildcard.ReplaceAllStringFunc(route, func(m string) string {
				name := m[1 : len(m)-1]
				switch name {
				case "mediaId":
					params[name] = addMedia(t, "logs.pdf", "application/pdf")
				case "uploadId":
					params[name] = randomID(32)
				default:
					params[name] = "x"
				}
				return params[name]
			})
			var body []byte
			if strings.EqualFold(method, "POST") {
				body = newSessionBody("logs.pdf", "application/pdf", 100)
			}
			req := httptest.NewRequest(strings.ToUpper(method), path+"?business_phone="+phone, strings.NewReader(string(body)))
			b, _ := json.Marshal(localstack.NewAPIGatewayEvent(req, strings.ToUpper(method)+" "+route, params, body))
			return b
		case "S3":
			prefix := ""
			if rules, ok := props["Filter"].(map[string]any)["S3Key"].(map[string]any)["Rules"].([]any); ok && len(rules) > 0 {
				prefix, _ = rules[0].(map[string]any)["Value"].(string)
			}
			key := prefix + phone + "/logs-" + randomID(6) + ".pdf"
			body := randomPDF()
			put := putObjectIn(t, testContext(t, 30*time.Second), st.Bucket, key, body, nil)
			return eventFor(st.Bucket, key, len(body), put)
		case "Schedule":
			return readEvent(t, "reconcile.json")
		}
	}
	t.Fatalf("no event of a kind this test builds in %v", events)
	return nil
}

var wildcard = regexp.MustCompile(`\{\w+\}`)

// TestLogKeys: every function of the template, built and run as Lambda runs
// it, writes every line with the keys AWS Lambda Powertools users search by:
// timestamp, level, message, service (the stack's name), cold_start (true
// in the first invocation only), function_name, and function_request_id and
// xray_trace_id of the invocation the line belongs to.
func TestLogKeys(t *testing.T) {
	t.Parallel()
	events := templateEvents(t)
	if got, want := slices.Sorted(maps.Keys(events)), slices.Sorted(maps.Keys(localstack.Functions)); !slices.Equal(got, want) {
		t.Fatalf("template functions %v, local stack functions %v: every function must run here", got, want)
	}
	for _, fn := range slices.Sorted(maps.Keys(events)) {
		t.Run(fn, func(t *testing.T) {
			t.Parallel()
			rt, logs := mustRuntimeLog(t, fn)
			var results []*lambdart.Result
			for range 2 {
				res, err := rt.Invoke(testContext(t, httpTimeout+5*time.Second), eventOf(t, events[fn]))
				if err != nil {
					t.Fatal(err)
				}
				results = append(results, res)
			}
			// The lines come through a pipe: wait for both invocations' lines.
			var lines []map[string]any
			seen := map[string]bool{}
			for end := time.Now().Add(5 * time.Second); time.Now().Before(end) && !(seen[results[0].RequestID] && seen[results[1].RequestID]); time.Sleep(20 * time.Millisecond) {
				lines = logs.Lines(t, "")
				for _, l := range lines {
					id, _ := l[app.KeyRequestID].(string)
					seen[id] = true
				}
			}
			for i, res := range results {
				if !seen[res.RequestID] {
					t.Fatalf("no line of invocation %d (%s) in:\n%s", i+1, res.RequestID, logs)
				}
			}
			for _, l := range lines {
				checkLogLine(t, fn, l, results)
			}
		})
	}
}

// checkLogLine checks the keys of one line of fn's output.
func checkLogLine(t *testing.T, fn string, l map[string]any, results []*lambdart.Result) {
	t.Helper()
	for _, k := range []string{app.KeyTimestamp, app.KeyLevel, app.KeyMessage} {
		if s, _ := l[k].(string); s == "" {
			t.Errorf("%s: line without %s: %v", fn, k, l)
		}
	}
	if ts, _ := l[app.KeyTimestamp].(string); ts != "" {
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			t.Errorf("%s: timestamp %q is not RFC 3339", fn, ts)
		}
	}
	if l[app.KeyService] != iampolicy.LocalStackName || l[app.KeyFunction] != fn {
		t.Errorf("%s: service %v, function_name %v; want %s and %s: %v", fn, l[app.KeyService], l[app.KeyFunction], iampolicy.LocalStackName, fn, l)
	}
	i := slices.IndexFunc(results, func(r *lambdart.Result) bool { return r.RequestID == l[app.KeyRequestID] })
	if i < 0 {
		t.Errorf("%s: line with function_request_id %v, not one of the invocations': %v", fn, l[app.KeyRequestID], l)
		return
	}
	if want := app.TraceRoot(results[i].TraceID); l[app.KeyXRayTrace] != want || want == "" {
		t.Errorf("%s: xray_trace_id %v, want the Root of %s: %v", fn, l[app.KeyXRayTrace], results[i].TraceID, l)
	}
	if l[app.KeyColdStart] != (i == 0) {
		t.Errorf("%s: invocation %d: cold_start %v, want %v: %v", fn, i+1, l[app.KeyColdStart], i == 0, l)
	}
}
