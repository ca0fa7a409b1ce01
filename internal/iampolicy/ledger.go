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
// policies: every access granted, every grant needed. A function may have
// several roles, one per deployment (the stack's, and one with another
// UploadPrefix or bucket, say): each request is judged by the policy of the
// role that signed it, and a grant of the template is needed when a
// request of any role of its function needs it. It is safe for concurrent
// use.
type Ledger struct {
	mu    sync.Mutex
	roles map[string]Policy      // by access key id
	uses  map[string]map[use]int // by access key id: what it did -> how often
}

// use is one access as one kind of request made it.
type use struct {
	Access
	request string // e.g. "HeadObject ?versionId" or "secretsmanager.GetSecretValue"
	denied  bool   // the service refused it (AccessDenied)
}

// Role makes the requests signed with accessKeyID those of p.Function,
// deployed with the policy p.
func (l *Ledger) Role(accessKeyID string, p Policy) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.roles == nil {
		l.roles, l.uses = map[string]Policy{}, map[string]map[use]int{}
	}
	l.roles[accessKeyID] = p
}

// Record notes a request signed with accessKeyID (described for the
// report, e.g. "PutObjectTagging ?versionId") needing accesses; denied says
// the service refused it as not authorized. A key of no role (the
// operator's, the tests' own) is not recorded.
func (l *Ledger) Record(accessKeyID, request string, denied bool, accesses ...Access) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.roles[accessKeyID]; !ok {
		return
	}
	if l.uses[accessKeyID] == nil {
		l.uses[accessKeyID] = map[use]int{}
	}
	for _, a := range accesses {
		l.uses[accessKeyID][use{a, request, denied}]++
	}
}

// Grant is one action of one statement on one of its resources.
type Grant struct {
	Function  string
	Statement int // index in Policy.Statements
	Sid       string
	Action    string
	Resource  string

	action, resource int // indexes in the statement
}

func (g Grant) id() grantID { return grantID{g.Function, g.Statement, g.action, g.resource} }

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

// Check compares the record with policies, the template's policy of each
// function as the stack deploys it. Every access a role made must be
// allowed by the role's policy (and not refused by the service). Every
// Allow grant of an S3 or Secrets Manager action in policies must be
// needed: some request of a role of its function is allowed by that grant
// (the same action and resource of the same statement, in the role's
// deployment) and by no other. A grant no request uses, or one whose every
// request another grant allows too, is Unneeded.
func (l *Ledger) Check(policies map[string]Policy) Report {
	l.mu.Lock()
	defer l.mu.Unlock()
	var r Report
	needed := map[grantID]bool{}
	usesOf := map[string][]roleUse{} // by function
	for _, key := range slices.Sorted(maps.Keys(l.roles)) {
		p := l.roles[key]
		uses := l.uses[key]
		for _, u := range slices.SortedFunc(maps.Keys(uses), func(a, b use) int { return strings.Compare(a.String()+a.request, b.String()+b.request) }) {
			usesOf[p.Function] = append(usesOf[p.Function], roleUse{p, u})
			if u.denied || !p.Allows(u.Action, u.Resource) {
				why := "its policy does not allow it"
				switch {
				case u.Action == Unmapped:
					why = "the request is not mapped to IAM actions (internal/iampolicy S3Request)"
				case u.denied:
					why = "the service refused it"
				}
				r.Missing = append(r.Missing, fmt.Sprintf("%s: %s needs %s (%d times): %s", p.Function, u.request, u.Access, uses[u], why))
				continue
			}
			if gs := grantsFor(p, u.Access); len(gs) == 1 {
				needed[gs[0].id()] = true
			}
		}
	}
	for _, fn := range slices.Sorted(maps.Keys(policies)) {
		for _, g := range grants(policies[fn]) {
			switch {
			case !Checked(g.Action):
				r.Unchecked = append(r.Unchecked, g.String())
			case needed[g.id()]:
			default:
				why := "no request of the suite needs it"
				if others := otherGrants(g, usesOf[fn]); others != "" {
					why = "every request that needs it is also allowed by " + others
				}
				r.Unneeded = append(r.Unneeded, g.String()+": "+why)
			}
		}
	}
	return r
}

// roleUse is a use of a role.
type roleUse struct {
	p Policy
	u use
}

// grantID names a grant the same way in every deployment of its function.
type grantID struct {
	function                    string
	statement, action, resource int
}

// grants lists the Allow grants of a policy.
func grants(p Policy) []Grant {
	var out []Grant
	for i, st := range p.Statements {
		if st.Effect != Allow {
			continue
		}
		for ai, a := range st.Action {
			for ri, res := range st.Resource {
				out = append(out, Grant{Function: p.Function, Statement: i, Sid: st.Sid, Action: a, Resource: res, action: ai, resource: ri})
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

// otherGrants names the grants that allow, in some role, what g allows
// there; "" when g allows nothing of uses.
func otherGrants(g Grant, uses []roleUse) string {
	var others []string
	for _, ru := range uses {
		gs := grantsFor(ru.p, ru.u.Access)
		if !slices.ContainsFunc(gs, func(o Grant) bool { return o.id() == g.id() }) {
			continue
		}
		for _, o := range gs {
			if o.id() != g.id() && !slices.Contains(others, o.String()) {
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
