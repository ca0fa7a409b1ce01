package metrics

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

// Unit is a CloudWatch metric unit.
type Unit string

// The units the bundle's metrics use.
const (
	Count        Unit = "Count"
	Bytes        Unit = "Bytes"
	Milliseconds Unit = "Milliseconds"
)

// The metrics (names as they appear in CloudWatch) and their dimensions.
const (
	// Uploads counts the records the upload pipeline ran, by Outcome
	// (uploaded, rejected, superseded, skipped, failed).
	Uploads = "Uploads"
	// UploadBytes is the size of each file sent to NXCloud and uploaded.
	UploadBytes = "UploadBytes"
	// NXCloudLatency is the duration of each HTTP exchange with NXCloud, by
	// Action and Code, and by Action alone.
	NXCloudLatency = "NXCloudLatency"
	// CredentialRefreshes counts the reads of the secret from Secrets
	// Manager, by Result (ok, error).
	CredentialRefreshes = "CredentialRefreshes"
	// ColdStarts counts the inits of an execution environment, by
	// FunctionName.
	ColdStarts = "ColdStarts"

	// DimService is on every metric, in every dimension set: the stack's
	// name (POWERTOOLS_SERVICE_NAME), so that two stacks in one namespace
	// keep their metrics apart. It is also the log lines' "service" key.
	DimService      = "service"
	DimOutcome      = "Outcome"
	DimAction       = "Action"
	DimCode         = "Code"
	DimResult       = "Result"
	DimFunctionName = "FunctionName"
)

// Codes of NXCloudLatency for exchanges without a code of NXCloud's.
const (
	// CodeNoAnswer: no HTTP answer came (network error, timeout).
	CodeNoAnswer = "no_answer"
	// CodeNotJSON prefixes the HTTP status of an answer that was not the
	// documented JSON, e.g. http_502.
	CodeNotJSON = "http_"
)

// Recorder writes the bundle's metrics as EMF lines through a JSON logger,
// at level INFO. A nil *Recorder records nothing. It is safe for concurrent
// use (the logger's handler writes each line whole).
type Recorder struct {
	log       *slog.Logger
	namespace string
	service   string
	now       func() time.Time
}

// New returns a Recorder writing to logger (a JSON slog handler, as the
// functions log) under the CloudWatch namespace, every metric with the
// dimension service (DimService).
func New(logger *slog.Logger, namespace, service string) *Recorder {
	return &Recorder{log: logger, namespace: namespace, service: service, now: time.Now}
}

// WithClock returns a copy of r whose lines carry the time of now, for tests.
func (r *Recorder) WithClock(now func() time.Time) *Recorder {
	c := *r
	c.now = now
	return &c
}

// Upload records one record of the upload pipeline: its outcome and, for an
// upload, the bytes sent.
func (r *Recorder) Upload(ctx context.Context, outcome string, bytesSent int64) {
	ms := []metric{{Uploads, Count, 1}}
	if bytesSent > 0 {
		ms = append(ms, metric{UploadBytes, Bytes, float64(bytesSent)})
	}
	r.emit(ctx, []dimension{{DimOutcome, outcome}}, nil, ms...)
}

// NXCloudCall records one HTTP exchange with NXCloud; it is an
// nxcloud.WithObserver function.
func (r *Recorder) NXCloudCall(ctx context.Context, c nxcloud.Call) {
	code := CodeNoAnswer
	switch {
	case c.Answered:
		code = strconv.Itoa(c.Code)
	case c.HTTPStatus != 0:
		code = CodeNotJSON + strconv.Itoa(c.HTTPStatus)
	}
	ms := float64(c.Duration.Microseconds()) / 1000
	r.emit(ctx, []dimension{{DimAction, c.Action}, {DimCode, code}}, [][]string{{DimAction}},
		metric{NXCloudLatency, Milliseconds, ms})
}

// CredentialRefresh records one read of the secret from Secrets Manager.
func (r *Recorder) CredentialRefresh(ctx context.Context, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	r.emit(ctx, []dimension{{DimResult, result}}, nil, metric{CredentialRefreshes, Count, 1})
}

// ColdStart records the init of an execution environment of function
// (nothing without a name: Lambda always sets AWS_LAMBDA_FUNCTION_NAME).
func (r *Recorder) ColdStart(ctx context.Context, function string) {
	if function == "" {
		return
	}
	r.emit(ctx, []dimension{{DimFunctionName, function}}, nil, metric{ColdStarts, Count, 1})
}

type metric struct {
	name  string
	unit  Unit
	value float64
}

type dimension struct{ name, value string }

// The EMF metadata ("_aws"), as the specification names its members.
type (
	metadata struct {
		Timestamp         int64       `json:"Timestamp"`
		CloudWatchMetrics []directive `json:"CloudWatchMetrics"`
	}
	directive struct {
		Namespace  string       `json:"Namespace"`
		Dimensions [][]string   `json:"Dimensions"`
		Metrics    []definition `json:"Metrics"`
	}
	definition struct {
		Name string `json:"Name"`
		Unit Unit   `json:"Unit,omitempty"`
	}
)

// emit writes one EMF line: the metrics ms under the dimension set made of
// every dimension of dims, plus the extra dimension sets of rollups (each
// naming some of dims), each set with the service. Every dimension and
// metric is a member of the line.
func (r *Recorder) emit(ctx context.Context, dims []dimension, rollups [][]string, ms ...metric) {
	if r == nil {
		return
	}
	dims = append(dims, dimension{DimService, r.service})
	all := make([]string, len(dims))
	attrs := make([]slog.Attr, 0, 1+len(dims)+len(ms))
	for i, d := range dims {
		all[i] = d.name
		attrs = append(attrs, slog.String(d.name, d.value))
	}
	sets := [][]string{all}
	for _, set := range rollups {
		sets = append(sets, append(set[:len(set):len(set)], DimService))
	}
	dir := directive{Namespace: r.namespace, Dimensions: sets}
	for _, m := range ms {
		dir.Metrics = append(dir.Metrics, definition{Name: m.name, Unit: m.unit})
		attrs = append(attrs, slog.Float64(m.name, m.value))
	}
	attrs = append(attrs, slog.Any("_aws", metadata{Timestamp: r.now().UnixMilli(), CloudWatchMetrics: []directive{dir}}))
	r.log.LogAttrs(ctx, slog.LevelInfo, "metrics", attrs...)
}
