package localstack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/iampolicy"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localsm"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/miniotest"
)

// The resources of template.yaml the local run stands in for.
const (
	bucketResource = "MediaBucket"
	secretResource = "NxcloudSecret"
)

// Roles gives every function the credentials of its role in template.yaml:
// a MinIO user whose policy is the S3 part of the function's policy, and
// the same access key id known to the local Secrets Manager (Authorize),
// which grants the Secrets Manager part. A function's environment names
// its deployment (UPLOAD_PREFIX is the UploadPrefix parameter, MEDIA_BUCKET
// the bucket): each deployment gets a user of its own, with its policy.
// Every role is known to Ledger, which the least-privilege check reads.
type Roles struct {
	template []byte
	minio    *miniotest.Server
	secrets  *localsm.Server
	base     iampolicy.Local
	ledger   iampolicy.Ledger
	stack    map[string]iampolicy.Policy

	mu    sync.Mutex
	byKey map[string]iampolicy.Policy
	cache map[string]miniotest.Credentials // by function and deployment
}

// NewRoles reads the functions' policies from template.yaml under root,
// for the local bucket on m and the stack's secret, secretID in sm. Without
// m, only functions without S3 grants have roles. A parameter
// that names another secret of sm by name (NXCLOUD_SECRET_ID=name is
// ExistingSecretArn) is its ARN, as the template requires.
func NewRoles(root string, m *miniotest.Server, bucket string, sm *localsm.Server, secretID string) (*Roles, error) {
	tpl, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		return nil, err
	}
	arn := sm.ARN(secretID)
	if arn == "" {
		return nil, fmt.Errorf("the local Secrets Manager has no secret %q", secretID)
	}
	r := &Roles{template: tpl, minio: m, secrets: sm, byKey: map[string]iampolicy.Policy{}, cache: map[string]miniotest.Credentials{},
		base: iampolicy.Local{Buckets: map[string]string{bucketResource: bucket}, Refs: map[string]string{secretResource: arn}}}
	if r.stack, err = iampolicy.Load(tpl, r.base); err != nil {
		return nil, fmt.Errorf("template.yaml: %w", err)
	}
	return r, nil
}

// Policies are the functions' policies as the stack deploys them, by
// logical id.
func (r *Roles) Policies() map[string]iampolicy.Policy { return r.stack }

// Ledger is the record of what the roles did.
func (r *Roles) Ledger() *iampolicy.Ledger { return &r.ledger }

// Env returns env, a function's environment, with the credentials of the
// role of logicalID deployed as env says (AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY replaced).
func (r *Roles) Env(ctx context.Context, logicalID string, env []string) ([]string, error) {
	vars := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	d, err := iampolicy.Deployed(r.template, logicalID, vars, r.base)
	if err != nil {
		return nil, err
	}
	// MEDIA_BUCKET names the deployment's bucket, whether or not the
	// function reads it (the upload function's policy names it with !Sub).
	if b := vars["MEDIA_BUCKET"]; b != "" {
		d.Buckets[bucketResource] = b
	}
	for p, v := range d.Parameters {
		switch arn := r.secrets.ARN(v); arn {
		case "":
		case r.base.Refs[secretResource]:
			delete(d.Parameters, p) // the stack's own secret
		default:
			d.Parameters[p] = arn
		}
	}
	c, err := r.credentials(ctx, logicalID, d)
	if err != nil {
		return nil, err
	}
	out := slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		return strings.HasPrefix(kv, "AWS_ACCESS_KEY_ID=") || strings.HasPrefix(kv, "AWS_SECRET_ACCESS_KEY=") || strings.HasPrefix(kv, "AWS_SESSION_TOKEN=")
	})
	return append(out, c.Env()...), nil
}

// credentials returns the keys of a function deployed as d, creating its
// MinIO user the first time.
func (r *Roles) credentials(ctx context.Context, logicalID string, d iampolicy.Local) (miniotest.Credentials, error) {
	id, _ := json.Marshal(struct {
		F string
		D iampolicy.Local
	}{logicalID, d})
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.cache[string(id)]; ok {
		return c, nil
	}
	policies, err := iampolicy.Load(r.template, d)
	if err != nil {
		return miniotest.Credentials{}, fmt.Errorf("template.yaml: %w", err)
	}
	p, ok := policies[logicalID]
	if !ok {
		return miniotest.Credentials{}, fmt.Errorf("%s is not a function of template.yaml", logicalID)
	}
	doc, hasS3 := p.S3() // nil: a user that can do nothing in S3
	var c miniotest.Credentials
	switch {
	case r.minio != nil:
		// MinIO's policies are named server-wide: one per role.
		if c, err = r.minio.AddUser(ctx, logicalID+"-"+miniotest.NewCredentials().AccessKey, doc); err != nil {
			return miniotest.Credentials{}, err
		}
	case hasS3:
		return miniotest.Credentials{}, fmt.Errorf("%s has S3 grants: its role needs MinIO", logicalID)
	default:
		c = miniotest.NewCredentials() // no S3: keys only the local Secrets Manager knows
	}
	r.cache[string(id)], r.byKey[c.AccessKey] = c, p
	r.ledger.Role(c.AccessKey, p)
	return c, nil
}

// Authorize is the local Secrets Manager's authorizer: a function's key
// may do what its policy grants; any other key (the operator's) anything.
func (r *Roles) Authorize(accessKeyID, action, resource string) bool {
	r.mu.Lock()
	p, ok := r.byKey[accessKeyID]
	r.mu.Unlock()
	if !ok {
		return true
	}
	allowed := p.Allows(action, resource)
	r.ledger.Record(accessKeyID, strings.Replace(action, ":", ".", 1), !allowed, iampolicy.Access{Action: action, Resource: resource})
	return allowed
}

// Recorder returns a reverse proxy to the S3 endpoint target that records
// in the ledger the IAM actions of every request a role signs, and whether
// S3 refused it as not authorized.
func (r *Roles) Recorder(target *url.URL) http.Handler {
	proxy := httputil.NewSingleHostReverseProxy(target) // keeps the Host the SDK signed
	proxy.ModifyResponse = func(resp *http.Response) error {
		req := resp.Request
		denied := false
		if resp.StatusCode == http.StatusForbidden {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
			resp.Body = io.NopCloser(bytes.NewReader(body))
			// An expired presigned URL is AccessDenied too, but no grant's.
			denied = bytes.Contains(body, []byte("<Code>AccessDenied</Code>")) && !bytes.Contains(body, []byte("expired"))
		}
		what := s3Operation(req)
		if req.URL.Query().Get("versionId") != "" {
			what += " of a version"
		}
		r.ledger.Record(iampolicy.AccessKeyID(req), what, denied, iampolicy.S3Request(req.Method, req.URL, req.Header, resp.StatusCode)...)
		return nil
	}
	return proxy
}
