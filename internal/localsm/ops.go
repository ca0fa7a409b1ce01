package localsm

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"
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

type putSecretValueInput struct {
	SecretID           string   `json:"SecretId"`
	ClientRequestToken string   `json:"ClientRequestToken"`
	SecretString       *string  `json:"SecretString"`
	SecretBinary       []byte   `json:"SecretBinary"`
	VersionStages      []string `json:"VersionStages"`
}

type putSecretValueOutput struct {
	ARN           string   `json:"ARN"`
	Name          string   `json:"Name"`
	VersionID     string   `json:"VersionId"`
	VersionStages []string `json:"VersionStages"`
}

type createSecretInput struct {
	Name               string  `json:"Name"`
	ClientRequestToken string  `json:"ClientRequestToken"`
	Description        string  `json:"Description"`
	SecretString       *string `json:"SecretString"`
	SecretBinary       []byte  `json:"SecretBinary"`
}

type createSecretOutput struct {
	ARN       string `json:"ARN"`
	Name      string `json:"Name"`
	VersionID string `json:"VersionId,omitempty"`
}

type describeSecretInput struct {
	SecretID string `json:"SecretId"`
}

type describeSecretOutput struct {
	ARN                string              `json:"ARN"`
	Name               string              `json:"Name"`
	Description        string              `json:"Description,omitempty"`
	CreatedDate        epochSeconds        `json:"CreatedDate"`
	LastChangedDate    epochSeconds        `json:"LastChangedDate"`
	VersionIDsToStages map[string][]string `json:"VersionIdsToStages"`
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

func (s *Server) putSecretValue(in putSecretValueInput) (any, *apiError) {
	if in.SecretID == "" {
		return nil, errInvalidParameter("You must provide a value for the SecretId parameter.")
	}
	if err := checkValue(in.SecretString, in.SecretBinary); err != nil {
		return nil, err
	}
	stages := in.VersionStages
	if len(stages) == 0 {
		stages = []string{StageCurrent}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.lookupLocked(in.SecretID)
	if rec == nil {
		return nil, errNotFound(msgNoSuch)
	}
	id := in.ClientRequestToken
	if id == "" {
		id = newID()
	}
	if v := rec.versions[id]; v != nil {
		// Idempotent retry of the same request; anything else is an attempt
		// to change an existing version.
		if !sameValue(v, in.SecretString, in.SecretBinary) {
			return nil, &apiError{400, "ResourceExistsException", "You can't modify an existing version, you can only create a new version."}
		}
	} else {
		s.addVersionLocked(rec, id, in.SecretString, bytes.Clone(in.SecretBinary), stages)
	}
	return putSecretValueOutput{ARN: rec.arn, Name: rec.name, VersionID: id, VersionStages: rec.stagesOf(id)}, nil
}

func (s *Server) createSecret(in createSecretInput) (any, *apiError) {
	if !secretNameRE.MatchString(in.Name) {
		return nil, errInvalidParameter("Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!")
	}
	hasValue := in.SecretString != nil || in.SecretBinary != nil
	if hasValue {
		if err := checkValue(in.SecretString, in.SecretBinary); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.secrets[in.Name] != nil {
		return nil, &apiError{400, "ResourceExistsException", fmt.Sprintf("The operation failed because the secret %s already exists.", in.Name)}
	}
	rec := s.newSecretLocked(in.Name, in.Description)
	out := createSecretOutput{ARN: rec.arn, Name: rec.name}
	if hasValue {
		id := in.ClientRequestToken
		if id == "" {
			id = newID()
		}
		s.addVersionLocked(rec, id, in.SecretString, bytes.Clone(in.SecretBinary), []string{StageCurrent})
		out.VersionID = id
	}
	return out, nil
}

func (s *Server) describeSecret(in describeSecretInput) (any, *apiError) {
	if in.SecretID == "" {
		return nil, errInvalidParameter("You must provide a value for the SecretId parameter.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.lookupLocked(in.SecretID)
	if rec == nil {
		return nil, errNotFound(msgNoSuch)
	}
	m := make(map[string][]string)
	for id := range rec.versions {
		if st := rec.stagesOf(id); len(st) > 0 {
			m[id] = st
		}
	}
	return describeSecretOutput{
		ARN:                rec.arn,
		Name:               rec.name,
		Description:        rec.description,
		CreatedDate:        epochSeconds(rec.created),
		LastChangedDate:    epochSeconds(rec.changed),
		VersionIDsToStages: m,
	}, nil
}

// checkValue enforces exactly one of SecretString and SecretBinary, within
// the size AWS accepts.
func checkValue(str *string, bin []byte) *apiError {
	switch {
	case str != nil && bin != nil:
		return errInvalidParameter("You can't specify both a binary secret value and a string secret value in the same secret.")
	case str == nil && bin == nil:
		return errInvalidRequest("You must provide either SecretString or SecretBinary.")
	case str != nil && len(*str) > maxSecret, len(bin) > maxSecret:
		return errInvalidParameter(fmt.Sprintf("The secret value exceeds the maximum size of %d bytes.", maxSecret))
	}
	return nil
}

func sameValue(v *secretVersion, str *string, bin []byte) bool {
	if (v.str == nil) != (str == nil) {
		return false
	}
	if str != nil {
		return *v.str == *str
	}
	return bytes.Equal(v.bin, bin)
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
func (s *Server) newSecretLocked(name, description string) *secretRecord {
	now := s.now()
	rec := &secretRecord{
		name:        name,
		arn:         fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-%s", s.region, s.accountID, name, arnSuffix()),
		description: description,
		created:     now,
		changed:     now,
		versions:    map[string]*secretVersion{},
		stages:      map[string]string{},
	}
	s.secrets[name] = rec
	return rec
}

// addVersionLocked adds a version and moves the staging labels to it: when
// AWSCURRENT moves, the version that had it becomes AWSPREVIOUS, as in AWS.
// s.mu must be held.
func (s *Server) addVersionLocked(rec *secretRecord, id string, str *string, bin []byte, stages []string) {
	now := s.now()
	if str != nil {
		c := *str
		str = &c
	}
	rec.versions[id] = &secretVersion{id: id, str: str, bin: bin, created: now}
	rec.changed = now
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
