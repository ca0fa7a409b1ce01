// Command leastpriv proves that the end-to-end suite guards the template's
// least privilege: for every S3 and Secrets Manager action of every
// function's policy in template.yaml, it removes that one action (the whole
// statement when it is the statement's only action) from a copy of the
// repository, runs the suite there and expects it to fail; then it adds one
// grant nothing needs and expects the least-privilege check to say so. The
// unchanged template must pass first. It prints a Markdown table of the
// mutations and the tests that failed.
//
//	go run ./tools/leastpriv            # every action, one suite run each (long: about a minute a run)
//	go run ./tools/leastpriv -only Reconcile -n 3
//
// It changes nothing in the repository itself.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"
)

func main() {
	only := flag.String("only", "", "mutate only the functions whose logical id contains this")
	limit := flag.Int("n", 0, "stop after this many mutations (0: all)")
	pkg := flag.String("pkg", "./test/e2e/", "the suite to run")
	flag.Parse()
	if err := run(*only, *limit, *pkg); err != nil {
		fmt.Fprintln(os.Stderr, "leastpriv:", err)
		os.Exit(1)
	}
}

// mutation is one change of the template; a mutation with want set is
// guarded only when the suite's output says so.
type mutation struct {
	name  string
	apply func(doc *yaml.Node) error
	want  string
}

func run(only string, limit int, pkg string) error {
	// Stopped (Ctrl-C, kill), it stops the suite it runs and removes its copy.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	src, err := os.ReadFile("template.yaml")
	if err != nil {
		return fmt.Errorf("run it from the repository root: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return err
	}
	var ms []mutation
	for _, fn := range functions(&doc) {
		if !strings.Contains(fn.name, only) {
			continue
		}
		for si, st := range fn.statements {
			for ai, action := range actions(st) {
				if !strings.HasPrefix(action, "s3:") && !strings.HasPrefix(action, "secretsmanager:") {
					continue
				}
				ms = append(ms, mutation{name: fmt.Sprintf("remove %s from %s statement %s", action, fn.name, sid(st)), apply: func(d *yaml.Node) error {
					return removeAction(d, fn.name, si, ai)
				}})
			}
		}
	}
	ms = append(ms, mutation{name: "add s3:DeleteObject on <UploadPrefix>* to UploadTemplateFileFunction (needed by nothing)", apply: func(d *yaml.Node) error {
		return addAction(d, "UploadTemplateFileFunction", "ReadAndTagUploads", "s3:DeleteObject")
	}, want: "grants no request of the suite needs"})
	if limit > 0 && len(ms) > limit {
		ms = ms[:limit]
	}

	work, err := os.MkdirTemp("", "leastpriv-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := copyTree(".", work); err != nil {
		return err
	}
	// suite runs the suite in the copy; its output and whether it passed.
	suite := func(failfast bool) ([]byte, bool, error) {
		args := []string{"test", "-count=1", "-timeout=8m", pkg}
		if failfast {
			// a mutation that breaks a function fails its first test; the
			// least-privilege check runs after the tests either way.
			args = slices.Insert(args, 2, "-failfast")
		}
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = work
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
		cmd.WaitDelay = 10 * time.Second
		out, err := cmd.CombinedOutput()
		return out, err == nil, ctx.Err()
	}
	// The template as it is must pass: a suite that fails for another
	// reason (a flaky test, a busy port) would count every mutation as
	// guarded.
	if out, ok, err := suite(false); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("the suite fails on the unchanged template, so no mutation can be judged: %s", failures(out))
	}
	fmt.Println("| Mutation of template.yaml | `go test " + pkg + "` | What failed |")
	fmt.Println("|---|---|---|")
	survived := 0
	for i, m := range ms {
		var d yaml.Node
		_ = yaml.Unmarshal(src, &d)
		if err := m.apply(&d); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		var out bytes.Buffer
		enc := yaml.NewEncoder(&out)
		enc.SetIndent(2)
		if err := enc.Encode(&d); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(work, "template.yaml"), out.Bytes(), 0o644); err != nil {
			return err
		}
		start := time.Now()
		res, passed, err := suite(true)
		if err != nil {
			return err
		}
		verdict := "failed"
		switch {
		case passed:
			verdict = "**passed: not guarded**"
			survived++
		case m.want != "" && !bytes.Contains(res, []byte(m.want)):
			verdict = "**failed, but not on this mutation**"
			survived++
		}
		fmt.Printf("| %s | %s | %s |\n", m.name, verdict, failures(res))
		fmt.Fprintf(os.Stderr, "leastpriv: %d/%d %s: %s in %s\n", i+1, len(ms), m.name, verdict, time.Since(start).Round(time.Second))
	}
	if survived > 0 {
		return fmt.Errorf("%d mutations left the suite passing", survived)
	}
	return nil
}

var failedTest = regexp.MustCompile(`(?m)^--- FAIL: (\S+)`)

// failures names what failed in a suite's output: the failed tests and the
// least-privilege check's findings.
func failures(out []byte) string {
	var names []string
	for _, m := range failedTest.FindAllSubmatch(out, -1) {
		if n := string(m[1]); !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	if bytes.Contains(out, []byte("FAIL: least privilege")) {
		kinds := []string{}
		if bytes.Contains(out, []byte("accesses the functions' policies do not grant")) {
			kinds = append(kinds, "a request not granted")
		}
		if bytes.Contains(out, []byte("grants no request of the suite needs")) {
			kinds = append(kinds, "a grant not needed")
		}
		names = append(names, "TestMain's least-privilege check ("+strings.Join(kinds, ", ")+")")
	}
	if len(names) > 6 {
		names = append(names[:6], fmt.Sprintf("and %d more", len(names)-6))
	}
	return strings.Join(names, ", ")
}

// function is a function of the template and its policy statements.
type function struct {
	name       string
	statements []*yaml.Node
}

// functions lists the AWS::Serverless::Function resources in order.
func functions(doc *yaml.Node) []function {
	var out []function
	res := mapValue(doc.Content[0], "Resources")
	for i := 0; res != nil && i+1 < len(res.Content); i += 2 {
		r := res.Content[i+1]
		if t := mapValue(r, "Type"); t == nil || t.Value != "AWS::Serverless::Function" {
			continue
		}
		f := function{name: res.Content[i].Value}
		if pols := mapValue(mapValue(r, "Properties"), "Policies"); pols != nil {
			for _, p := range pols.Content {
				if sts := mapValue(p, "Statement"); sts != nil {
					f.statements = append(f.statements, sts.Content...)
				}
			}
		}
		out = append(out, f)
	}
	return out
}

// actions lists a statement's actions.
func actions(st *yaml.Node) []string {
	a := mapValue(st, "Action")
	if a == nil {
		return nil
	}
	if a.Kind == yaml.ScalarNode {
		return []string{a.Value}
	}
	var out []string
	for _, n := range a.Content {
		out = append(out, n.Value)
	}
	return out
}

func sid(st *yaml.Node) string {
	if s := mapValue(st, "Sid"); s != nil {
		return s.Value
	}
	return "(no Sid)"
}

// removeAction removes action ai of statement si of fn; the statement goes
// when it was its only action.
func removeAction(doc *yaml.Node, fn string, si, ai int) error {
	for _, f := range functions(doc) {
		if f.name != fn {
			continue
		}
		st := f.statements[si]
		a := mapValue(st, "Action")
		if a.Kind == yaml.SequenceNode && len(a.Content) > 1 {
			a.Content = slices.Delete(a.Content, ai, ai+1)
			return nil
		}
		pols := mapValue(mapValue(mapValue(mapValue(doc.Content[0], "Resources"), fn), "Properties"), "Policies")
		for _, p := range pols.Content {
			sts := mapValue(p, "Statement")
			if i := slices.Index(sts.Content, st); i >= 0 {
				sts.Content = slices.Delete(sts.Content, i, i+1)
				return nil
			}
		}
	}
	return fmt.Errorf("no statement %d of %s", si, fn)
}

// addAction adds action to the statement of fn with that Sid.
func addAction(doc *yaml.Node, fn, sidName, action string) error {
	for _, f := range functions(doc) {
		for _, st := range f.statements {
			if f.name == fn && sid(st) == sidName {
				a := mapValue(st, "Action")
				if a.Kind == yaml.ScalarNode {
					*a = yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{{Kind: yaml.ScalarNode, Value: a.Value}}}
				}
				a.Content = append(a.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: action})
				return nil
			}
		}
	}
	return fmt.Errorf("no statement %s of %s", sidName, fn)
}

// mapValue is the value of key in a mapping node, nil when there is none.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// copyTree copies the repository (without .git and build output) to dst.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "bin" || d.Name() == ".aws-sam" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, path)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode().Perm())
	})
}
