package localsm

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

type getSecretValueInput struct {
	SecretID     string `json:"SecretId"`
	VersionID    string `json:"VersionId"`
	VersionStage string `json:"VersionStage"`
}

type getSecretValueOutput struct {
	ARN           string       `json:"ARN"`
	Name          string       `json:"Name"`
	VersionID     string       `json:"VersionId"`
	SecretString  *string      `json:"SecretString,omitempty"`
	SecretBinary  []byte       `json:"SecretBinary,omitempty"` // base64, as AWS JSON encodes blobs
	VersionStages []string     `json:"VersionStages"`
	CreatedDate   epochSeconds `json:"CreatedDate"`
}

func (s *Server) getSecretValue(in getSecretValueInput) (any, *apiError) {
	if in.SecretID == "" {
		return nil, errInvalidParameter("You must provide a value for the SecretId parameter.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.lookupLocked(in.SecretID)
	if rec == nil {
		return nil, errNotFound(msgNoSuch)
	}
	var v *secretVersion
	switch {
	case in.VersionID != "":
		v = rec.versions[in.VersionID]
		if v == nil {
			return nil, errNotFound("Secrets Manager can't find the specified secret value for VersionId: " + in.VersionID)
		}
		if in.VersionStage != "" && rec.stages[in.VersionStage] != v.id {
			return nil, errInvalidParameter("You provided a VersionStage that is not associated to the provided VersionId.")
		}
	default:
		stage := in.VersionStage
		if stage == "" {
			stage = StageCurrent
		}
		v = rec.versions[rec.stages[stage]]
		if v == nil {
			return nil, errNotFound("Secrets Manager can't find the specified secret value for staging label: " + stage)
		}
	}
	return getSecretValueOutput{
		ARN:           rec.arn,
		Name:          rec.name,
		VersionID:     v.id,
		SecretString:  v.str,
		SecretBinary:  v.bin,
		VersionStages: rec.stagesOf(v.id),
		CreatedDate:   epochSeconds(v.created),
	}, nil
}

// lookupLocked finds a secret by name, full ARN or partial ARN (the ARN
// without its "-XXXXXX" suffix). s.mu must be held.
func (s *Server) lookupLocked(id string) *secretRecord {
	if !strings.HasPrefix(id, "arn:") {
		return s.secrets[id]
	}
	for _, rec := range s.secrets {
		if rec.arn == id || rec.arn[:len(rec.arn)-len("-AbCdEf")] == id {
			return rec
		}
	}
	return nil
}

// newSecretLocked creates an empty secret. s.mu must be held.
func (s *Server) newSecretLocked(name string) *secretRecord {
	rec := &secretRecord{
		name:     name,
		arn:      fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-%s", Region, AccountID, name, arnSuffix()),
		versions: map[string]*secretVersion{},
		stages:   map[string]string{},
	}
	s.secrets[name] = rec
	return rec
}

// addVersionLocked adds a version and moves the staging labels to it: when
// AWSCURRENT moves, the version that had it becomes AWSPREVIOUS, as in AWS.
// s.mu must be held.
func (s *Server) addVersionLocked(rec *secretRecord, id string, str *string, bin []byte, stages []string) {
	if str != nil {
		c := *str
		str = &c
	}
	rec.versions[id] = &secretVersion{id: id, str: str, bin: bin, created: time.Now()}
	for _, st := range stages {
		old, had := rec.stages[st]
		rec.stages[st] = id
		if st == StageCurrent && had && old != id {
			rec.stages[StagePrevious] = old
		}
	}
}

// stagesOf lists the staging labels attached to version id, sorted with
// AWSCURRENT first.
func (rec *secretRecord) stagesOf(id string) []string {
	var st []string
	for label, v := range rec.stages {
		if v == id {
			st = append(st, label)
		}
	}
	sort.Slice(st, func(i, j int) bool {
		if (st[i] == StageCurrent) != (st[j] == StageCurrent) {
			return st[i] == StageCurrent
		}
		return st[i] < st[j]
	})
	if st == nil {
		st = []string{}
	}
	return slices.Clip(st)
}
