// Package config reads the functions' configuration from the environment and
// validates it, so that a bad value fails a function's init with a message that
// names the variable.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

// Environment variable names (SPEC.md, "Configuration").
const (
	EnvSecretID       = "NXCLOUD_SECRET_ID"
	EnvBaseURL        = "NXCLOUD_BASE_URL"
	EnvBusinessPhone  = "NXCLOUD_BUSINESS_PHONE"
	EnvSecretTTL      = "NXCLOUD_SECRET_TTL"
	EnvSignAlgorithm  = "NXCLOUD_SIGN_ALGORITHM"
	EnvTimeout        = "NXCLOUD_TIMEOUT"
	EnvMaxUploadBytes = "MAX_UPLOAD_BYTES"
	EnvUploadPrefix   = "UPLOAD_PREFIX"
	EnvMediaPrefix    = "MEDIA_PREFIX"
	EnvArchivePrefix  = "ARCHIVE_PREFIX"
	EnvClaimLease     = "UPLOAD_CLAIM_LEASE"
	EnvMediaBucket    = "MEDIA_BUCKET"
	EnvUploadURLTTL   = "UPLOAD_URL_TTL"
	EnvSettle         = "RECONCILE_SETTLE"
	EnvNamespace      = "METRICS_NAMESPACE"
)

// Defaults (SPEC.md, "Configuration").
const (
	DefaultSecretTTL      = 5 * time.Minute
	DefaultTimeout        = 10 * time.Second
	DefaultMaxUploadBytes = 104857600
	DefaultUploadPrefix   = "templates/"
	DefaultMediaPrefix    = "media/"
	DefaultArchivePrefix  = "inbound/"
	DefaultClaimLease     = 30 * time.Second
	DefaultUploadURLTTL   = 15 * time.Minute
	// MaxUploadURLTTL is the longest lifetime S3 accepts for a SigV4
	// presigned URL.
	MaxUploadURLTTL  = 7 * 24 * time.Hour
	DefaultSettle    = 15 * time.Minute
	DefaultNamespace = "NXCloudMedia"
	// MaxClaimLease is the longest claim lease: a claim whose holder died is
	// stale within it (plus a few seconds for clocks), before Lambda's first
	// retry about a minute later.
	MaxClaimLease = 60 * time.Second
	// MinClaimLease is the shortest lease (tests use it to replay a crash).
	MinClaimLease = time.Second
	// ReservedPrefix starts the keys the upload function keeps for itself
	// (claims and records); no upload prefix may start with it.
	ReservedPrefix = "nxcloud-"
)

// Config is the validated configuration of the functions. Each function reads
// the fields it needs.
type Config struct {
	SecretID       string
	BaseURL        string
	BusinessPhone  string // default merchant phone; may be empty
	SecretTTL      time.Duration
	SignAlgorithm  nxcloud.Algorithm
	Timeout        time.Duration
	MaxUploadBytes int64
	UploadPrefix   string // template files (uploadTemplateFile)
	MediaPrefix    string // message media (uploadMedia)
	ArchivePrefix  string // where archived media are written
	ClaimLease     time.Duration
	MediaBucket    string        // the stack's media bucket; may be empty
	UploadURLTTL   time.Duration // lifetime of a presigned upload URL
	// Settle is the age below which the sweep leaves a version to its event.
	Settle time.Duration
	// Namespace is the CloudWatch namespace of the EMF metrics.
	Namespace string
}

// ValidPhone reports whether s is a merchant phone: 5 to 20 ASCII digits.
// (A loop rather than a regexp: compiling one at package init costs every
// cold start about half a millisecond.)
func ValidPhone(s string) bool {
	if len(s) < 5 || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// FromEnv reads and validates every variable. getenv is os.Getenv in the
// functions and a map lookup in tests. required names the variables the
// calling function cannot run without: EnvSecretID for the functions that
// call NXCloud, EnvMediaBucket for the upload sessions; any other variable
// has a default or may be empty. Every problem found is reported, each naming
// its variable.
func FromEnv(getenv func(string) string, required ...string) (Config, error) {
	c := Config{
		SecretTTL:      DefaultSecretTTL,
		Timeout:        DefaultTimeout,
		MaxUploadBytes: DefaultMaxUploadBytes,
		UploadPrefix:   DefaultUploadPrefix,
		MediaPrefix:    DefaultMediaPrefix,
		ArchivePrefix:  DefaultArchivePrefix,
		ClaimLease:     DefaultClaimLease,
		UploadURLTTL:   DefaultUploadURLTTL,
		Settle:         DefaultSettle,
		Namespace:      DefaultNamespace,
		BaseURL:        nxcloud.DefaultBaseURL,
		SignAlgorithm:  nxcloud.MD5,
	}
	var errs []error
	bad := func(name, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, a...)))
	}

	c.SecretID = strings.TrimSpace(getenv(EnvSecretID))
	if c.SecretID == "" && slices.Contains(required, EnvSecretID) {
		bad(EnvSecretID, "is required: set it to the name or ARN of the Secrets Manager secret holding {\"accessKey\",\"accessSecret\"}")
	}

	if v := strings.TrimSpace(getenv(EnvBaseURL)); v != "" {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(EnvBaseURL, "%q is not an http(s) URL such as %s", v, nxcloud.DefaultBaseURL)
		} else {
			c.BaseURL = strings.TrimRight(v, "/")
		}
	}

	if v := strings.TrimSpace(getenv(EnvBusinessPhone)); v != "" {
		if !ValidPhone(v) {
			bad(EnvBusinessPhone, "%q is not a phone number of 5 to 20 digits with country code (e.g. 8615812341795)", v)
		} else {
			c.BusinessPhone = v
		}
	}

	duration := func(name string, def time.Duration, dst *time.Duration) {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			*dst = def
			return
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			bad(name, "%q is not a positive Go duration such as %s", v, def)
			return
		}
		*dst = d
	}
	duration(EnvSecretTTL, DefaultSecretTTL, &c.SecretTTL)
	duration(EnvTimeout, DefaultTimeout, &c.Timeout)
	duration(EnvClaimLease, DefaultClaimLease, &c.ClaimLease)
	duration(EnvUploadURLTTL, DefaultUploadURLTTL, &c.UploadURLTTL)
	switch {
	case c.UploadURLTTL > MaxUploadURLTTL:
		bad(EnvUploadURLTTL, "%s is longer than %s, the longest S3 accepts for a presigned URL", c.UploadURLTTL, MaxUploadURLTTL)
	case c.UploadURLTTL < time.Second:
		bad(EnvUploadURLTTL, "%s is shorter than 1s: a presigned URL lives whole seconds", c.UploadURLTTL)
	}
	duration(EnvSettle, DefaultSettle, &c.Settle)
	switch {
	case c.ClaimLease > MaxClaimLease:
		bad(EnvClaimLease, "%s is longer than %s: a dead holder's claim must go stale before Lambda's first retry", c.ClaimLease, MaxClaimLease)
	case c.ClaimLease < MinClaimLease:
		bad(EnvClaimLease, "%s is shorter than %s: the lease is renewed every third of it, each renewal an S3 request", c.ClaimLease, MinClaimLease)
	}

	if v := getenv(EnvSignAlgorithm); v != "" {
		a, err := nxcloud.ParseAlgorithm(v)
		if err != nil {
			bad(EnvSignAlgorithm, "%q is not md5 or sha256", v)
		} else {
			c.SignAlgorithm = a
		}
	}

	if v := strings.TrimSpace(getenv(EnvMaxUploadBytes)); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			bad(EnvMaxUploadBytes, "%q is not a positive number of bytes such as %d", v, DefaultMaxUploadBytes)
		} else {
			c.MaxUploadBytes = n
		}
	}

	prefixes := []struct {
		name, example string
		dst           *string
	}{
		{EnvUploadPrefix, DefaultUploadPrefix, &c.UploadPrefix},
		{EnvMediaPrefix, DefaultMediaPrefix, &c.MediaPrefix},
		{EnvArchivePrefix, DefaultArchivePrefix, &c.ArchivePrefix},
	}
	valid := true
	for _, p := range prefixes {
		v := getenv(p.name)
		if v == "" {
			continue
		}
		if why := prefixProblem(v, p.example); why != "" {
			bad(p.name, "%q %s", v, why)
			valid = false
			continue
		}
		*p.dst = v
	}
	// S3 refuses overlapping notification prefixes, and a file must have
	// one destination.
	for i, a := range prefixes {
		for _, b := range prefixes[i+1:] {
			if valid && (strings.HasPrefix(*a.dst, *b.dst) || strings.HasPrefix(*b.dst, *a.dst)) {
				bad(a.name, "%q overlaps %s %q: the prefixes must be apart (none a prefix of another), so that every file has one destination", *a.dst, b.name, *b.dst)
			}
		}
	}

	c.MediaBucket = strings.TrimSpace(getenv(EnvMediaBucket))
	switch {
	case c.MediaBucket == "" && slices.Contains(required, EnvMediaBucket):
		bad(EnvMediaBucket, "is required: set it to the name of the stack's media bucket (the template sets it)")
	case c.MediaBucket != "" && !validBucketName(c.MediaBucket):
		bad(EnvMediaBucket, "%q is not an S3 bucket name: 3 to 63 lower-case letters, digits, dots and hyphens", c.MediaBucket)
	}

	if v := strings.TrimSpace(getenv(EnvNamespace)); v != "" {
		if !validNamespace(v) {
			bad(EnvNamespace, "%q is not a CloudWatch namespace (1 to 255 letters, digits and . - _ / # : space, not starting with AWS/)", v)
		} else {
			c.Namespace = v
		}
	}

	if len(errs) > 0 {
		return Config{}, fmt.Errorf("invalid configuration: %w", errors.Join(errs...))
	}
	return c, nil
}

// prefixProblem says what is wrong with a key prefix, or "".
func prefixProblem(v, example string) string {
	switch {
	case strings.HasPrefix(v, "/"):
		return "must not start with /: S3 keys have no leading slash (e.g. " + example + ")"
	case !strings.HasSuffix(v, "/"):
		return "must end with / (e.g. " + example + ")"
	case strings.HasPrefix(v, ReservedPrefix):
		return "must not start with " + ReservedPrefix + ": the bundle keeps its claims and records there"
	}
	return ""
}

// validBucketName reports whether s is an S3 bucket name: 3 to 63 lower-case
// letters, digits, dots and hyphens, starting and ending with a letter or a
// digit.
func validBucketName(s string) bool {
	if len(s) < 3 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (c != '.' && c != '-' || i == 0 || i == len(s)-1) {
			return false
		}
	}
	return true
}

// validNamespace reports whether s is a custom CloudWatch namespace: 1 to 255
// characters among letters, digits and . - _ / # : and space, not in the
// AWS/ namespaces reserved for AWS.
func validNamespace(s string) bool {
	if len(s) > 255 || strings.HasPrefix(s, "AWS/") {
		return false
	}
	for _, r := range s {
		ok := (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || strings.ContainsRune(".-_/#: ", r)
		if !ok {
			return false
		}
	}
	return s != ""
}
