package iampolicy

import (
	"encoding/json"
	"strings"
)

// The effects of a statement.
const (
	Allow = "Allow"
	Deny  = "Deny"
)

// Policy is what a function's role may do: the statements of its
// Policies, resolved.
type Policy struct {
	Function   string
	Statements []Statement
}

// Statement is one statement of an identity policy, as the local
// evaluation honours it: an Effect, Actions and Resources, with IAM's
// wildcards (* and ?) in both; no Condition, NotAction, NotResource or
// Principal.
type Statement struct {
	Sid      string   `json:"Sid,omitempty"`
	Effect   string   `json:"Effect"`
	Action   []string `json:"Action"`
	Resource []string `json:"Resource"`
}

// Allows reports whether the policy allows action on resource, as IAM
// decides for an identity policy: an explicit Deny wins, then any Allow;
// nothing else is allowed.
func (p Policy) Allows(action, resource string) bool {
	allowed := false
	for _, st := range p.Statements {
		if !st.Matches(action, resource) {
			continue
		}
		if st.Effect == Deny {
			return false
		}
		allowed = true
	}
	return allowed
}

// Matches reports whether the statement names action (case-insensitive)
// and resource (case-sensitive), wildcards included.
func (st Statement) Matches(action, resource string) bool {
	return matchAny(st.Action, action, true) && matchAny(st.Resource, resource, false)
}

func matchAny(patterns []string, s string, fold bool) bool {
	for _, p := range patterns {
		if fold {
			p, s = strings.ToLower(p), strings.ToLower(s)
		}
		if Match(p, s) {
			return true
		}
	}
	return false
}

// Match reports whether s matches an IAM pattern, where * is any run of
// characters (/ included) and ? any one character.
func Match(pattern, s string) bool {
	// Iterative glob matching with backtracking to the last *.
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case star >= 0:
			p, mark = star+1, mark+1
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// S3 returns the policy's S3 statements as an IAM policy document, for an
// S3 endpoint that evaluates IAM policies (MinIO): the s3: actions of each
// statement on its arn:aws:s3::: resources. ok is false when the policy
// grants no S3 action.
func (p Policy) S3() (doc []byte, ok bool) {
	var sts []Statement
	for _, st := range p.Statements {
		s3 := Statement{Sid: st.Sid, Effect: st.Effect}
		for _, a := range st.Action {
			if strings.HasPrefix(strings.ToLower(a), "s3:") {
				s3.Action = append(s3.Action, a)
			}
		}
		for _, r := range st.Resource {
			if strings.HasPrefix(r, "arn:aws:s3:::") {
				s3.Resource = append(s3.Resource, r)
			}
		}
		if len(s3.Action) > 0 && len(s3.Resource) > 0 {
			sts = append(sts, s3)
		}
	}
	if len(sts) == 0 {
		return nil, false
	}
	b, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": sts})
	return b, true
}
