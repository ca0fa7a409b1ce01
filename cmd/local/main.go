// Command local runs the whole bundle on this machine, with no AWS account and
// no Docker: the local NXCloud (or the real one), a local Secrets Manager,
// MinIO with the media bucket, and the real function binaries driven through
// the Lambda Runtime API, behind a local HTTP API, S3 events and a schedule
// for the sweep (ReconcileFunction), with Lambda's Invoke API on the same
// address.
//
//	go run ./cmd/local                 # run until Ctrl-C (make local)
//	go run ./cmd/local demo            # walk through an upload session, get, content, archive, delete (make demo)
//	go run ./cmd/local invoke GetMediaFunction events/get-media.json
//
// Point it at the real NXCloud with NXCLOUD_BASE_URL, NXCLOUD_ACCESS_KEY and
// NXCLOUD_ACCESS_SECRET.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/template"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localstack"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "local:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("local", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:3000", "address of the local HTTP API")
	quiet := fs.Bool("quiet", false, "hide the functions' and servers' log lines")
	phone := fs.String("business-phone", os.Getenv("NXCLOUD_BUSINESS_PHONE"), "default merchant phone (NXCLOUD_BUSINESS_PHONE)")
	every := fs.Duration("reconcile-every", time.Minute, "how often run sweeps the bucket (ReconcileFunction's schedule); 0 only on demand")
	settle := fs.Duration("reconcile-settle", 30*time.Second, "age below which the sweep leaves a version to its event (RECONCILE_SETTLE)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: local [flags] [run | demo | invoke <LogicalId> <event.json>]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	cmd := "run"
	if fs.NArg() > 0 {
		cmd = fs.Arg(0)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var logw io.Writer = os.Stderr
	if *quiet {
		logw = io.Discard
	}
	opts := localstack.Options{
		Addr:           *addr,
		NXCloudBaseURL: os.Getenv("NXCLOUD_BASE_URL"),
		AccessKey:      os.Getenv("NXCLOUD_ACCESS_KEY"),
		AccessSecret:   os.Getenv("NXCLOUD_ACCESS_SECRET"),
		BusinessPhone:  *phone,
		Log:            logw,
		// The local run sweeps soon after an event was missed.
		ReconcileEvery:  *every,
		ReconcileSettle: *settle,
	}
	if cmd != "run" {
		opts.Addr = "127.0.0.1:0"
		opts.ReconcileEvery = 0
	}
	fmt.Fprintln(os.Stderr, "local: building the functions and starting the stack")
	start := time.Now()
	st, err := localstack.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintf(os.Stderr, "local: ready in %s\n", time.Since(start).Round(time.Millisecond))

	switch cmd {
	case "run":
		_ = usage.Execute(os.Stdout, map[string]any{"st": st, "phone": localstack.DefaultPhone, "every": *every, "settle": *settle,
			"sweep": localstack.ReconcileFunction, "queue": localstack.FailureQueuePath, "inbound": localstack.SampleInboundMediaID})
		<-ctx.Done()
		fmt.Fprintln(os.Stderr, "local: shutting down")
		return nil
	case "demo":
		return localstack.Demo(ctx, st, os.Stdout, *phone)
	case "invoke":
		if fs.NArg() != 3 {
			return errors.New("usage: local invoke <LogicalId> <event.json>, e.g. local invoke GetMediaFunction events/get-media.json")
		}
		return invoke(ctx, st, fs.Arg(1), fs.Arg(2))
	default:
		fs.Usage()
		return fmt.Errorf("unknown command %q", cmd)
	}
}

func invoke(ctx context.Context, st *localstack.Stack, id, file string) error {
	payload, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	res, err := st.Invoke(ctx, id, payload)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "REPORT RequestId: %s\n", res.RequestID)
	fmt.Println(string(res.Payload))
	if res.Error != nil {
		return fmt.Errorf("%s: %s", res.Error.Type, res.Error.Message)
	}
	return nil
}

// usage is what a run prints: ready-to-paste commands against the stack.
var usage = template.Must(template.New("usage").Parse(`
The bundle runs locally. Try it from another terminal:

  # S3 (MinIO): credentials for the aws CLI
  export AWS_ACCESS_KEY_ID={{.st.MinIO.AccessKey}} AWS_SECRET_ACCESS_KEY={{.st.MinIO.SecretKey}} AWS_REGION=us-east-1
  aws --endpoint-url {{.st.S3Endpoint}} s3 cp menu.pdf s3://{{.st.Bucket}}/{{.st.Prefix}}{{.phone}}/menu.pdf
  aws --endpoint-url {{.st.S3Endpoint}} s3api get-object-tagging --bucket {{.st.Bucket}} --key {{.st.Prefix}}{{.phone}}/menu.pdf

  # Message media (uploadMedia): a photo becomes a media id a WhatsApp message can carry
  aws --endpoint-url {{.st.S3Endpoint}} s3 cp photo.jpg s3://{{.st.Bucket}}/{{.st.MediaPrefix}}{{.phone}}/photo.jpg
  aws --endpoint-url {{.st.S3Endpoint}} s3api get-object-tagging --bucket {{.st.Bucket}} --key {{.st.MediaPrefix}}{{.phone}}/photo.jpg --query "TagSet[?Key=='nxcloud-media-id'].Value" --output text

  # HTTP API: upload over HTTP (make demo walks it through)
  curl -s -X POST {{.st.APIURL}}/uploads -d '{"file_name":"menu.pdf","type":"application/pdf","size":'$(wc -c <menu.pdf)',"business_phone":"{{.phone}}"}'
  curl -s -X PUT -T menu.pdf -H '<each of the headers answered>' '<upload_url>'
  curl -s {{.st.APIURL}}/uploads/<upload_id>
  curl -s '{{.st.APIURL}}/media/<nxcloud-media-id>?business_phone={{.phone}}'
  curl -sL -o menu-back.pdf '{{.st.APIURL}}/media/<nxcloud-media-id>/content?business_phone={{.phone}}'
  curl -s -X DELETE '{{.st.APIURL}}/media/<nxcloud-media-id>?business_phone={{.phone}}'

  # Archive a media file into the bucket under {{.st.ArchivePrefix}}: the local NXCloud knows a photo a
  # customer sent ({{.inbound}}), and every file uploaded above
  curl -s -X POST '{{.st.APIURL}}/media/{{.inbound}}/archive?business_phone={{.phone}}'
  aws --endpoint-url {{.st.S3Endpoint}} s3 ls --recursive s3://{{.st.Bucket}}/{{.st.ArchivePrefix}}

  # Secrets Manager (rotate the credentials the functions use)
  aws --endpoint-url {{.st.SecretsEndpoint}} secretsmanager get-secret-value --secret-id {{.st.SecretID}}

  # The sweep (ReconcileFunction) runs every {{.every}} (-reconcile-every) and sends
  # the versions older than {{.settle}} (-reconcile-settle) that have no verdict, such
  # as those whose event is in the failure queue. Run it now (Lambda's Invoke
  # API, the command that runs it in AWS), and list the failure queue:
  aws --endpoint-url {{.st.APIURL}} lambda invoke --function-name {{.sweep}} /dev/stdout
  curl -s {{.st.APIURL}}{{.queue}}

Ctrl-C stops everything.
`))
