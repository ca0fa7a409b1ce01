package template_test

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/awslabs/goformation/v7/intrinsics"
)

// root is the repository root, seen from this package's directory.
var root = filepath.Join("..", "..")

// Paths of the files under test.
var (
	templatePath  = filepath.Join(root, "template.yaml")
	samconfigPath = filepath.Join(root, "samconfig.toml")
	eventsDir     = filepath.Join(root, "events")
)

// The SAM logical ids and their function folders (SPEC.md; fixed names).
var functionDirs = map[string]string{
	"GetMediaFunction":           "get-media",
	"DeleteMediaFunction":        "delete-media",
	"UploadTemplateFileFunction": "upload-template-file",
	"UploadMediaFunction":        "upload-media",
	"UploadSessionsFunction":     "upload-sessions",
	"ReconcileFunction":          "reconcile",
}

// claimPrefix is where the upload function keeps its claim objects, outside
// the trigger prefix.
const claimPrefix = "nxcloud-claims/"

// A doc is a template as generic JSON values (map[string]any, []any, string,
// float64, bool, nil), intrinsic functions in their long form ({"Ref": x},
// {"Fn::Sub": x}, ...).
type doc = map[string]any

// longForm is template.yaml as JSON with the short-form tags in their long
// form, read once: goformation's YAML reader is not safe for concurrent use.
var longForm = sync.OnceValues(func() ([]byte, error) {
	b, err := os.ReadFile(templatePath)
	if err != nil {
		return nil, err
	}
	return intrinsics.ProcessYAML(b, &intrinsics.ProcessorOptions{NoProcess: true})
})

// source is template.yaml as written: short-form tags in their long form,
// nothing evaluated.
func source(t testing.TB) doc {
	t.Helper()
	b, err := longForm()
	if err != nil {
		t.Fatalf("%s: %v", templatePath, err)
	}
	var d doc
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// stackID is the stack id of a deployment named name.
func stackID(name string) string {
	return "arn:aws:cloudformation:ap-southeast-2:123456789012:stack/" + name + "/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
}

// deploy is template.yaml as CloudFormation sees it for one deployment,
// evaluated by goformation's intrinsic processor: every parameter has its
// default unless params gives it ("AWS::StackName" names the stack), the
// conditions are evaluated, a resource whose Condition is false is gone, and
// Ref to a parameter or pseudo parameter, Fn::If, Fn::Equals, Fn::Not,
// Fn::Select, Fn::Split and Fn::Sub are resolved. What exists only once
// deployed stays symbolic: {"Ref": "<resource>"}, {"Fn::GetAtt": [resource,
// attribute]}, and ${Resource} or ${Resource.Attribute} in a Fn::Sub string.
// AWS::NoValue becomes null.
func deploy(t testing.TB, params map[string]string) doc {
	t.Helper()
	tpl := source(t)
	pseudo := map[string]string{
		"AWS::AccountId": "123456789012", "AWS::Region": "ap-southeast-2", "AWS::Partition": "aws",
		"AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "Media-Stack-With-Capitals",
	}
	overrides := map[string]any{}
	for k, v := range params {
		switch {
		case k == "AWS::StackName":
			pseudo[k] = v
		case at(tpl, "Parameters", k) != nil:
			overrides[k] = v
		default:
			t.Fatalf("deploy: template.yaml has no parameter %s", k)
		}
	}
	pseudo["AWS::StackId"] = stackID(pseudo["AWS::StackName"])
	// goformation's processor replaces any mapping with a "Condition" key by
	// that condition's value: take the resources' conditions out first.
	resources := tpl["Resources"].(doc)
	conditions := map[string]string{}
	for id, r := range resources {
		if c, ok := r.(doc)["Condition"].(string); ok {
			conditions[id] = c
			delete(r.(doc), "Condition")
		}
	}
	ref := func(name string, tpl any) any {
		if v, ok := pseudo[name]; ok {
			return v
		}
		if _, ok := resources[name]; ok {
			return doc{"Ref": name}
		}
		return intrinsics.Ref("Ref", name, tpl) // a parameter; nil for AWS::NoValue
	}
	subVar := regexp.MustCompile(`\$\{([A-Za-z0-9_:.]+)\}`)
	handlers := map[string]intrinsics.IntrinsicHandler{
		"Ref": func(_ string, in, tpl any) any { name, _ := in.(string); return ref(name, tpl) },
		"Fn::GetAtt": func(_ string, in, _ any) any {
			if s, ok := in.(string); ok {
				r, a, _ := strings.Cut(s, ".")
				in = []any{r, a}
			}
			return doc{"Fn::GetAtt": in}
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
			vars := doc{}
			if args, ok := in.([]any); ok && len(args) == 2 {
				in, _ = args[0].(string)
				vars, _ = args[1].(doc)
			}
			s, _ := in.(string)
			return subVar.ReplaceAllStringFunc(s, func(m string) string {
				name := m[2 : len(m)-1]
				v, ok := vars[name]
				if !ok {
					v = ref(name, tpl)
				}
				if str, isStr := v.(string); isStr {
					return str
				}
				return m
			})
		},
	}
	b, err := json.Marshal(tpl)
	if err != nil {
		t.Fatal(err)
	}
	out, err := intrinsics.ProcessJSON(b, &intrinsics.ProcessorOptions{
		ParameterOverrides: overrides, EvaluateConditions: true, IntrinsicHandlerOverrides: handlers,
	})
	if err != nil {
		t.Fatal(err)
	}
	var d doc
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatal(err)
	}
	for id, c := range conditions {
		if v, ok := at(d, "Conditions", c).(bool); !ok {
			t.Fatalf("deploy: condition %s of %s does not evaluate to a boolean", c, id)
		} else if !v {
			delete(d["Resources"].(doc), id)
		}
	}
	return d
}

// at walks map keys and list indexes ("Resources", "X", 0, ...); nil when
// the path does not exist.
func at(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(doc)
			v = m[k]
		case int:
			s, _ := v.([]any)
			if k < 0 || k >= len(s) {
				return nil
			}
			v = s[k]
		}
	}
	return v
}

// list turns a single value or a list into a list.
func list(v any) []any {
	if s, ok := v.([]any); ok {
		return s
	}
	if v == nil {
		return nil
	}
	return []any{v}
}

// strs turns a string or a list of strings into a list of strings.
func strs(v any) []string {
	var out []string
	for _, e := range list(v) {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// num is a number or a numeric string as a float64, -1 for anything else.
func num(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case string:
		if n, err := strconv.ParseFloat(x, 64); err == nil {
			return n
		}
	}
	return -1
}

// ofType returns the ids of the resources of a type, sorted.
func ofType(tpl doc, typ string) []string {
	var ids []string
	for id, r := range at(tpl, "Resources").(doc) {
		if at(r, "Type") == typ {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// functions returns the AWS::Serverless::Function ids, sorted.
func functions(tpl doc) []string { return ofType(tpl, "AWS::Serverless::Function") }

// mergeGlobals applies SAM's Globals semantics: maps merge (the resource
// wins), lists add up, anything else is the resource's.
func mergeGlobals(global, local any) any {
	gm, gok := global.(doc)
	lm, lok := local.(doc)
	if gok && lok {
		out := maps.Clone(gm)
		for k, v := range lm {
			out[k] = mergeGlobals(gm[k], v)
		}
		return out
	}
	gl, gok := global.([]any)
	ll, lok := local.([]any)
	if gok && lok {
		return append(slices.Clone(gl), ll...)
	}
	if local == nil {
		return global
	}
	return local
}

// props returns a function's properties with Globals.Function applied.
func props(tpl doc, id string) doc {
	p, _ := mergeGlobals(at(tpl, "Globals", "Function"), at(tpl, "Resources", id, "Properties")).(doc)
	return p
}

// walk calls fn for every value in v, depth first.
func walk(v any, fn func(any)) {
	fn(v)
	switch x := v.(type) {
	case doc:
		for _, k := range slices.Sorted(maps.Keys(x)) {
			walk(x[k], fn)
		}
	case []any:
		for _, e := range x {
			walk(e, fn)
		}
	}
}
