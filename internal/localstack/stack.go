package localstack

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/iampolicy"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localsm"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/miniotest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/upload"
)

// Logical ids of the functions, as in template.yaml.
const (
	GetMediaFunction           = "GetMediaFunction"
	DeleteMediaFunction        = "DeleteMediaFunction"
	UploadTemplateFileFunction = "UploadTemplateFileFunction"
	UploadMediaFunction        = "UploadMediaFunction"
	UploadSessionsFunction     = "UploadSessionsFunction"
	ReconcileFunction          = "ReconcileFunction"
	ArchiveMediaFunction       = "ArchiveMediaFunction"
)

// Functions lists the logical ids with the package each is built from.
var Functions = map[string]string{
	GetMediaFunction:           "./functions/get-media",
	DeleteMediaFunction:        "./functions/delete-media",
	UploadTemplateFileFunction: "./functions/upload-template-file",
	UploadMediaFunction:        "./functions/upload-media",
	UploadSessionsFunction:     "./functions/upload-sessions",
	ReconcileFunction:          "./functions/reconcile",
	ArchiveMediaFunction:       "./functions/archive-media",
}

// The local run for `sam local invoke` in Docker (cmd/local -docker):
// the stand-ins on these ports of every interface, where
// host.docker.internal reaches them, and the bucket events/env.json and
// events/s3-put.json name.
const (
	DockerNXCloudPort = 8081
	DockerSecretsPort = 8082
	DockerS3Port      = 9000
	DockerBucket      = "nxcloud-media-123456789012-us-east-1-0123456789ab"
)

// Embedded defaults of the local run.
const (
	DefaultBucket       = "nxcloud-media-local"
	DefaultPrefix       = "templates/"
	DefaultMediaPrefix  = "media/"
	DefaultSecretID     = "nxcloud/local"
	DefaultAccessKey    = "local-access-key"
	DefaultAccessSecret = "local-access-secret"
	DefaultPhone        = "8615812341795"
	// SampleMediaID is known to the local NXCloud from the start, so that the
	// files in events/ answer 200 (it is the id the NXCloud docs use).
	SampleMediaID = "fd81acff-eea8-4d9d-acc9-6c62904d6615"
	// SampleInboundMediaID is a photo a customer sent, as NXCloud's webhook
	// would name it: the local NXCloud serves its bytes (SampleJPEG), so that
	// it can be archived (it is the id of events/archive-media.json).
	SampleInboundMediaID = "3604357656489911"
	// DefaultArchivePrefix is ARCHIVE_PREFIX of the local run.
	DefaultArchivePrefix = "inbound/"
	// FailureQueuePath lists the local failure queue (GET, JSON).
	FailureQueuePath = "/local/failure-queue"
)

// Options configure a local stack. The zero value runs everything locally on
// free loopback ports with the embedded defaults.
type Options struct {
	// RepoRoot is the module root the functions are built from; empty means
	// found from the working directory.
	RepoRoot string
	// BinDir receives the built bootstrap binaries; empty means a temporary
	// directory.
	BinDir string
	// Addr is the HTTP front's address (API Gateway); empty means 127.0.0.1:0.
	Addr string
	// NXCloudAddr, SecretsAddr and S3Addr are the addresses of the local
	// NXCloud, Secrets Manager and S3 (MinIO); empty means free loopback
	// ports. Docker gives fixed ones for `sam local invoke`.
	NXCloudAddr, SecretsAddr, S3Addr string
	// Bucket is the media bucket; empty means DefaultBucket.
	Bucket string
	// NXCloudBaseURL points the functions at a real NXCloud; empty starts the
	// local NXCloud. AccessKey and AccessSecret are then the real credentials.
	NXCloudBaseURL, AccessKey, AccessSecret string
	// BusinessPhone is NXCLOUD_BUSINESS_PHONE; empty means none.
	BusinessPhone string
	// Env is added to every function's environment and wins over the
	// defaults, e.g. NXCLOUD_SIGN_ALGORITHM=sha256 or a bad value to see init
	// fail.
	Env []string
	// HTTPTimeout and UploadTimeout are the functions' timeouts, as in
	// template.yaml; zero means 29s and 300s (the sweep's too).
	HTTPTimeout, UploadTimeout time.Duration
	// UploadConcurrency is how many execution environments the upload
	// function may use at once (Lambda scales out per event); zero means 2.
	UploadConcurrency int
	// MaxRetryAttempts and RetryDelay mirror the asynchronous invocation
	// retries of EventInvokeConfig; zero values mean 2 retries, 1s apart
	// (Lambda waits about a minute, then two).
	MaxRetryAttempts int
	RetryDelay       time.Duration
	// ReconcileEvery runs the sweep (ReconcileFunction) that often, as the
	// template's schedule does, and prints its summary; zero runs it only
	// when invoked. ReconcileSettle is its RECONCILE_SETTLE (zero: the
	// function's default).
	ReconcileEvery, ReconcileSettle time.Duration
	// RecordS3 sends the functions' S3 requests through a proxy that records
	// them in Roles().Ledger() for the least-privilege check (S3Endpoint is
	// then the proxy's). Secrets Manager calls are recorded either way.
	RecordS3 bool
	// Log receives progress lines and the functions' log lines; nil discards.
	Log io.Writer
}

// FailedEvent is the record of an S3 event whose invocations all failed, in
// the shape of the invocation record Lambda sends the stack's SQS on-failure
// destination in AWS (the message body operators read there):
// https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html
type FailedEvent struct {
	Version   string `json:"version"`   // "1.0"
	Timestamp string `json:"timestamp"` // RFC 3339 in UTC, milliseconds
	// RequestContext says which invocation failed, why ("RetriesExhausted")
	// and after how many attempts.
	RequestContext struct {
		RequestID              string `json:"requestId"`
		FunctionARN            string `json:"functionArn"`
		Condition              string `json:"condition"`
		ApproximateInvokeCount int    `json:"approximateInvokeCount"`
	} `json:"requestContext"`
	// RequestPayload is the event.
	RequestPayload  json.RawMessage `json:"requestPayload"`
	ResponseContext struct {
		StatusCode      int    `json:"statusCode"`
		ExecutedVersion string `json:"executedVersion"`
		FunctionError   string `json:"functionError"`
	} `json:"responseContext"`
	// ResponsePayload is the last attempt's error document.
	ResponsePayload struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	} `json:"responsePayload"`
}

// Stack is a running local bundle: the local NXCloud (unless a real one is
// used), the local Secrets Manager, MinIO with the media bucket, the
// functions under the Lambda Runtime API, the HTTP front and the S3 event
// delivery.
type Stack struct {
	// APIURL is the HTTP API's base URL, e.g. http://127.0.0.1:3000.
	APIURL string
	// S3Endpoint, SecretsEndpoint and NXCloudURL are the local endpoints:
	// the ones the functions use.
	S3Endpoint, SecretsEndpoint, NXCloudURL string
	Bucket, Prefix, MediaPrefix, SecretID   string
	// ArchivePrefix is where ArchiveMediaFunction writes.
	ArchivePrefix string

	// NXCloud is the local NXCloud, nil when a real one is used.
	NXCloud *nxcloudtest.Server
	// Secrets is the local Secrets Manager.
	Secrets *localsm.Server
	// MinIO is the local S3.
	MinIO *miniotest.Server

	opts     Options
	root     string
	tmpBin   string     // the binaries' temporary folder, removed by Close
	logMu    sync.Mutex // one line at a time into opts.Log
	bins     map[string]string
	env      []string            // what every function gets, credentials aside
	fnEnv    map[string][]string // each function's, with its role's credentials
	roles    *Roles
	servers  []*http.Server
	runtimes map[string]*pool

	wg       sync.WaitGroup
	mu       sync.Mutex
	closed   bool
	failed   []FailedEvent
	inflight int // S3 events being delivered, retries included
	closing  chan struct{}
}

// Start builds the functions for this host, starts every part and waits until
// each is ready. Close stops them all.
func Start(ctx context.Context, opts Options) (st *Stack, err error) {
	opts.HTTPTimeout = cmp.Or(opts.HTTPTimeout, 29*time.Second)
	opts.UploadTimeout = cmp.Or(opts.UploadTimeout, 300*time.Second)
	opts.UploadConcurrency = cmp.Or(opts.UploadConcurrency, 2)
	opts.MaxRetryAttempts = cmp.Or(opts.MaxRetryAttempts, 2)
	opts.RetryDelay = cmp.Or(opts.RetryDelay, time.Second)
	opts.Log = cmp.Or[io.Writer](opts.Log, io.Discard)
	s := &Stack{opts: opts, Bucket: cmp.Or(opts.Bucket, DefaultBucket), Prefix: DefaultPrefix, MediaPrefix: DefaultMediaPrefix, ArchivePrefix: DefaultArchivePrefix,
		SecretID: DefaultSecretID, runtimes: map[string]*pool{}, closing: make(chan struct{})}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := s.build(ctx); err != nil {
		return nil, err
	}

	// NXCloud: local unless a real one is named.
	ak, secret := opts.AccessKey, opts.AccessSecret
	if opts.NXCloudBaseURL != "" {
		if ak == "" || secret == "" {
			return nil, errors.New("a real NXCloud needs its credentials: set NXCLOUD_ACCESS_KEY and NXCLOUD_ACCESS_SECRET")
		}
		s.NXCloudURL = strings.TrimRight(opts.NXCloudBaseURL, "/")
		s.progress("using the real NXCloud at %s", s.NXCloudURL)
	} else {
		if ak == "" {
			ak, secret = DefaultAccessKey, DefaultAccessSecret
		}
		// The local NXCloud keeps the files it is sent, so that the url
		// getMedia answers (and GET /media/{mediaId}/content redirects to)
		// serves them.
		s.NXCloud = nxcloudtest.NewServer(nxcloudtest.WithCredentials(ak, secret), nxcloudtest.WithKeepContent(true),
			nxcloudtest.WithLogger(slog.New(slog.NewJSONHandler(s.Output("nxcloud"), nil))))
		s.seedFixtures()
		if s.NXCloudURL, err = s.NXCloud.Start(cmp.Or(opts.NXCloudAddr, "127.0.0.1:0")); err != nil {
			return nil, fmt.Errorf("local nxcloud: %w", err)
		}
		s.NXCloudURL = loopback(s.NXCloudURL)
		s.progress("local NXCloud (signature enforced) at %s", s.NXCloudURL)
	}

	s.Secrets = localsm.New()
	secretJSON, _ := json.Marshal(map[string]string{"accessKey": ak, "accessSecret": secret})
	s.Secrets.Put(s.SecretID, string(secretJSON))
	if s.SecretsEndpoint, err = s.Secrets.Start(cmp.Or(opts.SecretsAddr, "127.0.0.1:0")); err != nil {
		return nil, fmt.Errorf("local secrets manager: %w", err)
	}
	s.SecretsEndpoint = loopback(s.SecretsEndpoint)
	s.progress("local Secrets Manager at %s (secret %q)", s.SecretsEndpoint, s.SecretID)

	// The S3 event webhook listens before MinIO starts, so MinIO finds its
	// notification target online.
	hook, err := s.serve("127.0.0.1:0", http.HandlerFunc(s.serveWebhook))
	if err != nil {
		return nil, err
	}
	s.progress("starting MinIO")
	if s.MinIO, err = miniotest.Run(ctx, miniotest.Options{Output: s.Output("minio"), Address: opts.S3Addr, Env: []string{
		"MINIO_NOTIFY_WEBHOOK_ENABLE_LOCAL=on",
		"MINIO_NOTIFY_WEBHOOK_ENDPOINT_LOCAL=http://" + hook + "/s3-events",
	}}); err != nil {
		return nil, fmt.Errorf("minio: %w", err)
	}
	s.S3Endpoint = s.MinIO.Endpoint
	if err := s.setupBucket(ctx); err != nil {
		return nil, err
	}
	s.progress("MinIO at %s, bucket %q (versioned; events under %q to UploadTemplateFileFunction, under %q to UploadMediaFunction)", s.S3Endpoint, s.Bucket, s.Prefix, s.MediaPrefix)

	// Every function runs with its own credentials, which carry exactly the
	// policy template.yaml grants it.
	if s.roles, err = NewRoles(s.root, s.MinIO, s.Bucket, s.Secrets, s.SecretID); err != nil {
		return nil, err
	}
	s.Secrets.SetAuthorizer(s.roles.Authorize)
	if opts.RecordS3 {
		target, _ := url.Parse(s.MinIO.Endpoint)
		addr, err := s.serve("127.0.0.1:0", s.roles.Recorder(target))
		if err != nil {
			return nil, err
		}
		s.S3Endpoint = "http://" + addr
	}

	s.env = []string{
		"NXCLOUD_SECRET_ID=" + s.SecretID,
		"NXCLOUD_BASE_URL=" + s.NXCloudURL,
		"UPLOAD_PREFIX=" + s.Prefix,
		"MEDIA_PREFIX=" + s.MediaPrefix,
		"ARCHIVE_PREFIX=" + s.ArchivePrefix,
		"MEDIA_BUCKET=" + s.Bucket,
		"POWERTOOLS_SERVICE_NAME=" + iampolicy.LocalStackName,
		"AWS_REGION=" + miniotest.Region,
		"AWS_ENDPOINT_URL_S3=" + s.S3Endpoint,
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + s.SecretsEndpoint,
		"AWS_EC2_METADATA_DISABLED=true",
	}
	if opts.BusinessPhone != "" {
		s.env = append(s.env, "NXCLOUD_BUSINESS_PHONE="+opts.BusinessPhone)
	}
	if opts.ReconcileSettle > 0 {
		s.env = append(s.env, "RECONCILE_SETTLE="+opts.ReconcileSettle.String())
	}
	s.env = append(s.env, opts.Env...)
	s.fnEnv = map[string][]string{}
	for id := range Functions {
		if s.fnEnv[id], err = s.roles.Env(ctx, id, s.env); err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
	}
	s.progress("each function has its own credentials, with the policy template.yaml grants it (MinIO users, Secrets Manager)")
	for id := range Functions {
		timeout, size := opts.HTTPTimeout, 1
		switch id {
		case UploadTemplateFileFunction, UploadMediaFunction:
			timeout, size = opts.UploadTimeout, opts.UploadConcurrency
		case ReconcileFunction:
			timeout = opts.UploadTimeout
		}
		out := s.Output(id)
		p := &pool{fn: lambdart.Function{Name: id, Path: s.bins[id], Env: s.fnEnv[id], Timeout: timeout, Stdout: out, Stderr: out}, size: size, slots: make(chan *lambdart.Runtime, size)}
		s.runtimes[id] = p
		if err := p.warm(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		s.progress("%s ready under the Lambda Runtime API", id)
	}
	if opts.ReconcileEvery > 0 {
		s.wg.Add(1)
		go s.schedule(opts.ReconcileEvery)
	}

	// HTTP front: API Gateway's HTTP API, Lambda's Invoke API, the failure queue.
	mux := http.NewServeMux()
	for pattern, fn := range map[string]string{
		"GET /media/{mediaId}":          GetMediaFunction,
		"GET /media/{mediaId}/content":  GetMediaFunction,
		"DELETE /media/{mediaId}":       DeleteMediaFunction,
		"POST /uploads":                 UploadSessionsFunction,
		"GET /uploads/{uploadId}":       UploadSessionsFunction,
		"POST /media/{mediaId}/archive": ArchiveMediaFunction,
	} {
		mux.Handle(pattern, s.route(fn))
	}
	mux.HandleFunc("POST /2015-03-31/functions/{name}/invocations", s.serveInvoke)
	mux.HandleFunc("GET "+FailureQueuePath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(append([]FailedEvent{}, s.Failed()...))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { writeGatewayError(w, http.StatusNotFound, "Not Found") })
	addr, err := s.serve(cmp.Or(opts.Addr, "127.0.0.1:0"), mux)
	if err != nil {
		return nil, fmt.Errorf("http api address %s: %w (choose another with -addr, e.g. make local LOCAL_ARGS=-addr=127.0.0.1:3001)", opts.Addr, err)
	}
	s.APIURL = loopback("http://" + addr)
	s.progress("HTTP API at %s (GET and DELETE /media/{mediaId}, GET /media/{mediaId}/content, POST /media/{mediaId}/archive, POST /uploads, GET /uploads/{uploadId})", s.APIURL)
	return s, nil
}

// loopback is a server's URL as a process of this host reaches it: a
// server bound on every interface (0.0.0.0, for Docker) on 127.0.0.1.
func loopback(u string) string {
	for _, all := range []string{"://0.0.0.0:", "://[::]:"} {
		u = strings.Replace(u, all, "://127.0.0.1:", 1)
	}
	return u
}

// serve serves h on addr until Close and returns the address it listens on.
func (s *Stack) serve(addr string, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.servers = append(s.servers, srv)
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), nil
}

// S3Counter counts by operation (HeadObject, GetObjectTagging, ...) the S3
// requests that reach the stack's S3 endpoint through it, and the body bytes
// of the objects GetObject served: point a function at it with
// AWS_ENDPOINT_URL_S3=URL.
type S3Counter struct {
	URL   string
	mu    sync.Mutex
	ops   map[string]int
	bytes map[string]int64 // GetObject answer bytes by path (/bucket/key)
}

// CountS3 starts an S3Counter, a reverse proxy stopped with the stack.
func (s *Stack) CountS3() (*S3Counter, error) {
	target, err := url.Parse(s.S3Endpoint)
	if err != nil {
		return nil, err
	}
	c, proxy := &S3Counter{ops: map[string]int{}, bytes: map[string]int64{}}, httputil.NewSingleHostReverseProxy(target) // keeps the Host the SDK signed
	addr, err := s.serve("127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := s3Operation(r)
		c.mu.Lock()
		c.ops[op]++
		c.mu.Unlock()
		if op != "GetObject" {
			proxy.ServeHTTP(w, r)
			return
		}
		cw := &countingWriter{ResponseWriter: w}
		proxy.ServeHTTP(cw, r)
		c.mu.Lock()
		c.bytes[r.URL.Path] += cw.n
		c.mu.Unlock()
	}))
	c.URL = "http://" + addr
	return c, err
}

// Take returns the requests counted since the last Take: how many, and how
// many of each operation.
func (c *S3Counter) Take() (int, map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ops, n := c.ops, 0
	for _, k := range ops {
		n += k
	}
	c.ops = map[string]int{}
	return n, ops
}

// BytesRead is the body bytes GetObject served of the object key of
// bucket.
func (c *S3Counter) BytesRead(bucket, key string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes["/"+bucket+"/"+key]
}

// countingWriter counts the body bytes written through it.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

// s3Operation names the S3 operation of a path-style request.
func s3Operation(r *http.Request) string {
	op := r.Method + " bucket"
	if strings.Contains(strings.Trim(r.URL.Path, "/"), "/") { // /bucket/key
		op = r.Method + " object"
	}
	for _, sub := range []string{"tagging", "versions", "list-type", "versioning", "delete", "uploads", "uploadId"} {
		if r.URL.Query().Has(sub) {
			op += "?" + sub
			break
		}
	}
	if r.Header.Get("X-Amz-Copy-Source") != "" {
		op = "CopyObject"
	}
	return cmp.Or(s3Operations[op], op)
}

var s3Operations = map[string]string{
	"HEAD object": "HeadObject", "GET object": "GetObject", "PUT object": "PutObject", "DELETE object": "DeleteObject",
	"GET object?tagging": "GetObjectTagging", "PUT object?tagging": "PutObjectTagging", "DELETE object?tagging": "DeleteObjectTagging",
	"GET bucket?list-type": "ListObjectsV2", "GET bucket?versions": "ListObjectVersions", "GET bucket?versioning": "GetBucketVersioning",
	"HEAD bucket": "HeadBucket", "POST bucket?delete": "DeleteObjects",
}

// Binary is the path of a function's built bootstrap.
func (s *Stack) Binary(logicalID string) string { return s.bins[logicalID] }

// Env is the environment a function runs with, its credentials included.
func (s *Stack) Env(logicalID string) []string { return slices.Clone(s.fnEnv[logicalID]) }

// FunctionEnv is Env of a function changed by changes ("KEY=value" sets a
// variable, "-KEY" removes it), with the credentials of the deployment the
// result names: a changed UPLOAD_PREFIX or MEDIA_BUCKET gets a role whose
// policy is the template's for that prefix or bucket, as a stack deployed
// with them would have.
func (s *Stack) FunctionEnv(ctx context.Context, logicalID string, changes ...string) ([]string, error) {
	if _, ok := s.fnEnv[logicalID]; !ok {
		return nil, fmt.Errorf("unknown function %q: use one of %s", logicalID, strings.Join(slices.Sorted(maps.Keys(Functions)), ", "))
	}
	env := s.Env(logicalID)
	for _, c := range changes {
		name, _, set := strings.Cut(c, "=")
		name = strings.TrimPrefix(name, "-")
		env = slices.DeleteFunc(env, func(kv string) bool { return strings.HasPrefix(kv, name+"=") })
		if set {
			env = append(env, c)
		}
	}
	return s.roles.Env(ctx, logicalID, env)
}

// Roles are the functions' roles: their policies and the ledger of what
// they did.
func (s *Stack) Roles() *Roles { return s.roles }

// S3Client is an SDK client for the local S3, path-style.
func (s *Stack) S3Client() *s3.Client { return s.MinIO.Client() }

// Invoke runs one event through a function, as `sam local invoke -e` does.
func (s *Stack) Invoke(ctx context.Context, logicalID string, payload []byte) (*lambdart.Result, error) {
	p, ok := s.runtimes[logicalID]
	if !ok {
		return nil, fmt.Errorf("unknown function %q: use one of %s", logicalID, strings.Join(slices.Sorted(maps.Keys(Functions)), ", "))
	}
	return p.invoke(ctx, payload)
}

// Failed lists the S3 events whose every attempt failed (the failure queue).
func (s *Stack) Failed() []FailedEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.failed)
}

// WaitIdle waits until every S3 event received so far has been handled
// (including its retries) or ctx ends.
func (s *Stack) WaitIdle(ctx context.Context) error {
	for {
		s.mu.Lock()
		n := s.inflight
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close stops every part; no process is left running.
func (s *Stack) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.closing)
	servers := slices.Clone(s.servers)
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range servers {
		_ = srv.Shutdown(ctx)
	}
	s.wg.Wait()
	for _, p := range s.runtimes {
		p.close()
	}
	if s.MinIO != nil {
		_ = s.MinIO.Close()
	}
	if s.Secrets != nil {
		s.Secrets.Close()
	}
	if s.NXCloud != nil {
		_ = s.NXCloud.Close()
	}
	if s.tmpBin != "" {
		_ = os.RemoveAll(s.tmpBin)
	}
}

// build compiles the functions for this host with the Makefile's
// build-<LogicalId> targets, exactly as `sam build` does for arm64.
func (s *Stack) build(ctx context.Context) error {
	s.root = s.opts.RepoRoot
	if s.root == "" {
		var err error
		if s.root, err = FindRepoRoot(); err != nil {
			return err
		}
	}
	dir := s.opts.BinDir
	if dir == "" {
		d, err := os.MkdirTemp("", "nxcloud-local-bin-")
		if err != nil {
			return err
		}
		dir, s.tmpBin = d, d
	}
	s.bins = map[string]string{}
	for id := range Functions {
		out := filepath.Join(dir, id)
		s.bins[id] = filepath.Join(out, "bootstrap")
		start := time.Now()
		cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "build-"+id, "ARTIFACTS_DIR="+out, "GOARCH="+runtime.GOARCH)
		cmd.Dir = s.root
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("make build-%s: %w\n%s", id, err, b)
		}
		s.progress("built %s for %s/%s in %s", id, runtime.GOOS, runtime.GOARCH, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// seedFixtures makes the local NXCloud know the sample media and the media
// ids of events/get-media.json, get-media-content.json and
// delete-media.json, so that `local invoke GetMediaFunction
// events/get-media.json` answers 200 as it would for a media id NXCloud
// returned; and the inbound photo of events/archive-media.json, with its
// bytes, so that it can be archived.
func (s *Stack) seedFixtures() {
	ids := []string{SampleMediaID}
	for _, f := range []string{"get-media.json", "get-media-content.json", "delete-media.json"} {
		var ev events.APIGatewayV2HTTPRequest
		if b, err := os.ReadFile(filepath.Join(s.root, "events", f)); err == nil && json.Unmarshal(b, &ev) == nil && ev.PathParameters["mediaId"] != "" {
			ids = append(ids, ev.PathParameters["mediaId"])
		}
	}
	for _, id := range ids {
		s.NXCloud.AddMedia(nxcloudtest.Media{ID: id, MimeType: "application/pdf", FileName: "menu card.pdf"})
	}
	s.NXCloud.AddMedia(nxcloudtest.Media{ID: SampleInboundMediaID, MimeType: "image/jpeg", FileName: "IMG_0042.jpg",
		BusinessPhone: DefaultPhone, Content: SampleJPEG()})
}

// SampleJPEG is a small photo (a 96x64 gradient), made in code.
func SampleJPEG() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 96, 64))
	for y := range 64 {
		for x := range 96 {
			img.Set(x, y, color.RGBA{R: uint8(x * 255 / 95), G: uint8(y * 255 / 63), B: 160, A: 255})
		}
	}
	var b bytes.Buffer
	_ = jpeg.Encode(&b, img, &jpeg.Options{Quality: 80}) // into memory: no error
	return b.Bytes()
}

// FindRepoRoot walks up from the working directory to the folder holding
// template.yaml and go.mod.
func FindRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		_, e1 := os.Stat(filepath.Join(dir, "template.yaml"))
		_, e2 := os.Stat(filepath.Join(dir, "go.mod"))
		if e1 == nil && e2 == nil {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", errors.New("cannot find the repository root (template.yaml and go.mod): run from inside the checkout")
		}
		dir = filepath.Dir(dir)
	}
}

// setupBucket creates the versioned media bucket and sends its ObjectCreated
// events under the prefix to the webhook, as the template's S3 event does.
func (s *Stack) setupBucket(ctx context.Context) error {
	if err := s.MinIO.CreateBucket(ctx, s.Bucket, true); err != nil {
		return err
	}
	// MinIO registers its notification targets in the background after it
	// answers: until then the target's ARN is refused, so try for a while.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		_, err := s.MinIO.Client().PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{
			Bucket: aws.String(s.Bucket),
			NotificationConfiguration: &s3types.NotificationConfiguration{QueueConfigurations: []s3types.QueueConfiguration{
				s.notification("upload-template-file", s.Prefix), s.notification("upload-media", s.MediaPrefix),
			}},
		})
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			if err != nil {
				return fmt.Errorf("bucket notification to the upload function: %w", err)
			}
			return nil
		}
	}
}

// notification sends the ObjectCreated events under prefix to the webhook,
// as the template's S3 event of an upload function does.
func (s *Stack) notification(id, prefix string) s3types.QueueConfiguration {
	return s3types.QueueConfiguration{
		Id:       aws.String(id),
		QueueArn: aws.String("arn:minio:sqs::LOCAL:webhook"),
		Events:   []s3types.Event{"s3:ObjectCreated:*"},
		Filter: &s3types.NotificationConfigurationFilter{Key: &s3types.S3KeyFilter{
			FilterRules: []s3types.FilterRule{{Name: s3types.FilterRuleNamePrefix, Value: aws.String(prefix)}},
		}},
	}
}

// progress prints one readiness or progress line.
func (s *Stack) progress(format string, a ...any) {
	fmt.Fprintf(&linePrefixer{mu: &s.logMu, w: s.opts.Log, prefix: "local: "}, format+"\n", a...)
}

// Output is a writer into the stack's log that prefixes each line with a
// component name, as it does for the functions and servers.
func (s *Stack) Output(name string) io.Writer {
	return &linePrefixer{mu: &s.logMu, w: s.opts.Log, prefix: name + " | "}
}

// S3EventForObject builds the S3 event Lambda would get for an existing
// object, for `invoke` with a real object.
func S3EventForObject(bucket, key string, size int64, etag, versionID string) events.S3Event {
	return events.S3Event{Records: []events.S3EventRecord{{
		EventVersion: "2.1",
		EventSource:  "aws:s3",
		AWSRegion:    miniotest.Region,
		EventTime:    time.Now().UTC(),
		EventName:    "ObjectCreated:Put",
		S3: events.S3Entity{
			SchemaVersion: "1.0",
			Bucket:        events.S3Bucket{Name: bucket, Arn: "arn:aws:s3:::" + bucket},
			Object:        events.S3Object{Key: upload.EncodeKey(key), Size: size, ETag: etag, VersionID: versionID},
		},
	}}}
}
