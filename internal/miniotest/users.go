package miniotest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"

	"github.com/minio/madmin-go/v3"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Credentials are a MinIO user's keys.
type Credentials struct {
	AccessKey, SecretKey string
}

// Env is the credentials as the AWS SDK reads them from the environment.
func (c Credentials) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + c.AccessKey, "AWS_SECRET_ACCESS_KEY=" + c.SecretKey}
}

// NewCredentials returns fresh random keys in the form of AWS's: an access
// key id of 20 upper-case letters and digits starting with AKIA (MinIO takes
// at most 20), a secret of 40 characters.
func NewCredentials() Credentials {
	// rand.Text is base32: upper-case letters and the digits 2 to 7.
	return Credentials{AccessKey: "AKIA" + rand.Text()[:16], SecretKey: (rand.Text() + rand.Text())[:40]}
}

// AddUser creates, through MinIO's admin API (madmin), a user with fresh
// credentials whose only rights are policy, an IAM policy document that
// MinIO stores as the canned policy name (replacing one of that name). A
// user with no policy can do nothing: pass nil to create one.
func (s *Server) AddUser(ctx context.Context, name string, policy []byte) (Credentials, error) {
	u, err := url.Parse(s.Endpoint)
	if err != nil {
		return Credentials{}, err
	}
	adm, err := madmin.NewWithOptions(u.Host, &madmin.Options{Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""), Secure: u.Scheme == "https"})
	if err != nil {
		return Credentials{}, fmt.Errorf("minio admin client: %w", err)
	}
	c := NewCredentials()
	if err := adm.AddUser(ctx, c.AccessKey, c.SecretKey); err != nil {
		return Credentials{}, fmt.Errorf("minio: add user for %s: %w", name, err)
	}
	if policy == nil {
		return c, nil
	}
	if err := adm.AddCannedPolicy(ctx, name, policy); err != nil {
		return Credentials{}, fmt.Errorf("minio: policy %s: %w\n%s", name, err, policy)
	}
	if _, err := adm.AttachPolicy(ctx, madmin.PolicyAssociationReq{Policies: []string{name}, User: c.AccessKey}); err != nil {
		return Credentials{}, fmt.Errorf("minio: attach policy %s: %w", name, err)
	}
	return c, nil
}
