// Package app builds what the functions of the bundle share from the
// environment: the validated configuration, the AWS configuration, the cached
// Secrets Manager credentials, the signed NXCloud client, the JSON logger and
// the EMF metrics recorder, hooked to the NXCloud client (latency by action
// and code) and to the Secrets Manager client (credential refreshes). The
// main of a function that calls NXCloud calls Main once per container (at
// init), then hands the parts to its handler and its handler to Start; the
// upload sessions, which read no secret, take only NewLogger,
// config.FromEnv, LoadAWS and Start.
//
// Every line a function logs goes through NewHandler: the keys of AWS Lambda
// Powertools (timestamp, level, message, service, cold_start, function_name,
// and function_request_id and xray_trace_id on every line of an
// invocation). Start runs the handler, so that the lines know their
// invocation, and sets the Go memory limit from the function's memory.
//
// It deliberately links no S3 client: the get and delete functions stay small.
package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/config"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/metrics"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/secret"
)

// App holds the dependencies built once per container.
type App struct {
	Config  config.Config
	AWS     aws.Config // the upload function builds its S3 client from it
	NXCloud *nxcloud.Client
	Metrics *metrics.Recorder
	Logger  *slog.Logger
}

// Main is New for a function's main, with the logger of NewLogger and the
// process environment: an error is reported with InitFailed, and Main does
// not return.
func Main(required ...string) *App {
	logger := NewLogger(os.Getenv)
	a, err := New(context.Background(), os.Getenv, logger, required...)
	if err != nil {
		InitFailed(logger, os.Getenv, err)
	}
	return a
}

// New reads and validates the environment and builds the shared dependencies;
// NXCLOUD_SECRET_ID and the variables named in required must be set. Its
// errors name the variable at fault; nothing here calls the network.
func New(ctx context.Context, getenv func(string) string, logger *slog.Logger, required ...string) (*App, error) {
	cfg, err := config.FromEnv(getenv, append([]string{config.EnvSecretID}, required...)...)
	if err != nil {
		return nil, err
	}
	awsCfg, err := LoadAWS(ctx, getenv)
	if err != nil {
		return nil, err
	}
	rec := metrics.New(logger, cfg.Namespace, Service(getenv))
	sm := countedSecrets{secretsmanager.NewFromConfig(awsCfg), rec}
	secrets := secret.NewProvider(sm, cfg.SecretID, secret.WithTTL(cfg.SecretTTL), secret.WithLogger(logger))
	client, err := nxcloud.NewClient(
		nxcloud.WithBaseURL(cfg.BaseURL),
		nxcloud.WithCredentials(secrets),
		nxcloud.WithAlgorithm(cfg.SignAlgorithm),
		nxcloud.WithTimeout(cfg.Timeout),
		nxcloud.WithLogger(logger),
		nxcloud.WithObserver(rec.NXCloudCall),
	)
	if err != nil {
		return nil, fmt.Errorf("nxcloud client: %w", err)
	}
	return &App{Config: cfg, AWS: awsCfg, NXCloud: client, Metrics: rec, Logger: logger}, nil
}

// countedSecrets records every read of the secret as a credential refresh.
type countedSecrets struct {
	api     secret.GetSecretValueAPI
	metrics *metrics.Recorder
}

func (c countedSecrets) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	out, err := c.api.GetSecretValue(ctx, in, optFns...)
	c.metrics.CredentialRefresh(ctx, err)
	return out, err
}

// LoadAWS loads the SDK's configuration from the environment (AWS_REGION,
// AWS_ENDPOINT_URL*, the AWS_* credentials). Lambda always sets AWS_REGION;
// without it, a run against local endpoints signs for us-east-1 and any
// other run fails naming the variable.
func LoadAWS(ctx context.Context, getenv func(string) string) (aws.Config, error) {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return aws.Config{}, fmt.Errorf("aws configuration (AWS_REGION, AWS_ENDPOINT_URL*, AWS_* credentials): %w", err)
	}
	if awsCfg.Region == "" {
		if !LocalEndpoint(getenv, "AWS_ENDPOINT_URL_SECRETS_MANAGER") && !LocalEndpoint(getenv, "AWS_ENDPOINT_URL_S3") {
			return aws.Config{}, fmt.Errorf("AWS_REGION: is not set: set it to the region of the stack (Lambda sets it for you)")
		}
		awsCfg.Region = "us-east-1"
	}
	return awsCfg, nil
}

// LocalEndpoint reports whether the SDK is pointed away from AWS for a
// service: by its own variable (e.g. AWS_ENDPOINT_URL_S3) or by
// AWS_ENDPOINT_URL for every service.
func LocalEndpoint(getenv func(string) string, serviceVar string) bool {
	return getenv(serviceVar) != "" || getenv("AWS_ENDPOINT_URL") != ""
}

// InitFailed reports an init failure the way Lambda expects: it logs the error,
// posts it to the Runtime API's /runtime/init/error (when AWS_LAMBDA_RUNTIME_API
// is set) so the invocation fails with a message naming the problem, and exits
// with status 1. It never returns.
func InitFailed(logger *slog.Logger, getenv func(string) string, err error) {
	logger.Error("init failed", slog.String("error", err.Error()))
	if api := getenv("AWS_LAMBDA_RUNTIME_API"); api != "" {
		body, _ := json.Marshal(map[string]any{
			"errorMessage": err.Error(),
			"errorType":    "InvalidConfiguration",
		})
		req, rerr := http.NewRequest(http.MethodPost, "http://"+api+"/2018-06-01/runtime/init/error", bytes.NewReader(body))
		if rerr == nil {
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Lambda-Runtime-Function-Error-Type", "Runtime.InvalidConfiguration")
			c := &http.Client{Timeout: 2 * time.Second}
			if resp, perr := c.Do(req); perr == nil {
				_ = resp.Body.Close()
			}
		}
	}
	os.Exit(1)
}
