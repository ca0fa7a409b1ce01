package app

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// The keys of every log line, as AWS Lambda Powertools writes them, so that
// an operator searches the functions' logs as those of any Powertools
// function: timestamp, level and message are slog's time, level and msg;
// the handler adds the others.
const (
	KeyTimestamp  = "timestamp"
	KeyLevel      = "level"
	KeyMessage    = "message"
	KeyService    = "service"
	KeyColdStart  = "cold_start"
	KeyFunction   = "function_name"
	KeyRequestID  = "function_request_id"
	KeyXRayTrace  = "xray_trace_id"
	keyTraceValue = "x-amzn-trace-id" // where aws-lambda-go puts Lambda-Runtime-Trace-Id in the invocation's context
)

// EnvService names the service of the log lines and of the metrics' service
// dimension: the template sets it to the stack's name. It is the variable
// Powertools reads; unset, the service is DefaultService, as there.
const (
	EnvService     = "POWERTOOLS_SERVICE_NAME"
	DefaultService = "service_undefined"
)

// Service is the service the environment names.
func Service(getenv func(string) string) string {
	if s := getenv(EnvService); s != "" {
		return s
	}
	return DefaultService
}

// NewLogger returns the JSON logger the functions write to stdout, at the
// level Lambda's ApplicationLogLevel sets in AWS_LAMBDA_LOG_LEVEL (default
// INFO), through NewHandler. It is also slog's default: what the log package
// prints (aws-lambda-go logs a failed invocation's error document with it)
// goes through the same handler, so every line of the function is JSON with
// the same keys.
func NewLogger(getenv func(string) string) *slog.Logger {
	logger := slog.New(NewHandler(os.Stdout, getenv))
	slog.SetDefault(logger)
	return logger
}

// NewHandler returns the one slog handler of the bundle's functions: JSON
// lines to w, each with timestamp, level, message, service (Service),
// cold_start (true until the second invocation of the process begins: see
// Start), function_name (AWS_LAMBDA_FUNCTION_NAME) and, on every line
// logged during an invocation, function_request_id (the Lambda request id)
// and xray_trace_id (the Root of the trace header Lambda hands the
// invocation, sampled or not). The request id and the trace come from the
// context of the log call (lambdacontext and the trace header aws-lambda-go
// puts there), else from the invocation Start is running: a line logged
// without the invocation's context carries them too. Lines of the init
// phase have no invocation, and neither key.
//
// The handler's keys are its own: an attribute of the same name that a
// caller logs (a cold_start of its own, say) is dropped, so that a line
// never holds a key twice.
func NewHandler(w io.Writer, getenv func(string) string) slog.Handler {
	level := slog.LevelInfo
	switch strings.ToUpper(getenv("AWS_LAMBDA_LOG_LEVEL")) {
	case "TRACE", "DEBUG":
		level = slog.LevelDebug
	case "WARN":
		level = slog.LevelWarn
	case "ERROR", "FATAL":
		level = slog.LevelError
	}
	base := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: lambdacontext.ReplaceAttr}).WithAttrs([]slog.Attr{
		slog.String(KeyService, Service(getenv)),
		slog.String(KeyFunction, getenv("AWS_LAMBDA_FUNCTION_NAME")),
	})
	return &handler{base: base, flat: base}
}

// owned are the keys the handler writes itself.
var owned = map[string]bool{KeyService: true, KeyColdStart: true, KeyFunction: true, KeyRequestID: true, KeyXRayTrace: true}

// handler adds the invocation's keys to every record. Attributes and groups
// added with WithAttrs and WithGroup are kept in ops; while there is no
// group, flat is base with them applied and the invocation's keys go into
// the record; with a group, the invocation's keys must come before it, so
// each record replays ops on base.
type handler struct {
	base, flat slog.Handler
	ops        []func(slog.Handler) slog.Handler
	grouped    bool
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.base.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	inv := invocationAttrs(ctx)
	if h.grouped {
		out := h.base.WithAttrs(inv)
		for _, op := range h.ops {
			out = op(out)
		}
		return out.Handle(ctx, r)
	}
	nr := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	nr.AddAttrs(inv...)
	r.Attrs(func(a slog.Attr) bool {
		if !owned[a.Key] {
			nr.AddAttrs(a)
		}
		return true
	})
	return h.flat.Handle(ctx, nr)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if !h.grouped {
		kept := make([]slog.Attr, 0, len(attrs))
		for _, a := range attrs {
			if !owned[a.Key] {
				kept = append(kept, a)
			}
		}
		attrs = kept
	}
	op := func(in slog.Handler) slog.Handler { return in.WithAttrs(attrs) }
	return &handler{base: h.base, flat: op(h.flat), ops: append(h.ops[:len(h.ops):len(h.ops)], op), grouped: h.grouped}
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	op := func(in slog.Handler) slog.Handler { return in.WithGroup(name) }
	return &handler{base: h.base, flat: op(h.flat), ops: append(h.ops[:len(h.ops):len(h.ops)], op), grouped: true}
}

// invocationAttrs are cold_start and, during an invocation, its request id
// and trace root.
func invocationAttrs(ctx context.Context) []slog.Attr {
	attrs := []slog.Attr{slog.Bool(KeyColdStart, coldStart())}
	id, trace := invocationOf(ctx)
	if id == "" {
		if cur := current.Load(); cur != nil {
			id, trace = cur.requestID, cur.traceRoot
		}
	}
	if id != "" {
		attrs = append(attrs, slog.String(KeyRequestID, id), slog.String(KeyXRayTrace, trace))
	}
	return attrs
}

// invocationOf reads the request id and the trace root of the invocation
// ctx belongs to, as aws-lambda-go puts them there.
func invocationOf(ctx context.Context) (requestID, traceRoot string) {
	if ctx == nil {
		return "", ""
	}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		requestID = lc.AwsRequestID
	}
	header, _ := ctx.Value(keyTraceValue).(string)
	return requestID, TraceRoot(header)
}

// TraceRoot returns the Root of an X-Ray trace header
// ("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"
// gives "1-5759e988-bd862e3fe1be46a994272793"), "" when it has none.
func TraceRoot(header string) string {
	for part := range strings.SplitSeq(header, ";") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "Root="); ok {
			return v
		}
	}
	return ""
}
