// Command appnew times the init work of a function's main in a fresh process,
// for cmd/bench: with -mode=app it times app.NewLogger plus app.New as the
// functions call them; with -mode=steps it times the same work step by step
// (config.FromEnv, awsconfig.LoadDefaultConfig, secretsmanager.NewFromConfig,
// s3.NewFromConfig for the upload function, nxcloud.NewClient). Each mode runs
// once per process, because only the first call in a process pays for what
// gets cached. It prints one JSON object, step name to nanoseconds. Run it with
// the function's environment.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/app"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/config"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/secret"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/upload"
)

func main() {
	mode := flag.String("mode", "app", "app (app.New as a whole) or steps (its parts, one by one)")
	flag.Parse()
	out := map[string]int64{}
	var err error
	switch *mode {
	case "app":
		err = timeApp(out)
	case "steps":
		err = timeSteps(out)
	default:
		err = fmt.Errorf("-mode %q: use app or steps", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "appnew:", err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "appnew:", err)
		os.Exit(1)
	}
}

// timeApp times the init of a function's main.
func timeApp(out map[string]int64) error {
	start := time.Now()
	logger := app.NewLogger(os.Getenv)
	if _, err := app.New(context.Background(), os.Getenv, logger); err != nil {
		return err
	}
	out["app.New"] = int64(time.Since(start))
	return nil
}

// timeSteps times app.New's parts in the order it runs them.
func timeSteps(out map[string]int64) error {
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	step := func(name string, f func() error) error {
		start := time.Now()
		err := f()
		out[name] = int64(time.Since(start))
		return err
	}
	var cfg config.Config
	if err := step("config.FromEnv", func() (err error) { cfg, err = config.FromEnv(os.Getenv); return err }); err != nil {
		return err
	}
	var loaded aws.Config
	if err := step("awsconfig.LoadDefaultConfig", func() (err error) { loaded, err = awsconfig.LoadDefaultConfig(ctx); return err }); err != nil {
		return err
	}
	var sm *secretsmanager.Client
	_ = step("secretsmanager.NewFromConfig", func() error { sm = secretsmanager.NewFromConfig(loaded); return nil })
	var prov *secret.Provider
	_ = step("secret.NewProvider", func() error {
		prov = secret.NewProvider(sm, cfg.SecretID, secret.WithTTL(cfg.SecretTTL), secret.WithLogger(logger))
		return nil
	})
	if err := step("nxcloud.NewClient", func() error {
		_, err := nxcloud.NewClient(nxcloud.WithBaseURL(cfg.BaseURL), nxcloud.WithCredentials(prov),
			nxcloud.WithAlgorithm(cfg.SignAlgorithm), nxcloud.WithTimeout(cfg.Timeout), nxcloud.WithLogger(logger))
		return err
	}); err != nil {
		return err
	}
	_ = step("s3.NewFromConfig (upload only)", func() error { _ = s3.NewFromConfig(loaded, upload.S3Options(true)); return nil })
	return nil
}
