package template_test

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/awslabs/goformation/v7/intrinsics"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/iampolicy"
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
	"ArchiveMediaFunction":       "archive-media",
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
	return iampolicy.ProcessYAML(b, &intrinsics.ProcessorOptions{NoProcess: true})
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
// evaluated by iampolicy.Evaluate (goformation's intrinsic processor): every
// parameter has its default unless params gives it ("AWS::StackName" names
// the stack), the conditions are evaluated, a resource whose Condition is
// false is gone, and the intrinsic functions are resolved. What exists only
// once deployed stays symbolic: {"Ref": "<resource>"}, {"Fn::GetAtt":
// [resource, attribute]}, and ${Resource} or ${Resource.Attribute} in a
// Fn::Sub string. AWS::NoValue becomes null.
func deploy(t testing.TB, params map[string]string) doc {
	t.Helper()
	pseudo := map[string]string{
		"AWS::AccountId": "123456789012", "AWS::Region": "ap-southeast-2", "AWS::Partition": "aws",
		"AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "Media-Stack-With-Capitals",
	}
	overrides := map[string]string{}
	for k, v := range params {
		if k == "AWS::StackName" {
			pseudo[k] = v
		} else {
			overrides[k] = v
		}
	}
	pseudo["AWS::StackId"] = stackID(pseudo["AWS::StackName"])
	src, err := os.ReadFile(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	d, err := iampolicy.Evaluate(src, iampolicy.Deployment{Pseudo: pseudo, Parameters: overrides})
	if err != nil {
		t.Fatalf("deploy: %v", err)
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
