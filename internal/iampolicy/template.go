package iampolicy

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/awslabs/goformation/v7/intrinsics"
)

// Deployment is what a template's intrinsic functions resolve to for one
// deployment of the stack.
type Deployment struct {
	// Pseudo are the pseudo parameters: AWS::AccountId, AWS::Region,
	// AWS::Partition, AWS::URLSuffix, AWS::StackName, AWS::StackId.
	Pseudo map[string]string
	// Parameters override the template's parameter defaults.
	Parameters map[string]string
	// Refs are the values of !Ref of resources by logical id, and Attrs of
	// !GetAtt by "LogicalId.Attribute"; a resource named in neither stays
	// symbolic: {"Ref": id}, {"Fn::GetAtt": [id, attr]}, and ${Id} or
	// ${Id.Attr} in a !Sub string.
	Refs, Attrs map[string]string
}

// yamlMu serializes goformation's YAML reader, which registers its tags in
// global state.
var yamlMu sync.Mutex

// ProcessYAML is goformation's intrinsics.ProcessYAML, one call at a time
// in the process (it registers its YAML tags in global state): every reader
// of a template in a process goes through it.
func ProcessYAML(template []byte, opts *intrinsics.ProcessorOptions) ([]byte, error) {
	yamlMu.Lock()
	defer yamlMu.Unlock()
	return intrinsics.ProcessYAML(template, opts)
}

// Evaluate reads a CloudFormation (SAM) template, YAML with short-form tags
// or JSON, and resolves it for d with goformation's intrinsic processor:
// every parameter has its default unless d overrides it, the conditions are
// evaluated, a resource whose Condition is false is gone, Fn::If,
// Fn::Equals, Fn::Not, Fn::And, Fn::Or, Fn::Select, Fn::Split, Fn::Join and
// Fn::Sub (both forms, with pseudo parameters and resources) are resolved,
// and AWS::NoValue becomes null.
func Evaluate(template []byte, d Deployment) (map[string]any, error) {
	long, err := ProcessYAML(template, &intrinsics.ProcessorOptions{NoProcess: true})
	if err != nil {
		return nil, err
	}
	var tpl map[string]any
	if err := json.Unmarshal(long, &tpl); err != nil {
		return nil, err
	}
	// goformation's processor replaces any mapping with a "Condition" key by
	// that condition's value: take the resources' conditions out first.
	resources, _ := tpl["Resources"].(map[string]any)
	conditions := map[string]string{}
	for id, r := range resources {
		if m, ok := r.(map[string]any); ok {
			if c, ok := m["Condition"].(string); ok {
				conditions[id] = c
				delete(m, "Condition")
			}
		}
	}
	overrides := map[string]any{}
	for k, v := range d.Parameters {
		if params, _ := tpl["Parameters"].(map[string]any); params[k] == nil {
			return nil, fmt.Errorf("the template has no parameter %s", k)
		}
		overrides[k] = v
	}
	ref := func(name string, tpl any) any {
		if v, ok := d.Pseudo[name]; ok {
			return v
		}
		if v, ok := d.Refs[name]; ok {
			return v
		}
		if _, ok := resources[name]; ok {
			return map[string]any{"Ref": name}
		}
		return intrinsics.Ref("Ref", name, tpl) // a parameter; nil for AWS::NoValue
	}
	getAtt := func(res, attr string) any {
		if v, ok := d.Attrs[res+"."+attr]; ok {
			return v
		}
		return map[string]any{"Fn::GetAtt": []any{res, attr}}
	}
	handlers := map[string]intrinsics.IntrinsicHandler{
		"Ref": func(_ string, in, tpl any) any { name, _ := in.(string); return ref(name, tpl) },
		"Fn::GetAtt": func(_ string, in, _ any) any {
			var r, a string
			switch x := in.(type) {
			case string:
				r, a, _ = strings.Cut(x, ".")
			case []any:
				if len(x) == 2 {
					r, _ = x[0].(string)
					a, _ = x[1].(string)
				}
			}
			return getAtt(r, a)
		},
		// goformation's Fn::Split returns a []string, which its Fn::Select
		// cannot index.
		"Fn::Split": func(_ string, in, _ any) any {
			args, _ := in.([]any)
			if len(args) != 2 {
				return nil
			}
			sep, _ := args[0].(string)
			s, _ := args[1].(string)
			var out []any
			for _, p := range strings.Split(s, sep) {
				out = append(out, p)
			}
			return out
		},
		// goformation's Fn::Sub resolves no pseudo parameter in the
		// two-argument form and deletes ${Resource}.
		"Fn::Sub": func(_ string, in, tpl any) any {
			vars := map[string]any{}
			if args, ok := in.([]any); ok && len(args) == 2 {
				in = args[0]
				vars, _ = args[1].(map[string]any)
			}
			s, _ := in.(string)
			return subVar.ReplaceAllStringFunc(s, func(m string) string {
				name := m[2 : len(m)-1]
				if lit, ok := strings.CutPrefix(name, "!"); ok {
					return "${" + lit + "}" // ${!Literal} is written ${Literal}
				}
				v, ok := vars[name]
				if !ok {
					if r, a, isAtt := strings.Cut(name, "."); isAtt {
						v = getAtt(r, a)
					} else {
						v = ref(name, tpl)
					}
				}
				switch x := v.(type) {
				case string:
					return x
				case float64, bool: // a Number parameter, a boolean
					return fmt.Sprint(x)
				}
				return m
			})
		},
	}
	b, err := json.Marshal(tpl)
	if err != nil {
		return nil, err
	}
	out, err := intrinsics.ProcessJSON(b, &intrinsics.ProcessorOptions{
		ParameterOverrides: overrides, EvaluateConditions: true, IntrinsicHandlerOverrides: handlers,
	})
	if err != nil {
		return nil, err
	}
	var evaluated map[string]any
	if err := json.Unmarshal(out, &evaluated); err != nil {
		return nil, err
	}
	evaluatedResources, _ := evaluated["Resources"].(map[string]any)
	for id, c := range conditions {
		v, ok := at(evaluated, "Conditions", c).(bool)
		if !ok {
			return nil, fmt.Errorf("condition %s of %s does not evaluate to a boolean", c, id)
		}
		if !v {
			delete(evaluatedResources, id)
		}
	}
	return evaluated, nil
}

// subVar is a ${Name} or ${Name.Attribute} of a Fn::Sub string.
var subVar = regexp.MustCompile(`\$\{(!?[A-Za-z0-9_:.]+)\}`)

// Local is a run of the stack on this machine: its resources are local ones.
type Local struct {
	// Buckets maps the logical ids of the template's AWS::S3::Bucket
	// resources to the local buckets. In AWS a bucket has the name its
	// BucketName gives it (nxcloud-media-<account>-<region>-<stack suffix>,
	// spelled with !Sub in the policies); locally every ARN of that name
	// names the local bucket instead, and so do !Ref and !GetAtt .Arn of it.
	Buckets map[string]string
	// Refs are the values of !Ref of other resources (NxcloudSecret: the
	// local secret's ARN).
	Refs map[string]string
	// Parameters override the template's defaults (UploadPrefix, ...).
	Parameters map[string]string
}

// The pseudo parameters of a local run.
const (
	LocalAccount   = "000000000000"
	LocalRegion    = "us-east-1"
	LocalStackName = "nxcloud-media-local"
	localStackID   = "arn:aws:cloudformation:us-east-1:000000000000:stack/nxcloud-media-local/6c0ca1e0-0000-4000-8000-10ca1000c0de"
)

// Load reads every AWS::Serverless::Function of a template (Evaluate) and
// returns, by logical id, the policy its Policies grant, resolved for
// the local run l (an AWS::Serverless::Function without Policies gets an
// empty one). Only inline policy documents can be resolved here: a managed
// policy or a SAM policy template is an error naming the function, as is a
// statement the local evaluation cannot honour (see Statement).
func Load(template []byte, l Local) (map[string]Policy, error) {
	d := Deployment{
		Pseudo: map[string]string{
			"AWS::AccountId": LocalAccount, "AWS::Region": LocalRegion, "AWS::Partition": "aws",
			"AWS::URLSuffix": "amazonaws.com", "AWS::StackName": LocalStackName, "AWS::StackId": localStackID,
		},
		Parameters: l.Parameters,
		Refs:       maps.Clone(l.Refs),
		Attrs:      map[string]string{},
	}
	if d.Refs == nil {
		d.Refs = map[string]string{}
	}
	for id, bucket := range l.Buckets {
		d.Refs[id], d.Attrs[id+".Arn"] = bucket, "arn:aws:s3:::"+bucket
	}
	tpl, err := Evaluate(template, d)
	if err != nil {
		return nil, err
	}
	resources, _ := tpl["Resources"].(map[string]any)
	// The names the buckets have in AWS, and the local bucket of each.
	deployed := map[string]string{}
	for id, bucket := range l.Buckets {
		if at(resources, id, "Type") != "AWS::S3::Bucket" {
			return nil, fmt.Errorf("%s is not an AWS::S3::Bucket of the template", id)
		}
		if name, ok := at(resources, id, "Properties", "BucketName").(string); ok {
			deployed[name] = bucket
		}
	}
	out := map[string]Policy{}
	for _, id := range slices.Sorted(maps.Keys(resources)) {
		if at(resources, id, "Type") != "AWS::Serverless::Function" {
			continue
		}
		p, err := functionPolicy(id, at(resources, id, "Properties", "Policies"), deployed)
		if err != nil {
			return nil, err
		}
		out[id] = p
	}
	return out, nil
}

// functionPolicy is the policy of a function's Policies (a policy or a
// list of them), with the ARNs of the deployed buckets naming the local ones.
func functionPolicy(id string, policies any, deployed map[string]string) (Policy, error) {
	p := Policy{Function: id}
	list, ok := policies.([]any)
	if !ok && policies != nil {
		list = []any{policies}
	}
	for i, raw := range list {
		doc, isDoc := raw.(map[string]any)
		switch {
		case !isDoc:
			return p, fmt.Errorf("%s: policy %v is a managed policy: only inline policy documents can be granted locally", id, raw)
		case doc["Statement"] == nil:
			return p, fmt.Errorf("%s: policy %d has no Statement (a SAM policy template?): only inline policy documents can be granted locally", id, i)
		}
		sts, ok := doc["Statement"].([]any)
		if !ok {
			sts = []any{doc["Statement"]}
		}
		for _, raw := range sts {
			st, err := parseStatement(raw)
			if err != nil {
				return p, fmt.Errorf("%s: %w", id, err)
			}
			for j, r := range st.Resource {
				st.Resource[j] = localARN(r, deployed)
			}
			p.Statements = append(p.Statements, st)
		}
	}
	return p, nil
}

// localARN names the local bucket in an S3 ARN of a deployed bucket.
func localARN(arn string, deployed map[string]string) string {
	const s3 = "arn:aws:s3:::"
	rest, ok := strings.CutPrefix(arn, s3)
	if !ok {
		return arn
	}
	name, key, hasKey := strings.Cut(rest, "/")
	local, ok := deployed[name]
	if !ok {
		return arn
	}
	if hasKey {
		return s3 + local + "/" + key
	}
	return s3 + local
}

// parseStatement reads one evaluated statement.
func parseStatement(raw any) (Statement, error) {
	m, ok := raw.(map[string]any)
	if !ok {
		return Statement{}, fmt.Errorf("statement %v is not an object", raw)
	}
	st := Statement{}
	st.Sid, _ = m["Sid"].(string)
	name := cmp.Or(st.Sid, fmt.Sprint(m["Action"]))
	for _, k := range []string{"NotAction", "NotResource", "Condition", "Principal", "NotPrincipal"} {
		if m[k] != nil {
			return st, fmt.Errorf("statement %s: %s is not evaluated locally: grant with Action and Resource only", name, k)
		}
	}
	st.Effect, _ = m["Effect"].(string)
	if st.Effect != Allow && st.Effect != Deny {
		return st, fmt.Errorf("statement %s: Effect %v, want Allow or Deny", name, m["Effect"])
	}
	var err error
	if st.Action, err = strings1(m["Action"]); err != nil || len(st.Action) == 0 {
		return st, fmt.Errorf("statement %s: Action %v is not one or more strings", name, m["Action"])
	}
	if st.Resource, err = strings1(m["Resource"]); err != nil || len(st.Resource) == 0 {
		return st, fmt.Errorf("statement %s: Resource %v does not resolve to ARNs locally (a !Ref or !GetAtt of a resource the local run does not have?)", name, m["Resource"])
	}
	return st, nil
}

// strings1 reads a string or a list of strings.
func strings1(v any) ([]string, error) {
	switch x := v.(type) {
	case string:
		return []string{x}, nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, errors.New("not a string")
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, errors.New("not a string or a list")
}

// at walks map keys ("Resources", "X", ...); nil when the path does not
// exist.
func at(v any, path ...string) any {
	for _, k := range path {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

// variables returns, for every environment variable a function of the
// template gets from a parameter or a resource (Globals.Function's and its
// own, `UPLOAD_PREFIX: !Ref UploadPrefix`, `MEDIA_BUCKET: !Ref MediaBucket`),
// the name of that parameter or resource, and which of those names are
// parameters.
func variables(template []byte, function string) (vars map[string]string, parameters map[string]bool, err error) {
	long, err := ProcessYAML(template, &intrinsics.ProcessorOptions{NoProcess: true})
	if err != nil {
		return nil, nil, err
	}
	var tpl map[string]any
	if err := json.Unmarshal(long, &tpl); err != nil {
		return nil, nil, err
	}
	if at(tpl, "Resources", function, "Type") != "AWS::Serverless::Function" {
		return nil, nil, fmt.Errorf("%s is not an AWS::Serverless::Function of the template", function)
	}
	out, params := map[string]string{}, map[string]bool{}
	for _, vars := range []any{at(tpl, "Globals", "Function", "Environment", "Variables"), at(tpl, "Resources", function, "Properties", "Environment", "Variables")} {
		m, _ := vars.(map[string]any)
		for k, v := range m {
			delete(out, k) // the function's own value wins over Globals'
			if name, ok := at(v, "Ref").(string); ok {
				out[k] = name
				params[name] = at(tpl, "Parameters", name) != nil
				continue
			}
			// !If [Condition, !Ref A, !Ref B]: the branch that is a parameter
			// (NXCLOUD_SECRET_ID: the stack's secret, or ExistingSecretArn).
			branches, _ := at(v, "Fn::If").([]any)
			for _, b := range branches[min(1, len(branches)):] {
				if name, ok := at(b, "Ref").(string); ok && at(tpl, "Parameters", name) != nil {
					out[k], params[name] = name, true
				}
			}
		}
	}
	return out, params, nil
}

// Deployed returns l changed by a function's environment env, as the
// template would deploy it: each variable of Variables that env sets names
// the value of its parameter (UPLOAD_PREFIX=in/ is UploadPrefix=in/) or of
// its bucket (MEDIA_BUCKET=b is MediaBucket b).
func Deployed(template []byte, function string, env map[string]string, l Local) (Local, error) {
	vars, params, err := variables(template, function)
	if err != nil {
		return l, err
	}
	out := Local{Buckets: maps.Clone(l.Buckets), Refs: l.Refs, Parameters: maps.Clone(l.Parameters)}
	if out.Parameters == nil {
		out.Parameters = map[string]string{}
	}
	for k, name := range vars {
		v, set := env[k]
		switch {
		case !set:
		case out.Buckets[name] != "":
			out.Buckets[name] = v
		case params[name]:
			out.Parameters[name] = v
		}
	}
	return out, nil
}
