package iampolicy

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
)

// Ledger records what each function did with its credentials (the IAM
// accesses of every request) and checks the record against the functions'
// policies: every access granted, every grant needed. It is safe for
// concurrent use.
type Ledger struct {
	mu   sync.Mutex
	uses map[string]map[use]int // function -> what it did -> how often
}

// use is one access as one kind of request made it.
type use struct {
	Access
	request string // e.g. "HEAD /bucket/key?versionId" or "secretsmanager.GetSecretValue"
	denied  bool   // the service refused it (AccessDenied)
}

// Record notes that function made a request (described for the report,
// e.g. "PUT /bucket/key?tagging") needing accesses; denied says the service
// refused it as not authorized.
func (l *Ledger) Record(function, request string, denied bool, accesses ...Access) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.uses == nil {
		l.uses = map[string]map[use]int{}
	}
	if l.uses[function] == nil {
		l.uses[function] = map[use]int{}
	}
	for _, a := range accesses {
		l.uses[function][use{a, request, denied}]++
	}
}

// Grant is one action of one statement on one of its resources.
type Grant struct {
	Function  string
	Statement int // index in Policy.Statements
	Sid       string
	Action    string
	Resource  string
}

func (g Grant) String() string {
	return fmt.Sprintf("%s statement %s: %s on %s", g.Function, g.Sid, g.Action, g.Resource)
}

// Checked reports whether the ledger can judge an action: S3's and Secrets
// Manager's, the services the local run stands in for.
func Checked(action string) bool {
	a := strings.ToLower(action)
	return strings.HasPrefix(a, "s3:") || strings.HasPrefix(a, "secretsmanager:")
}

// Report is what Check found.
type Report struct {
	// Missing are the accesses a function made that its policy does not
	// allow (or that the service refused): in AWS they fail.
	Missing []string
	// Unneeded are the grants no recorded access needs: removing any one
	// of them fails no request of the record.
	Unneeded []string
	// Unchecked are the grants of services the ledger does not judge.
	Unchecked []string
}

// Check compares the record with the policies of the functions named in
// policies (the functions of the template). Every Allow grant of an
// S3 or Secrets Manager action must be needed by a recorded access, i.e.
// be the only grant that allows it: a grant no access uses, or one whose
// every access another grant allows too, is Unneeded.
func (l *Ledger) Check(policies map[string]Policy) Report {
	l.mu.Lock()
	defer l.mu.Unlock()
	var r Report
	for _, fn := range slices.Sorted(maps.Keys(policies)) {
		p := policies[fn]
		needed := map[Grant]bool{}
		uses := l.uses[fn]
		for _, u := range slices.SortedFunc(maps.Keys(uses), func(a, b use) int { return strings.Compare(a.String()+a.request, b.String()+b.request) }) {
			if u.denied || !p.Allows(u.Action, u.Resource) {
				why := "its policy does not allow it"
				if u.denied {
					why = "the service refused it"
				}
				if u.Action == Unmapped {
					why = "the request is not mapped to IAM actions (internal/iampolicy S3Request)"
				}
				r.Missing = append(r.Missing, fmt.Sprintf("%s: %s needs %s (%d times): %s", fn, u.request, u.Access, uses[u], why))
				continue
			}
			if gs := grantsFor(p, u.Access); len(gs) == 1 {
				needed[gs[0]] = true
			}
		}
		for _, g := range grants(p) {
			switch {
			case !Checked(g.Action):
				r.Unchecked = append(r.Unchecked, g.String())
			case needed[g]:
			default:
				why := "no request of the suite needs it"
				if others := otherUses(p, g, uses); others != "" {
					why = "every request that needs it is also allowed by " + others
				}
				r.Unneeded = append(r.Unneeded, g.String()+": "+why)
			}
		}
	}
	return r
}

// grants lists the Allow grants of a policy.
func grants(p Policy) []Grant {
	var out []Grant
	for i, st := range p.Statements {
		if st.Effect != Allow {
			continue
		}
		for _, a := range st.Action {
			for _, res := range st.Resource {
				out = append(out, Grant{Function: p.Function, Statement: i, Sid: st.Sid, Action: a, Resource: res})
			}
		}
	}
	return out
}

// grantsFor lists the Allow grants that allow a.
func grantsFor(p Policy, a Access) []Grant {
	var out []Grant
	for _, g := range grants(p) {
		if (Statement{Action: []string{g.Action}, Resource: []string{g.Resource}}).Matches(a.Action, a.Resource) {
			out = append(out, g)
		}
	}
	return out
}

// otherUses names the other grants that allow the accesses g allows, ""
// when g allows none.
func otherUses(p Policy, g Grant, uses map[use]int) string {
	var others []string
	for u := range uses {
		gs := grantsFor(p, u.Access)
		if !slices.Contains(gs, g) {
			continue
		}
		for _, o := range gs {
			if o != g && !slices.Contains(others, o.String()) {
				others = append(others, o.String())
			}
		}
	}
	slices.Sort(others)
	return strings.Join(others, "; ")
}

// Failed reports whether the report fails least privilege.
func (r Report) Failed() bool { return len(r.Missing)+len(r.Unneeded) > 0 }

func (r Report) String() string {
	var b strings.Builder
	for _, s := range []struct {
		title string
		lines []string
	}{
		{"accesses the functions' policies do not grant (they fail in AWS)", r.Missing},
		{"grants no request of the suite needs (remove them from template.yaml, or test what needs them)", r.Unneeded},
		{"grants of services the local run does not check", r.Unchecked},
	} {
		if len(s.lines) == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s:\n", s.title)
		for _, l := range s.lines {
			fmt.Fprintf(&b, "  %s\n", l)
		}
	}
	return b.String()
}
