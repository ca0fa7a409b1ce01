package template_test

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
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
	"ReconcileFunction":          "reconcile",
}

// claimPrefix is where the upload function keeps its claim objects, outside
// the trigger prefix.
const claimPrefix = "nxcloud-claims/"

// A doc is a CloudFormation template as generic values: map[string]any,
// []any, string, int, float64, bool and nil. Short-form intrinsics are in
// their long form ({"Ref": x}, {"Fn::Sub": x}, ...).
type doc = map[string]any

// loadTemplate parses template.yaml.
func loadTemplate(t testing.TB) doc {
	t.Helper()
	b, err := os.ReadFile(templatePath)
	if err != nil {
		t.Fatalf("read template: %v", err)
	}
	v, err := parseCFNYAML(b)
	if err != nil {
		t.Fatalf("parse %s: %v", templatePath, err)
	}
	m, ok := v.(doc)
	if !ok {
		t.Fatalf("%s is not a mapping at the top level", templatePath)
	}
	return m
}

// parseCFNYAML decodes CloudFormation YAML, short-form tags included.
func parseCFNYAML(b []byte) (any, error) {
	var n yaml.Node
	if err := yaml.Unmarshal(b, &n); err != nil {
		return nil, err
	}
	if n.Kind != yaml.DocumentNode || len(n.Content) != 1 {
		return nil, fmt.Errorf("want exactly one YAML document")
	}
	return decodeNode(n.Content[0])
}

// intrinsicName maps a short-form tag to the key of its long form.
func intrinsicName(tag string) (string, bool) {
	switch tag {
	case "!Ref":
		return "Ref", true
	case "!Condition":
		return "Condition", true
	case "!Base64", "!Cidr", "!FindInMap", "!GetAtt", "!GetAZs", "!ImportValue", "!Join",
		"!Select", "!Split", "!Sub", "!Transform", "!And", "!Equals", "!If", "!Not", "!Or",
		"!ToJsonString", "!Length":
		return "Fn::" + strings.TrimPrefix(tag, "!"), true
	}
	return "", false
}

func decodeNode(n *yaml.Node) (any, error) {
	if n.Kind == yaml.AliasNode {
		return decodeNode(n.Alias)
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		name, ok := intrinsicName(n.Tag)
		if !ok {
			return nil, fmt.Errorf("line %d: unknown tag %s", n.Line, n.Tag)
		}
		var arg any
		switch n.Kind {
		case yaml.ScalarNode:
			arg = n.Value
			if name == "Fn::GetAtt" { // !GetAtt Resource.Attribute
				res, attr, _ := strings.Cut(n.Value, ".")
				arg = []any{res, attr}
			}
		default:
			c := *n
			c.Tag = ""
			v, err := decodeNode(&c)
			if err != nil {
				return nil, err
			}
			arg = v
		}
		return doc{name: arg}, nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(doc, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			v, err := decodeNode(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[n.Content[i].Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := decodeNode(c)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return v, nil
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node kind %v", n.Line, n.Kind)
}

// at walks a path of map keys and slice indexes ("Resources", "X", 0, ...)
// and reports whether it exists.
func at(v any, path ...any) (any, bool) {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(doc)
			if !ok {
				return nil, false
			}
			if v, ok = m[k]; !ok {
				return nil, false
			}
		case int:
			s, ok := v.([]any)
			if !ok || k < 0 || k >= len(s) {
				return nil, false
			}
			v = s[k]
		default:
			panic(fmt.Sprintf("bad path element %T", p))
		}
	}
	return v, true
}

// mustAt is at for paths a test requires.
func mustAt(t testing.TB, v any, path ...any) any {
	t.Helper()
	got, ok := at(v, path...)
	if !ok {
		t.Fatalf("template has no %v", path)
	}
	return got
}

// resource returns a resource's mapping, failing if it is missing or of
// another type.
func resource(t testing.TB, tpl doc, id, typ string) doc {
	t.Helper()
	r, ok := mustAt(t, tpl, "Resources", id).(doc)
	if !ok {
		t.Fatalf("resource %s is not a mapping", id)
	}
	if r["Type"] != typ {
		t.Fatalf("resource %s is %v, want %s", id, r["Type"], typ)
	}
	return r
}

// strs turns a string or a list of strings into a list.
func strs(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil
			}
			out = append(out, s)
		}
		return out
	}
	return nil
}

// list turns a single value or a list into a list.
func list(v any) []any {
	if s, ok := v.([]any); ok {
		return s
	}
	return []any{v}
}

// isIntrinsic reports whether v is {"Ref": ...} or {"Fn::X": ...} and
// returns its name and argument.
func isIntrinsic(v any) (string, any, bool) {
	m, ok := v.(doc)
	if !ok || len(m) != 1 {
		return "", nil, false
	}
	for k, a := range m {
		if k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::") {
			return k, a, true
		}
	}
	return "", nil, false
}

// reflectDeepEqual compares decoded template values.
func reflectDeepEqual(a, b any) bool { return reflect.DeepEqual(a, b) }

// ref builds {"Ref": name}.
func ref(name string) doc { return doc{"Ref": name} }

// stack describes one deployment for the evaluator: parameter values (the
// template's defaults unless overridden) and pseudo parameters.
type stack struct {
	tpl    doc
	params map[string]string
	pseudo map[string]string
}

// newStack resolves the parameters of tpl from their defaults and
// overrides.
func newStack(t testing.TB, tpl doc, overrides map[string]string) *stack {
	t.Helper()
	s := &stack{tpl: tpl, params: map[string]string{}, pseudo: map[string]string{
		"AWS::AccountId": "123456789012",
		"AWS::Region":    "ap-southeast-2",
		"AWS::Partition": "aws",
		"AWS::URLSuffix": "amazonaws.com",
		"AWS::StackName": "Media-Stack-With-Capitals",
		"AWS::StackId":   "arn:aws:cloudformation:ap-southeast-2:123456789012:stack/Media-Stack-With-Capitals/0a1b2c3d-4e5f-6789-abcd-ef0123456789",
	}}
	params, _ := tpl["Parameters"].(doc)
	for name, p := range params {
		if d, ok := at(p, "Default"); ok {
			s.params[name] = scalarString(d)
		}
	}
	for k, v := range overrides {
		if _, ok := params[k]; !ok {
			t.Fatalf("override of unknown parameter %s", k)
		}
		s.params[k] = v
	}
	return s
}

// scalarString prints a YAML scalar as CloudFormation passes parameter
// values: as a string.
func scalarString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}

// condition evaluates a named condition of the template.
func (s *stack) condition(t testing.TB, name string) bool {
	t.Helper()
	c, ok := at(s.tpl, "Conditions", name)
	if !ok {
		t.Fatalf("template has no condition %s", name)
	}
	b, ok := s.eval(t, c).(bool)
	if !ok {
		t.Fatalf("condition %s does not evaluate to a boolean", name)
	}
	return b
}

// eval resolves what can be resolved without AWS: Ref to parameters and
// pseudo parameters, the condition functions, Fn::If, Fn::Select,
// Fn::Split, Fn::Join and Fn::Sub (whose variables name parameters, pseudo
// parameters or its own map). A Ref to a resource and Fn::GetAtt stay as
// they are; ${Resource} in a Fn::Sub stays as it is.
func (s *stack) eval(t testing.TB, v any) any {
	t.Helper()
	name, arg, ok := isIntrinsic(v)
	if !ok {
		switch x := v.(type) {
		case doc:
			out := make(doc, len(x))
			for k, e := range x {
				if r := s.eval(t, e); !isNoValue(r) {
					out[k] = r
				}
			}
			return out
		case []any:
			out := make([]any, 0, len(x))
			for _, e := range x {
				if r := s.eval(t, e); !isNoValue(r) {
					out = append(out, r)
				}
			}
			return out
		}
		return v
	}
	args, _ := arg.([]any)
	switch name {
	case "Ref":
		n, _ := arg.(string)
		if p, ok := s.params[n]; ok {
			return p
		}
		if p, ok := s.pseudo[n]; ok {
			return p
		}
		return v
	case "Condition":
		n, _ := arg.(string)
		return s.condition(t, n)
	case "Fn::Equals":
		if len(args) != 2 {
			t.Fatalf("Fn::Equals needs 2 arguments: %v", v)
		}
		return reflect.DeepEqual(scalarString(s.eval(t, args[0])), scalarString(s.eval(t, args[1])))
	case "Fn::Not":
		if len(args) != 1 {
			t.Fatalf("Fn::Not needs 1 argument: %v", v)
		}
		b, _ := s.eval(t, args[0]).(bool)
		return !b
	case "Fn::And", "Fn::Or":
		res := name == "Fn::And"
		for _, a := range args {
			b, _ := s.eval(t, a).(bool)
			if name == "Fn::And" {
				res = res && b
			} else {
				res = res || b
			}
		}
		return res
	case "Fn::If":
		if len(args) != 3 {
			t.Fatalf("Fn::If needs 3 arguments: %v", v)
		}
		cond, _ := args[0].(string)
		if s.condition(t, cond) {
			return s.eval(t, args[1])
		}
		return s.eval(t, args[2])
	case "Fn::Select":
		if len(args) != 2 {
			t.Fatalf("Fn::Select needs 2 arguments: %v", v)
		}
		i, err := strconv.Atoi(scalarString(s.eval(t, args[0])))
		items, ok := s.eval(t, args[1]).([]any)
		if err != nil || !ok || i < 0 || i >= len(items) {
			t.Fatalf("Fn::Select out of range or unresolved: %v", v)
		}
		return items[i]
	case "Fn::Split":
		if len(args) != 2 {
			t.Fatalf("Fn::Split needs 2 arguments: %v", v)
		}
		sep, _ := args[0].(string)
		src, ok := s.eval(t, args[1]).(string)
		if !ok {
			return v
		}
		out := []any{}
		for _, p := range strings.Split(src, sep) {
			out = append(out, p)
		}
		return out
	case "Fn::Join":
		if len(args) != 2 {
			t.Fatalf("Fn::Join needs 2 arguments: %v", v)
		}
		sep, _ := args[0].(string)
		var parts []string
		for _, p := range list(s.eval(t, args[1])) {
			str, ok := p.(string)
			if !ok {
				return v
			}
			parts = append(parts, str)
		}
		return strings.Join(parts, sep)
	case "Fn::Sub":
		tmpl, vars := subParts(t, v)
		resolved := map[string]string{}
		for k, e := range vars {
			str, ok := s.eval(t, e).(string)
			if !ok {
				return v
			}
			resolved[k] = str
		}
		return subVarRE.ReplaceAllStringFunc(tmpl, func(m string) string {
			n := m[2 : len(m)-1]
			if r, ok := resolved[n]; ok {
				return r
			}
			if p, ok := s.params[n]; ok {
				return p
			}
			if p, ok := s.pseudo[n]; ok {
				return p
			}
			return m
		})
	}
	return v
}

func isNoValue(v any) bool {
	n, a, ok := isIntrinsic(v)
	return ok && n == "Ref" && a == "AWS::NoValue"
}

// subVarRE matches a ${Name} or ${Resource.Attribute} variable of Fn::Sub.
var subVarRE = regexp.MustCompile(`\$\{[A-Za-z0-9_:.]+\}`)

// subParts splits a Fn::Sub into its template string and variable map.
func subParts(t testing.TB, v any) (string, doc) {
	t.Helper()
	name, arg, ok := isIntrinsic(v)
	if !ok || name != "Fn::Sub" {
		t.Fatalf("want a Fn::Sub, got %v", v)
	}
	switch a := arg.(type) {
	case string:
		return a, doc{}
	case []any:
		if len(a) == 2 {
			tmpl, ok1 := a[0].(string)
			vars, ok2 := a[1].(doc)
			if ok1 && ok2 {
				return tmpl, vars
			}
		}
	}
	t.Fatalf("malformed Fn::Sub: %v", v)
	return "", nil
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
