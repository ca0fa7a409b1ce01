package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/config"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestFromEnvDefaults(t *testing.T) {
	t.Parallel()
	c, err := config.FromEnv(env(map[string]string{config.EnvSecretID: "nxcloud/prod"}))
	if err != nil {
		t.Fatal(err)
	}
	want := config.Config{
		SecretID:       "nxcloud/prod",
		BaseURL:        nxcloud.DefaultBaseURL,
		SecretTTL:      5 * time.Minute,
		SignAlgorithm:  nxcloud.MD5,
		Timeout:        10 * time.Second,
		MaxUploadBytes: 104857600,
		UploadPrefix:   "templates/",
		MediaPrefix:    "media/",
		ArchivePrefix:  "inbound/",
		ClaimLease:     30 * time.Second,
		UploadURLTTL:   15 * time.Minute,
		Settle:         15 * time.Minute,
		Namespace:      "NXCloudMedia",
	}
	if c != want {
		t.Errorf("FromEnv = %+v, want %+v", c, want)
	}
}

func TestFromEnvValues(t *testing.T) {
	t.Parallel()
	c, err := config.FromEnv(env(map[string]string{
		config.EnvSecretID:       "arn:aws:secretsmanager:us-east-1:123456789012:secret:nx-AbCdEf",
		config.EnvBaseURL:        "http://127.0.0.1:8081/",
		config.EnvBusinessPhone:  "8615812341795",
		config.EnvSecretTTL:      "90s",
		config.EnvSignAlgorithm:  "SHA256",
		config.EnvTimeout:        "2s",
		config.EnvMaxUploadBytes: "1048576",
		config.EnvUploadPrefix:   "wa/templates/",
		config.EnvMediaPrefix:    "wa/media/",
		config.EnvArchivePrefix:  "wa/inbound/",
		config.EnvClaimLease:     "1m",
		config.EnvMediaBucket:    "nxcloud-media-123456789012-eu-west-1-0a1b2c3d4e5f",
		config.EnvUploadURLTTL:   "1h30m",
		config.EnvSettle:         "2m",
		config.EnvNamespace:      "Shop/NXCloud Media",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.BaseURL != "http://127.0.0.1:8081" || c.BusinessPhone != "8615812341795" || c.SecretTTL != 90*time.Second ||
		c.SignAlgorithm != nxcloud.SHA256 || c.Timeout != 2*time.Second || c.MaxUploadBytes != 1048576 || c.UploadPrefix != "wa/templates/" || c.MediaPrefix != "wa/media/" || c.ArchivePrefix != "wa/inbound/" || c.ClaimLease != time.Minute ||
		c.MediaBucket != "nxcloud-media-123456789012-eu-west-1-0a1b2c3d4e5f" || c.UploadURLTTL != 90*time.Minute ||
		c.Settle != 2*time.Minute || c.Namespace != "Shop/NXCloud Media" {
		t.Errorf("FromEnv = %+v", c)
	}
}

// A bad value of any variable is an error that names the variable.
func TestFromEnvBadValueNamesVariable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, value string }{
		{config.EnvSecretID, ""},
		{config.EnvBaseURL, "api2.nxcloud.com"},
		{config.EnvBaseURL, "ftp://x"},
		{config.EnvBusinessPhone, "+8615812341795"},
		{config.EnvBusinessPhone, "1234"},
		{config.EnvSecretTTL, "5 minutes"},
		{config.EnvSecretTTL, "-1s"},
		{config.EnvSignAlgorithm, "sha1"},
		{config.EnvTimeout, "0"},
		{config.EnvMaxUploadBytes, "100MB"},
		{config.EnvMaxUploadBytes, "-1"},
		{config.EnvUploadPrefix, "templates"},
		{config.EnvUploadPrefix, "/templates/"},
		{config.EnvUploadPrefix, "nxcloud-claims/"},
		{config.EnvUploadPrefix, "nxcloud-records/templates/"},
		{config.EnvMediaPrefix, "media"},
		{config.EnvMediaPrefix, "nxcloud-media/"},
		{config.EnvArchivePrefix, "/inbound/"},
		{config.EnvMediaPrefix, "templates/"},          // the same as UPLOAD_PREFIX
		{config.EnvMediaPrefix, "templates/media/"},    // inside UPLOAD_PREFIX
		{config.EnvArchivePrefix, "med"},               // no slash
		{config.EnvArchivePrefix, "media/inbound/"},    // inside MEDIA_PREFIX
		{config.EnvUploadPrefix, "inbound/templates/"}, // inside ARCHIVE_PREFIX
		{config.EnvClaimLease, "61s"},
		{config.EnvClaimLease, "500ms"},
		{config.EnvClaimLease, "soon"},
		{config.EnvMediaBucket, ""},
		{config.EnvMediaBucket, "Media_Bucket"},
		{config.EnvMediaBucket, "ab"},
		{config.EnvMediaBucket, "-media"},
		{config.EnvMediaBucket, "arn:aws:s3:::media"},
		{config.EnvUploadURLTTL, "15"},
		{config.EnvUploadURLTTL, "0s"},
		{config.EnvUploadURLTTL, "169h"},
		{config.EnvUploadURLTTL, "500ms"},
		{config.EnvMediaBucket, "s3://nxcloud-media"},
		{config.EnvSettle, "15"},
		{config.EnvSettle, "0s"},
		{config.EnvNamespace, "AWS/Lambda"},
		{config.EnvNamespace, "NXCloud\nMedia"},
	} {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			t.Parallel()
			vars := map[string]string{config.EnvSecretID: "s", config.EnvMediaBucket: "media"}
			vars[tc.name] = tc.value
			_, err := config.FromEnv(env(vars), config.EnvSecretID, config.EnvMediaBucket)
			if err == nil || !strings.Contains(err.Error(), tc.name) {
				t.Errorf("FromEnv(%s=%q) = %v, want an error naming %s", tc.name, tc.value, err, tc.name)
			}
		})
	}
}

// A variable is required only by the functions that name it: the upload
// sessions read no secret, the NXCloud functions need no bucket.
func TestFromEnvRequired(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		vars     map[string]string
		required []string
		wantErr  string // names the variable; empty for success
	}{
		{"sessions without a secret id", map[string]string{config.EnvMediaBucket: "media"}, []string{config.EnvMediaBucket}, ""},
		{"sessions without a bucket", map[string]string{config.EnvSecretID: "s"}, []string{config.EnvMediaBucket}, config.EnvMediaBucket},
		{"nxcloud without a bucket", map[string]string{config.EnvSecretID: "s"}, []string{config.EnvSecretID}, ""},
		{"nxcloud without a secret id", map[string]string{config.EnvMediaBucket: "media"}, []string{config.EnvSecretID}, config.EnvSecretID},
		{"a bad value of a variable not required", map[string]string{config.EnvMediaBucket: "media", config.EnvTimeout: "soon"}, []string{config.EnvMediaBucket}, config.EnvTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.FromEnv(env(tc.vars), tc.required...)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("FromEnv = %v, want no error", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("FromEnv = %v, want an error naming %s", err, tc.wantErr)
			}
		})
	}
}

func TestValidPhone(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"12345": true, "12345678901234567890": true, "8615812341795": true,
		"1234": false, "123456789012345678901": false, "": false, "86158x1795": false,
		"+8615812341795": false, "８６１５８１２３４": false, " 12345": false,
	} {
		if got := config.ValidPhone(s); got != want {
			t.Errorf("ValidPhone(%q) = %v, want %v", s, got, want)
		}
	}
}
