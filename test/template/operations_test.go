package template_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/intrinsics"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/iampolicy"
)

// The tests of this file do not run in parallel: goformation's YAML reader
// registers its tags in a global map, unguarded.

// opsStack is template.yaml as goformation reads it for some parameter
// values: a Ref of a parameter is its value, a Ref of a resource is
// "ref:<LogicalId>", Fn::GetAtt is "getatt:<LogicalId>.<Attribute>", and
// Fn::If takes the branch its condition has for those values.
type opsStack struct {
	tpl   *cloudformation.Template // typed resources
	doc   map[string]any           // the same, as JSON values
	conds map[string]bool
}

func openOpsStack(t *testing.T, params map[string]string) opsStack {
	t.Helper()
	b, err := os.ReadFile(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	rawJSON, err := iampolicy.ProcessYAML(b, &intrinsics.ProcessorOptions{NoProcess: true})
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(rawJSON, &raw); err != nil {
		t.Fatal(err)
	}
	values := map[string]any{}
	overrides := map[string]any{}
	for name, p := range raw["Parameters"].(map[string]any) {
		values[name] = p.(map[string]any)["Default"]
	}
	for k, v := range params {
		if _, ok := values[k]; !ok {
			t.Fatalf("template.yaml has no parameter %s", k)
		}
		values[k], overrides[k] = v, v
	}
	s := opsStack{conds: map[string]bool{}}
	for name := range raw["Conditions"].(map[string]any) {
		s.conds[name] = evalCondition(t, raw, values, name)
	}
	handlers := map[string]intrinsics.IntrinsicHandler{
		"Ref": func(_ string, in, _ any) any {
			if v, ok := values[fmt.Sprint(in)]; ok {
				return v
			}
			if name := fmt.Sprint(in); strings.HasPrefix(name, "AWS::") { // pseudo parameters
				return intrinsics.Ref("Ref", name, nil)
			}
			return "ref:" + fmt.Sprint(in)
		},
		"Fn::GetAtt": func(_ string, in, _ any) any {
			if parts, ok := in.([]any); ok && len(parts) == 2 {
				return fmt.Sprintf("getatt:%v.%v", parts[0], parts[1])
			}
			return "getatt:" + fmt.Sprint(in)
		},
		"Fn::If": func(_ string, in, _ any) any {
			arr, ok := in.([]any)
			if !ok || len(arr) != 3 {
				t.Fatalf("malformed Fn::If %v", in)
			}
			if s.conds[fmt.Sprint(arr[0])] {
				return arr[1]
			}
			return arr[2]
		},
	}
	opts := &intrinsics.ProcessorOptions{ParameterOverrides: overrides, IntrinsicHandlerOverrides: handlers}
	docJSON, err := iampolicy.ProcessYAML(b, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(docJSON, &s.doc); err != nil {
		t.Fatal(err)
	}
	// goformation's types lack AccessLogSettings of AWS::Serverless::HttpApi;
	// the typed template is read without it.
	for _, r := range s.doc["Resources"].(map[string]any) {
		if p, ok := r.(map[string]any)["Properties"].(map[string]any); ok && r.(map[string]any)["Type"] == "AWS::Serverless::HttpApi" {
			delete(p, "AccessLogSettings")
		}
	}
	typed, err := json.Marshal(s.doc)
	if err != nil {
		t.Fatal(err)
	}
	if s.tpl, err = goformation.ParseJSONWithOptions(typed, &intrinsics.ProcessorOptions{NoProcess: true}); err != nil {
		t.Fatalf("goformation: %v", err)
	}
	return s
}

// evalCondition evaluates the template's condition name for the parameter
// values (Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition, Ref).
func evalCondition(t *testing.T, raw map[string]any, values map[string]any, name string) bool {
	t.Helper()
	var eval func(v any) any
	eval = func(v any) any {
		m, ok := v.(map[string]any)
		if !ok || len(m) != 1 {
			return v
		}
		for fn, arg := range m {
			args, _ := arg.([]any)
			switch fn {
			case "Ref":
				return values[fmt.Sprint(arg)]
			case "Condition":
				return evalCondition(t, raw, values, fmt.Sprint(arg))
			case "Fn::Equals":
				return fmt.Sprint(eval(args[0])) == fmt.Sprint(eval(args[1]))
			case "Fn::Not":
				return !eval(args[0]).(bool)
			case "Fn::And", "Fn::Or":
				all := fn == "Fn::And"
				for _, a := range args {
					// goformation reads !Condition X as the bare string X.
					if name, ok := a.(string); ok {
						a = map[string]any{"Condition": name}
					}
					if eval(a).(bool) != all {
						return !all
					}
				}
				return all
			}
			t.Fatalf("condition %s: cannot evaluate %s", name, fn)
		}
		return nil
	}
	b, ok := eval(raw["Conditions"].(map[string]any)[name]).(bool)
	if !ok {
		t.Fatalf("condition %s is not a boolean", name)
	}
	return b
}

// exists reports whether a resource is created: it exists and its
// condition, if any, holds.
func (s opsStack) exists(t *testing.T, id string) bool {
	t.Helper()
	r, ok := s.doc["Resources"].(map[string]any)[id].(map[string]any)
	if !ok {
		return false
	}
	c, has := r["Condition"]
	return !has || s.conds[fmt.Sprint(c)]
}

func (s opsStack) property(id string, path ...string) any {
	v := s.doc["Resources"].(map[string]any)[id]
	for _, p := range append([]string{"Properties"}, path...) {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	return v
}

// The alarms of SPEC.md "Operations", on by default: each watches what its
// name says, fires on the first occurrence in its period, notifies the
// stack's topic when it fires and when it clears, and counts no data as OK.
func TestOperationsAlarms(t *testing.T) {
	s := openOpsStack(t, nil)
	alarms := s.tpl.GetAllCloudWatchAlarmResources()
	type metric struct{ namespace, name, dimension, value string }
	want := map[string]metric{
		"FailureQueueAlarm":      {"AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "getatt:UploadFailureQueue.QueueName"},
		"UploadErrorsAlarm":      {"AWS/Lambda", "Errors", "FunctionName", "ref:UploadTemplateFileFunction"},
		"UploadMediaErrorsAlarm": {"AWS/Lambda", "Errors", "FunctionName", "ref:UploadMediaFunction"},
		"ReconcileErrorsAlarm":   {"AWS/Lambda", "Errors", "FunctionName", "ref:ReconcileFunction"},
		"ApiServerErrorsAlarm":   {"AWS/ApiGateway", "5xx", "ApiId", "ref:HttpApi"},
	}
	wantIDs := append(slices.Collect(maps.Keys(want)), "ThrottlesAlarm")
	if got := slices.Sorted(maps.Keys(alarms)); !slices.Equal(got, slices.Sorted(slices.Values(wantIDs))) {
		t.Errorf("alarms = %v, want %v", got, slices.Sorted(slices.Values(wantIDs)))
	}
	for id, a := range alarms {
		t.Run(id, func(t *testing.T) {
			if !s.exists(t, id) {
				t.Errorf("%s is not created with the default parameters", id)
			}
			if !slices.Equal(a.AlarmActions, []string{"ref:AlarmTopic"}) || !slices.Equal(a.OKActions, []string{"ref:AlarmTopic"}) {
				t.Errorf("AlarmActions %v, OKActions %v: want the stack's AlarmTopic for both", a.AlarmActions, a.OKActions)
			}
			if a.ComparisonOperator != "GreaterThanThreshold" || a.Threshold == nil || *a.Threshold != 0 || a.EvaluationPeriods != 1 {
				t.Errorf("%s %v over %d periods: want > 0 in one period (the first occurrence fires)", a.ComparisonOperator, a.Threshold, a.EvaluationPeriods)
			}
			if a.TreatMissingData == nil || *a.TreatMissingData != "notBreaching" {
				t.Errorf("TreatMissingData = %v, want notBreaching (no data is no trouble)", a.TreatMissingData)
			}
			if a.AlarmDescription == nil || !strings.Contains(*a.AlarmDescription, "README") {
				t.Errorf("AlarmDescription %v does not point at what to do (README)", a.AlarmDescription)
			}
			w, single := want[id]
			if !single {
				return
			}
			if a.Namespace == nil || *a.Namespace != w.namespace || a.MetricName == nil || *a.MetricName != w.name {
				t.Errorf("metric %v/%v, want %s/%s", a.Namespace, a.MetricName, w.namespace, w.name)
			}
			if len(a.Dimensions) != 1 || a.Dimensions[0].Name != w.dimension || a.Dimensions[0].Value != w.value {
				t.Errorf("dimensions %+v, want %s=%s", a.Dimensions, w.dimension, w.value)
			}
			if a.Statistic == nil || (*a.Statistic != "Sum" && *a.Statistic != "Maximum") {
				t.Errorf("statistic %v, want Sum or Maximum", a.Statistic)
			}
		})
	}

	// Throttles: the sum over every function of the stack, so that a new
	// function cannot be left out.
	th := alarms["ThrottlesAlarm"]
	watched := map[string]bool{}
	returned := 0
	for _, q := range th.Metrics {
		if q.ReturnData != nil && *q.ReturnData {
			returned++
			if q.Expression == nil || *q.Expression != "SUM(METRICS())" {
				t.Errorf("ThrottlesAlarm returns %v, want SUM(METRICS())", q.Expression)
			}
		}
		if q.MetricStat == nil {
			continue
		}
		m := q.MetricStat.Metric
		if aws(m.Namespace) != "AWS/Lambda" || aws(m.MetricName) != "Throttles" || q.MetricStat.Stat != "Sum" || len(m.Dimensions) != 1 || m.Dimensions[0].Name != "FunctionName" {
			t.Errorf("ThrottlesAlarm query %s is not the Sum of AWS/Lambda Throttles by FunctionName", q.Id)
			continue
		}
		watched[strings.TrimPrefix(m.Dimensions[0].Value, "ref:")] = true
	}
	if returned != 1 {
		t.Errorf("ThrottlesAlarm returns %d series, want 1", returned)
	}
	if got, want := slices.Sorted(maps.Keys(watched)), slices.Sorted(maps.Keys(s.tpl.GetAllServerlessFunctionResources())); !slices.Equal(got, want) {
		t.Errorf("ThrottlesAlarm watches %v, want every function: %v", got, want)
	}

	// EnableAlarms=false: no alarm, no topic, no subscription, no output
	// naming the topic.
	off := openOpsStack(t, map[string]string{"EnableAlarms": "false", "AlarmEmail": "ops@example.com"})
	for id, r := range off.doc["Resources"].(map[string]any) {
		typ := fmt.Sprint(r.(map[string]any)["Type"])
		if (strings.HasPrefix(typ, "AWS::CloudWatch::") || strings.HasPrefix(typ, "AWS::SNS::")) && off.exists(t, id) {
			t.Errorf("EnableAlarms=false still creates %s (%s)", id, typ)
		}
	}
	if c := off.tpl.Outputs["AlarmTopicArn"].Condition; c == nil || off.conds[*c] {
		t.Errorf("EnableAlarms=false: the AlarmTopicArn output (condition %v) names a topic that does not exist", c)
	}
}

func aws(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// The alarms' topic belongs to the stack; AlarmEmail subscribes an address
// to it, and nobody when empty (the default).
func TestOperationsAlarmTopic(t *testing.T) {
	for _, tc := range []struct {
		email     string
		subscribe bool
	}{{"", false}, {"ops@example.com", true}} {
		s := openOpsStack(t, map[string]string{"AlarmEmail": tc.email})
		if _, err := s.tpl.GetSNSTopicWithName("AlarmTopic"); err != nil || !s.exists(t, "AlarmTopic") {
			t.Errorf("AlarmEmail=%q: no AlarmTopic: %v", tc.email, err)
		}
		var subs []string
		for id, sub := range s.tpl.GetAllSNSSubscriptionResources() {
			if !s.exists(t, id) {
				continue
			}
			subs = append(subs, id)
			if sub.TopicArn != "ref:AlarmTopic" || sub.Protocol != "email" || aws(sub.Endpoint) != tc.email {
				t.Errorf("AlarmEmail=%q: subscription %s = %s %s to %s", tc.email, id, sub.Protocol, aws(sub.Endpoint), sub.TopicArn)
			}
		}
		if got := len(subs) == 1; got != tc.subscribe {
			t.Errorf("AlarmEmail=%q: subscriptions %v, want one: %v", tc.email, subs, tc.subscribe)
		}
	}
	// The address must look like one; empty stays allowed.
	p := openOpsStack(t, nil).tpl.Parameters["AlarmEmail"]
	re := regexp.MustCompile(*p.AllowedPattern)
	for v, ok := range map[string]bool{"": true, "ops@example.com": true, "ops": false, "a@b": false, "a b@c.de": false} {
		if re.MatchString(v) != ok {
			t.Errorf("AlarmEmail %q allowed = %v, want %v", v, !ok, ok)
		}
	}
}

// The sweep runs on ReconcileSchedule (default hourly), which none disables
// without removing the function; the pattern takes EventBridge expressions.
func TestOperationsReconcileSchedule(t *testing.T) {
	for _, tc := range []struct {
		param, schedule, state string
	}{
		{"", "rate(1 hour)", "ENABLED"},
		{"cron(0 3 * * ? *)", "cron(0 3 * * ? *)", "ENABLED"},
		{"none", "", "DISABLED"},
	} {
		params := map[string]string{}
		if tc.param != "" {
			params["ReconcileSchedule"] = tc.param
		}
		s := openOpsStack(t, params)
		evs, _ := s.property("ReconcileFunction", "Events").(map[string]any)
		var schedules []map[string]any
		for _, ev := range evs {
			if ev.(map[string]any)["Type"] == "Schedule" {
				schedules = append(schedules, ev.(map[string]any)["Properties"].(map[string]any))
			}
		}
		if len(schedules) != 1 || len(evs) != 1 {
			t.Fatalf("ReconcileSchedule=%q: ReconcileFunction events %v, want one Schedule", tc.param, evs)
		}
		if got := schedules[0]["State"]; got != tc.state {
			t.Errorf("ReconcileSchedule=%q: State = %v, want %s", tc.param, got, tc.state)
		}
		if got := fmt.Sprint(schedules[0]["Schedule"]); tc.schedule != "" && got != tc.schedule {
			t.Errorf("ReconcileSchedule=%q: Schedule = %s, want %s", tc.param, got, tc.schedule)
		}
		if tc.state == "DISABLED" && !strings.HasPrefix(fmt.Sprint(schedules[0]["Schedule"]), "rate(") {
			t.Errorf("a disabled rule still needs a valid expression, got %v", schedules[0]["Schedule"])
		}
	}
	p := openOpsStack(t, nil).tpl.Parameters["ReconcileSchedule"]
	re := regexp.MustCompile(*p.AllowedPattern)
	for v, ok := range map[string]bool{"rate(1 hour)": true, "rate(15 minutes)": true, "cron(0 3 * * ? *)": true, "none": true, "hourly": false, "": false} {
		if re.MatchString(v) != ok {
			t.Errorf("ReconcileSchedule %q allowed = %v, want %v", v, !ok, ok)
		}
	}
}

// The sweep may do what the upload functions do, plus list the bucket's
// versions and keep its position: nothing else, and nothing on "*". It is not retried (the next
// run is), and may run the longest a function can.
func TestOperationsReconcileLeastPrivilege(t *testing.T) {
	s := openOpsStack(t, nil)
	grants := func(id string) map[string]bool {
		out := map[string]bool{}
		docs, _ := s.property(id, "Policies").([]any)
		if len(docs) == 0 {
			t.Fatalf("%s has no inline policy", id)
		}
		for _, d := range docs {
			sts, _ := d.(map[string]any)["Statement"].([]any)
			for _, st := range sts {
				st := st.(map[string]any)
				if st["Effect"] != "Allow" || st["NotAction"] != nil || st["NotResource"] != nil || st["Condition"] != nil {
					t.Errorf("%s: statement %v is not a plain Allow", id, st["Sid"])
				}
				for _, a := range strList(st["Action"]) {
					for _, r := range strList(st["Resource"]) {
						if strings.Contains(a, "*") || r == "*" || strings.HasSuffix(r, ":::*") {
							t.Errorf("%s: wildcard grant %s on %s", id, a, r)
						}
						out[a+" on "+r] = true
					}
				}
			}
		}
		return out
	}
	upload, sweep := grants("UploadTemplateFileFunction"), grants("ReconcileFunction")
	maps.Copy(upload, grants("UploadMediaFunction"))
	var missing, extra []string
	for g := range upload {
		if !sweep[g] {
			missing = append(missing, g)
		}
	}
	for g := range sweep {
		if !upload[g] {
			extra = append(extra, g)
		}
	}
	slices.Sort(extra)
	const bucket = "arn:${AWS::Partition}:s3:::nxcloud-media-${AWS::AccountId}-${AWS::Region}-${StackSuffix}"
	if len(missing) > 0 {
		t.Errorf("the sweep lacks grants the upload pipeline needs: %v", missing)
	}
	if want := []string{"s3:GetObject on " + bucket + "/nxcloud-sweep/*", "s3:ListBucketVersions on " + bucket, "s3:PutObject on " + bucket + "/nxcloud-sweep/*"}; !slices.Equal(extra, want) {
		t.Errorf("the sweep's grants beyond the upload function's = %v, want %v", extra, want)
	}
	if v := s.property("ReconcileFunction", "EventInvokeConfig", "MaximumRetryAttempts"); v != float64(0) {
		t.Errorf("EventInvokeConfig.MaximumRetryAttempts = %v, want 0: the next run is the retry", v)
	}
	if v := s.property("ReconcileFunction", "Timeout"); v != float64(900) {
		t.Errorf("Timeout = %v, want 900", v)
	}
	env, _ := s.property("ReconcileFunction", "Environment", "Variables").(map[string]any)
	if env["MEDIA_BUCKET"] != "ref:MediaBucket" || env["RECONCILE_SETTLE"] != "15m" {
		t.Errorf("environment %v, want MEDIA_BUCKET of the stack's bucket and RECONCILE_SETTLE 15m", env)
	}
}

func strList(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, len(v))
		for i, x := range v {
			out[i] = fmt.Sprint(x)
		}
		return out
	}
	return []string{fmt.Sprint(v)}
}
