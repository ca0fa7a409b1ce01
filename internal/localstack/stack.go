package localstack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
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
	UploadSessionsFunction     = "UploadSessionsFunction"
	ReconcileFunction          = "ReconcileFunction"
)

// Functions lists the logical ids with the package each is built from.
var Functions = map[string]string{
	GetMediaFunction:           "./functions/get-media",
	DeleteMediaFunction:        "./functions/delete-media",
	UploadTemplateFileFunction: "./functions/upload-template-file",
	UploadSessionsFunction:     "./functions/upload-sessions",
	ReconcileFunction:          "./functions/reconcile",
}

// Embedded defaults of the local run.
const (
	DefaultBucket       = "nxcloud-media-local"
	DefaultSecretID     = "nxcloud/local"
	DefaultAccessKey    = "local-access-key"
	DefaultAccessSecret = "local-access-secret"
	DefaultPhone        = "8615812341795"
	// SampleMediaID is known to the local NXCloud from the start, so that the
	// files in events/ answer 200 (it is the id the NXCloud docs use).
	SampleMediaID = "fd81acff-eea8-4d9d-acc9-6c62904d6615"
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
	// SkipBuild uses the binaries already in BinDir/<LogicalId>/bootstrap.
	SkipBuild bool
	// Addr is the HTTP front's address (API Gateway); empty means 127.0.0.1:0.
	Addr string
	// NXCloudBaseURL points the functions at a real NXCloud; empty starts the
	// local NXCloud. AccessKey and AccessSecret are then the real credentials.
	NXCloudBaseURL string
	AccessKey      string
	AccessSecret   string
	// Bucket, Prefix and BusinessPhone default to DefaultBucket, templates/
	// and "" (no default phone).
	Bucket        string
	Prefix        string
	BusinessPhone string
	// Env is added to every function's environment and wins over the
	// defaults, e.g. NXCLOUD_SIGN_ALGORITHM=sha256 or a bad value to see init
	// fail.
	Env []string
	// HTTPTimeout and UploadTimeout are the functions' timeouts, as in
	// template.yaml; zero means 29s and 300s.
	HTTPTimeout   time.Duration
	UploadTimeout time.Duration
	// UploadConcurrency is how many execution environments the upload
	// function may use at once (Lambda scales out per event); zero means 2.
	UploadConcurrency int
	// MaxRetryAttempts and RetryDelays mirror the asynchronous invocation
	// retries of EventInvokeConfig; zero values mean 2 retries, 1s apart
	// (Lambda waits about a minute, then two).
	MaxRetryAttempts int
	RetryDelay       time.Duration
	// ReconcileEvery runs the sweep (ReconcileFunction) that often, as the
	// template's schedule does, and prints its summary; zero runs it only
	// when invoked. ReconcileSettle is its RECONCILE_SETTLE (empty: the
	// function's default) and ReconcileTimeout its timeout (zero: 300s).
	ReconcileEvery   time.Duration
	ReconcileSettle  time.Duration
	ReconcileTimeout time.Duration
	// MinIOBinary is the MinIO server executable; empty means found as
	// miniotest.FindBinary does.
	MinIOBinary string
	// Log receives progress lines and the functions' log lines; nil discards.
	Log io.Writer
}

// FailedEvent is an S3 event whose invocations all failed: what the stack's
// SQS on-failure destination receives in AWS.
type FailedEvent struct {
	Event     json.RawMessage
	Error     string
	ErrorType string
	Attempts  int
}

// Stack is a running local bundle: the local NXCloud (unless a real one is
// used), the local Secrets Manager, MinIO with the media bucket, the
// functions under the Lambda Runtime API, the HTTP front and the S3 event
// delivery.
type Stack struct {
	// APIURL is the HTTP API's base URL, e.g. http://127.0.0.1:3000.
	APIURL string
	// S3Endpoint, SecretsEndpoint and NXCloudURL are the local endpoints.
	S3Endpoint      string
	SecretsEndpoint string
	NXCloudURL      string
	Bucket          string
	Prefix          string
	SecretID        string

	// NXCloud is the local NXCloud, nil when a real one is used.
	NXCloud *nxcloudtest.Server
	// Secrets is the local Secrets Manager.
	Secrets *localsm.Server
	// MinIO is the local S3.
	MinIO *miniotest.Server

	opts     Options
	root     string
	log      io.Writer
	bins     map[string]string
	env      []string
	front    *http.Server
	webhook  *http.Server
	routes   []frontRoute
	runtimes map[string]*pool

	events   chan json.RawMessage
	wg       sync.WaitGroup
	mu       sync.Mutex
	failed   []FailedEvent
	inflight int // S3 events queued or being delivered; guarded by mu
	closing  chan struct{}
}

type frontRoute struct {
	route Route
	fn    string
}

// Start builds the functions for this host, starts every part and waits until
// each is ready. Close stops them all.
func Start(ctx context.Context, opts Options) (st *Stack, err error) {
	if opts.Bucket == "" {
		opts.Bucket = DefaultBucket
	}
	if opts.Prefix == "" {
		opts.Prefix = "templates/"
	}
	if opts.HTTPTimeout == 0 {
		opts.HTTPTimeout = 29 * time.Second
	}
	if opts.UploadTimeout == 0 {
		opts.UploadTimeout = 300 * time.Second
	}
	if opts.UploadConcurrency == 0 {
		opts.UploadConcurrency = 2
	}
	if opts.MaxRetryAttempts == 0 {
		opts.MaxRetryAttempts = 2
	}
	if opts.RetryDelay == 0 {
		opts.RetryDelay = time.Second
	}
	if opts.ReconcileTimeout == 0 {
		opts.ReconcileTimeout = 300 * time.Second
	}
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	s := &Stack{
		opts:     opts,
		log:      &syncWriter{w: logw},
		Bucket:   opts.Bucket,
		Prefix:   opts.Prefix,
		SecretID: DefaultSecretID,
		runtimes: map[string]*pool{},
		events:   make(chan json.RawMessage, 1024),
		closing:  make(chan struct{}),
	}
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
		s.NXCloud.AddMedia(nxcloudtest.Media{ID: SampleMediaID, MimeType: "application/pdf", FileName: "menu card.pdf"})
		s.seedFixtures()
		if s.NXCloudURL, err = s.NXCloud.Start("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("local nxcloud: %w", err)
		}
		s.progress("local NXCloud (signature enforced) at %s", s.NXCloudURL)
	}

	// Secrets Manager.
	s.Secrets = localsm.New()
	secretJSON, _ := json.Marshal(map[string]string{"accessKey": ak, "accessSecret": secret})
	s.Secrets.Put(s.SecretID, string(secretJSON))
	if s.SecretsEndpoint, err = s.Secrets.Start("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("local secrets manager: %w", err)
	}
	s.progress("local Secrets Manager at %s (secret %q)", s.SecretsEndpoint, s.SecretID)

	// The S3 event webhook listens before MinIO starts, so MinIO finds its
	// notification target online.
	hookLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.webhook = &http.Server{Handler: http.HandlerFunc(s.serveWebhook), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.webhook.Serve(hookLn) }()

	s.progress("starting MinIO")
	s.MinIO, err = miniotest.Run(ctx, miniotest.Options{
		Binary: opts.MinIOBinary,
		Output: s.Output("minio"),
		Env: []string{
			"MINIO_NOTIFY_WEBHOOK_ENABLE_LOCAL=on",
			"MINIO_NOTIFY_WEBHOOK_ENDPOINT_LOCAL=http://" + hookLn.Addr().String() + "/s3-events",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("minio: %w", err)
	}
	s.S3Endpoint = s.MinIO.Endpoint
	if err := s.setupBucket(ctx); err != nil {
		return nil, err
	}
	s.progress("MinIO at %s, bucket %q (versioned, events under %q to the upload function)", s.S3Endpoint, s.Bucket, s.Prefix)

	// Functions.
	s.env = []string{
		"NXCLOUD_SECRET_ID=" + s.SecretID,
		"NXCLOUD_BASE_URL=" + s.NXCloudURL,
		"UPLOAD_PREFIX=" + s.Prefix,
		"MEDIA_BUCKET=" + s.Bucket,
		"AWS_REGION=" + miniotest.Region,
		"AWS_ACCESS_KEY_ID=" + s.MinIO.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.MinIO.SecretKey,
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
	for id := range Functions {
		timeout, size := opts.HTTPTimeout, 1
		switch id {
		case UploadTemplateFileFunction:
			timeout, size = opts.UploadTimeout, opts.UploadConcurrency
		case ReconcileFunction:
			timeout = opts.ReconcileTimeout
		}
		s.runtimes[id] = &pool{fn: lambdart.Function{
			Name:    id,
			Path:    s.bins[id],
			Env:     s.env,
			Timeout: timeout,
			Stdout:  s.Output(id),
			Stderr:  s.Output(id),
		}, slots: make(chan *lambdart.Runtime, size), size: size}
	}
	for id, p := range s.runtimes {
		if err := p.warm(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		s.progress("%s ready under the Lambda Runtime API", id)
	}

	// S3 event delivery (asynchronous invocations with retries).
	for i := 0; i < opts.UploadConcurrency; i++ {
		s.wg.Add(1)
		go s.deliver()
	}

	// The sweep's schedule (the template's Schedule event).
	if opts.ReconcileEvery > 0 {
		s.wg.Add(1)
		go s.schedule(opts.ReconcileEvery)
	}

	// HTTP front (API Gateway HTTP API, and Lambda's Invoke API).
	s.routes = []frontRoute{
		{Route{http.MethodGet, "/media/{mediaId}"}, GetMediaFunction},
		{Route{http.MethodGet, "/media/{mediaId}/content"}, GetMediaFunction},
		{Route{http.MethodDelete, "/media/{mediaId}"}, DeleteMediaFunction},
		{Route{http.MethodPost, "/uploads"}, UploadSessionsFunction},
		{Route{http.MethodGet, "/uploads/{uploadId}"}, UploadSessionsFunction},
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http api address %s: %w (choose another with -addr, e.g. make local LOCAL_ARGS=-addr=127.0.0.1:3001)", addr, err)
	}
	s.APIURL = "http://" + ln.Addr().String()
	s.front = &http.Server{Handler: http.HandlerFunc(s.serveAPI), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.front.Serve(ln) }()
	s.progress("HTTP API at %s (GET and DELETE /media/{mediaId}, GET /media/{mediaId}/content, POST /uploads, GET /uploads/{uploadId})", s.APIURL)
	return s, nil
}

// Binary is the path of a function's built bootstrap.
func (s *Stack) Binary(logicalID string) string { return s.bins[logicalID] }

// Env is the environment every function runs with.
func (s *Stack) Env() []string { return append([]string(nil), s.env...) }

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

// Runtime returns one execution environment of a function, for measurements
// (cold starts, init durations, peak RSS).
func (s *Stack) Runtime(logicalID string) *lambdart.Runtime {
	p, ok := s.runtimes[logicalID]
	if !ok {
		return nil
	}
	return p.peek()
}

// Failed lists the S3 events whose every attempt failed (the failure queue).
func (s *Stack) Failed() []FailedEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]FailedEvent(nil), s.failed...)
}

// WaitIdle waits until every S3 event received so far has been handled
// (including its retries) or ctx ends.
func (s *Stack) WaitIdle(ctx context.Context) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		n := s.inflight
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// track counts an S3 event in (+1) or out (-1) of delivery.
func (s *Stack) track(delta int) {
	s.mu.Lock()
	s.inflight += delta
	s.mu.Unlock()
}

// Close stops every part; no process is left running.
func (s *Stack) Close() {
	select {
	case <-s.closing:
		return
	default:
		close(s.closing)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if s.front != nil {
		_ = s.front.Shutdown(ctx)
	}
	if s.webhook != nil {
		_ = s.webhook.Shutdown(ctx)
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
}

// build compiles the functions for this host with the Makefile's
// build-<LogicalId> targets, exactly as `sam build` does for arm64.
func (s *Stack) build(ctx context.Context) error {
	root := s.opts.RepoRoot
	if root == "" {
		var err error
		if root, err = FindRepoRoot(); err != nil {
			return err
		}
	}
	s.root = root
	dir := s.opts.BinDir
	if dir == "" {
		d, err := os.MkdirTemp("", "nxcloud-local-bin-")
		if err != nil {
			return err
		}
		dir = d
	}
	s.bins = map[string]string{}
	for id := range Functions {
		out := filepath.Join(dir, id)
		s.bins[id] = filepath.Join(out, "bootstrap")
		if s.opts.SkipBuild {
			continue
		}
		if err := os.MkdirAll(out, 0o755); err != nil {
			return err
		}
		start := time.Now()
		cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "build-"+id,
			"ARTIFACTS_DIR="+out, "GOARCH="+runtime.GOARCH)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("make build-%s: %w\n%s", id, err, b)
		}
		s.progress("built %s for %s/%s in %s", id, runtime.GOOS, runtime.GOARCH, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// seedFixtures makes the media ids of events/get-media.json,
// get-media-content.json and delete-media.json known to the local NXCloud,
// so that `local invoke GetMediaFunction events/get-media.json` answers 200
// as it would for a media id NXCloud returned.
func (s *Stack) seedFixtures() {
	for _, f := range []string{"get-media.json", "get-media-content.json", "delete-media.json"} {
		b, err := os.ReadFile(filepath.Join(s.root, "events", f))
		if err != nil {
			continue
		}
		var ev events.APIGatewayV2HTTPRequest
		if json.Unmarshal(b, &ev) != nil || ev.PathParameters["mediaId"] == "" {
			continue
		}
		s.NXCloud.AddMedia(nxcloudtest.Media{ID: ev.PathParameters["mediaId"], MimeType: "application/pdf", FileName: "menu card.pdf"})
	}
}

// FindRepoRoot walks up from the working directory to the folder holding
// template.yaml and go.mod.
func FindRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if fileExists(filepath.Join(dir, "template.yaml")) && fileExists(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the repository root (template.yaml and go.mod): run from inside the checkout")
		}
		dir = parent
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// setupBucket creates the versioned media bucket and sends its ObjectCreated
// events under the prefix to the webhook, as the template's S3 event does.
func (s *Stack) setupBucket(ctx context.Context) error {
	if err := s.MinIO.CreateBucket(ctx, s.Bucket, true); err != nil {
		return fmt.Errorf("create bucket %s: %w", s.Bucket, err)
	}
	// MinIO registers its notification targets in the background after it
	// answers: until then the target's ARN is refused, so try for a while.
	var err error
	for deadline := time.Now().Add(60 * time.Second); ; {
		if err = s.putNotification(ctx); err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("bucket notification to the upload function: %w", err)
	}
	return nil
}

// putNotification sends the bucket's ObjectCreated events under the prefix
// to the webhook.
func (s *Stack) putNotification(ctx context.Context) error {
	_, err := s.MinIO.Client().PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{
		Bucket: aws.String(s.Bucket),
		NotificationConfiguration: &s3types.NotificationConfiguration{
			QueueConfigurations: []s3types.QueueConfiguration{{
				Id:       aws.String("upload-template-file"),
				QueueArn: aws.String("arn:minio:sqs::LOCAL:webhook"),
				Events:   []s3types.Event{"s3:ObjectCreated:*"},
				Filter: &s3types.NotificationConfigurationFilter{Key: &s3types.S3KeyFilter{
					FilterRules: []s3types.FilterRule{{Name: s3types.FilterRuleNamePrefix, Value: aws.String(s.Prefix)}},
				}},
			}},
		},
	})
	return err
}

// serveWebhook receives MinIO's bucket notifications and queues them for the
// upload function, answering at once as S3 does for an asynchronous invoke.
func (s *Stack) serveWebhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPayload))
	if err != nil || r.Method != http.MethodPost {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var log struct {
		Records []json.RawMessage `json:"Records"`
	}
	if err := json.Unmarshal(body, &log); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	// MinIO also files tag and retention changes under s3:ObjectCreated:*
	// (PutTagging, DeleteTagging, PutRetention, PutLegalHold); S3 does not,
	// so they are dropped: tagging an object must not trigger the function.
	records := log.Records[:0]
	for _, rec := range log.Records {
		var r struct {
			EventName string `json:"eventName"`
		}
		_ = json.Unmarshal(rec, &r)
		switch strings.TrimPrefix(r.EventName, "s3:") {
		case "ObjectCreated:Put", "ObjectCreated:Post", "ObjectCreated:Copy", "ObjectCreated:CompleteMultipartUpload":
			records = append(records, rec)
		}
	}
	if len(records) > 0 {
		ev, _ := json.Marshal(map[string]any{"Records": records})
		s.Enqueue(ev)
	}
	w.WriteHeader(http.StatusOK)
}

// Enqueue delivers an S3 event to the upload function asynchronously, with
// Lambda's retries and the failure queue at the end.
func (s *Stack) Enqueue(event []byte) {
	s.track(1)
	select {
	case s.events <- json.RawMessage(event):
	case <-s.closing:
		s.track(-1)
	}
}

func (s *Stack) deliver() {
	defer s.wg.Done()
	for {
		select {
		case <-s.closing:
			return
		case ev := <-s.events:
			s.deliverOne(ev)
			s.track(-1)
		}
	}
}

func (s *Stack) deliverOne(ev json.RawMessage) {
	p := s.runtimes[UploadTemplateFileFunction]
	attempts := s.opts.MaxRetryAttempts + 1
	var last *lambdart.FunctionError
	for i := 1; i <= attempts; i++ {
		if i > 1 {
			select {
			case <-time.After(s.opts.RetryDelay * time.Duration(i-1)):
			case <-s.closing:
				return
			}
		}
		res, err := p.invoke(context.Background(), ev)
		if err != nil {
			last = &lambdart.FunctionError{Type: "Local.InvokeError", Message: err.Error()}
		} else if res.Error != nil {
			last = res.Error
		} else {
			return
		}
		s.progress("%s attempt %d/%d failed: %s: %s", UploadTemplateFileFunction, i, attempts, last.Type, last.Message)
	}
	s.mu.Lock()
	s.failed = append(s.failed, FailedEvent{Event: ev, Error: last.Message, ErrorType: last.Type, Attempts: attempts})
	s.mu.Unlock()
	s.progress("event sent to the failure queue after %d attempts", attempts)
}

// serveAPI is the HTTP API: it matches a route, builds the payload format 2.0
// event, invokes the function and writes its answer. It also serves Lambda's
// Invoke API (aws lambda invoke --endpoint-url) and the failure queue.
func (s *Stack) serveAPI(w http.ResponseWriter, r *http.Request) {
	if fn, ok := invokePath(r.URL.Path); ok && r.Method == http.MethodPost {
		s.serveInvoke(w, r, fn)
		return
	}
	if r.URL.Path == FailureQueuePath && r.Method == http.MethodGet {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(append([]FailedEvent{}, s.Failed()...))
		return
	}
	var fn string
	var route Route
	var params map[string]string
	for _, fr := range s.routes {
		if fr.route.Method != r.Method {
			continue
		}
		if p, ok := fr.route.match(r.URL.EscapedPath()); ok {
			fn, route, params = fr.fn, fr.route, p
			break
		}
	}
	if fn == "" {
		writeGatewayError(w, http.StatusNotFound, "Not Found")
		return
	}
	body, err := readBody(r)
	if err != nil {
		writeGatewayError(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return
	}
	ev := NewAPIGatewayEvent(r, route, params, body)
	payload, _ := json.Marshal(ev)
	w.Header().Set("Apigw-Requestid", ev.RequestContext.RequestID)
	res, err := s.Invoke(r.Context(), fn, payload)
	if err != nil || res.Error != nil {
		if res != nil && res.Error != nil && res.Error.Type == lambdart.ErrorTypeTimeout {
			writeGatewayError(w, http.StatusServiceUnavailable, "Service Unavailable")
			return
		}
		writeGatewayError(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	WriteAPIGatewayResponse(w, res.Payload)
}

// FailureQueuePath lists the local failure queue (GET, JSON).
const FailureQueuePath = "/local/failure-queue"

// invokePath returns the function of a Lambda Invoke API path,
// /2015-03-31/functions/{FunctionName}/invocations.
func invokePath(p string) (string, bool) {
	rest, ok := strings.CutPrefix(p, "/2015-03-31/functions/")
	if !ok {
		return "", false
	}
	fn, ok := strings.CutSuffix(rest, "/invocations")
	return fn, ok && fn != "" && !strings.Contains(fn, "/")
}

// serveInvoke answers Lambda's Invoke API as Lambda does for a synchronous
// invocation: 200 with the payload, X-Amz-Function-Error for a function
// error, 404 for an unknown function.
func (s *Stack) serveInvoke(w http.ResponseWriter, r *http.Request, fn string) {
	body, err := readBody(r)
	if err != nil {
		writeGatewayError(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	res, err := s.Invoke(r.Context(), fn, body)
	if err != nil {
		writeGatewayError(w, http.StatusNotFound, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amz-Executed-Version", "$LATEST")
	if res.Error != nil {
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
		_ = json.NewEncoder(w).Encode(map[string]string{"errorMessage": res.Error.Message, "errorType": res.Error.Type})
		return
	}
	_, _ = w.Write(res.Payload)
}

// schedule invokes the sweep every period, as the template's Schedule event
// does, and prints each summary.
func (s *Stack) schedule(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
		}
		ev := fmt.Sprintf(`{"version":"0","detail-type":"Scheduled Event","source":"aws.events","time":%q,"detail":{}}`, time.Now().UTC().Format(time.RFC3339))
		res, err := s.runtimes[ReconcileFunction].invoke(context.Background(), []byte(ev))
		switch {
		case err != nil:
			s.progress("scheduled %s: %v", ReconcileFunction, err)
		case res.Error != nil:
			s.progress("scheduled %s failed: %s: %s", ReconcileFunction, res.Error.Type, res.Error.Message)
		default:
			s.progress("scheduled %s: %s", ReconcileFunction, res.Payload)
		}
	}
}

// progress prints one readiness or progress line.
func (s *Stack) progress(format string, a ...any) {
	fmt.Fprintf(s.log, "local: "+format+"\n", a...)
}

// Output is a writer into the stack's log that prefixes each line with a
// component name, as it does for the functions and servers.
func (s *Stack) Output(name string) io.Writer {
	return &linePrefixer{w: s.log, prefix: name + " | "}
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
