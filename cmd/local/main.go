// Command local runs the whole bundle on this machine, with no AWS account and
// no Docker: the local NXCloud (or the real one), a local Secrets Manager,
// MinIO with the media bucket, and the real function binaries driven through
// the Lambda Runtime API, behind a local HTTP API, S3 events and a schedule
// for the sweep (ReconcileFunction), with Lambda's Invoke API on the same
// address. Every function runs with its own credentials, which carry exactly
// the policy template.yaml grants it.
//
//	go run ./cmd/local                 # run until stopped (make local)
//	go run ./cmd/local -docker         # the same, for `sam local invoke` in Docker (make local-docker)
//	go run ./cmd/local demo            # walk through a message upload session, get, content, archive, delete (make demo)
//	go run ./cmd/local invoke GetMediaFunction events/get-media.json
//
// Point it at the real NXCloud with NXCLOUD_BASE_URL, NXCLOUD_ACCESS_KEY and
// NXCLOUD_ACCESS_SECRET.
//
// Ctrl-C, SIGTERM or SIGHUP to it (or to the make that started it, or its
// parent's death), or its output's reader going away, stop every part it
// started (MinIO, the function processes) and remove their folders.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localstack"
)

func main() {
	stopWithParent()
	err := run(os.Args[1:])
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
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
	ttl := fs.Duration("secret-ttl", 10*time.Second, "how long the functions cache the secret (NXCLOUD_SECRET_TTL): how soon a put-secret-value shows")
	docker := fs.Bool("docker", false, fmt.Sprintf("for sam local invoke: the local NXCloud, Secrets Manager and S3 on ports %d, %d and %d of every interface (events/env.json)",
		localstack.DockerNXCloudPort, localstack.DockerSecretsPort, localstack.DockerS3Port))
	bind := fs.String("bind", "0.0.0.0", "with -docker, the host address the stand-ins listen on (where host.docker.internal leads)")
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
	switch cmd {
	case "run", "demo":
	case "invoke":
		if fs.NArg() != 3 {
			return errors.New("usage: local invoke <LogicalId> <event.json>, e.g. local invoke GetMediaFunction events/get-media.json")
		}
	default:
		fs.Usage()
		return fmt.Errorf("unknown command %q", cmd)
	}

	// Every usual way to stop: Ctrl-C, kill, a closed terminal, and the
	// reader of the output going away (with SIGPIPE handled, a write to a
	// closed pipe fails instead of killing the process before it cleans up).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
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
		Env:            []string{"NXCLOUD_SECRET_TTL=" + ttl.String()},
		Log:            logw,
		// The local run sweeps soon after an event was missed.
		ReconcileEvery:  *every,
		ReconcileSettle: *settle,
	}
	if *docker {
		opts.NXCloudAddr = fmt.Sprintf("%s:%d", *bind, localstack.DockerNXCloudPort)
		opts.SecretsAddr = fmt.Sprintf("%s:%d", *bind, localstack.DockerSecretsPort)
		opts.S3Addr = fmt.Sprintf("%s:%d", *bind, localstack.DockerS3Port)
		opts.Bucket = localstack.DockerBucket
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
	case "demo":
		return localstack.Demo(ctx, st, os.Stdout, *phone)
	case "invoke":
		return invoke(ctx, st, fs.Arg(1), fs.Arg(2))
	}
	hints := map[string]any{"st": st, "phone": localstack.DefaultPhone, "every": *every, "settle": *settle, "ttl": *ttl,
		"sweep": localstack.ReconcileFunction, "queue": localstack.FailureQueuePath, "sample": localstack.SampleMediaID,
		"inbound": localstack.SampleInboundMediaID}
	if *docker {
		if hints["docker"], err = dockerHints(ctx, st); err != nil {
			return err
		}
	}
	if err := usage.Execute(os.Stdout, hints); err != nil {
		fmt.Fprintln(os.Stderr, "local: shutting down: the output is closed:", err)
		return nil
	}
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "local: shutting down")
	return nil
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

// dockerEvents are the events/ file each function is invoked with.
var dockerEvents = map[string]string{
	localstack.GetMediaFunction:           "events/get-media.json",
	localstack.DeleteMediaFunction:        "events/delete-media.json",
	localstack.UploadTemplateFileFunction: "events/s3-put.json",
	localstack.UploadMediaFunction:        "events/s3-put-media.json",
	localstack.UploadSessionsFunction:     "events/create-upload.json",
	localstack.ReconcileFunction:          "events/reconcile.json",
}

// dockerHints are the `sam local invoke` command of each function, with
// its credentials; the object each S3 event of events/ names is stored, and
// a sed command puts the version S3 gave it into a copy of the event, in
// /tmp.
func dockerHints(ctx context.Context, st *localstack.Stack) (map[string]any, error) {
	root, err := localstack.FindRepoRoot()
	if err != nil {
		return nil, err
	}
	addHost := ""
	if runtime.GOOS == "linux" {
		addHost = " --add-host host.docker.internal:host-gateway"
	}
	var cmds, patches []string
	for _, id := range slices.Sorted(maps.Keys(localstack.Functions)) {
		var ak, sk string
		for _, kv := range st.Env(id) {
			if v, ok := strings.CutPrefix(kv, "AWS_ACCESS_KEY_ID="); ok {
				ak = v
			}
			if v, ok := strings.CutPrefix(kv, "AWS_SECRET_ACCESS_KEY="); ok {
				sk = v
			}
		}
		event := cmp.Or(dockerEvents[id], "<event.json>")
		if strings.HasPrefix(event, "events/s3-put") {
			patch, err := storeEventObject(ctx, st, root, event)
			if err != nil {
				return nil, err
			}
			patches = append(patches, patch)
			event = "/tmp/" + filepath.Base(event)
		}
		cmds = append(cmds, fmt.Sprintf("AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s sam local invoke%s -e %s %s", ak, sk, addHost, event, id))
	}
	return map[string]any{"commands": cmds, "patches": patches}, nil
}

// storeEventObject stores the object an S3 event file names (its key and
// size) and returns the sed command that writes the event, with the version
// and ETag S3 gave the object, to /tmp.
func storeEventObject(ctx context.Context, st *localstack.Stack, root, file string) (string, error) {
	raw, err := os.ReadFile(filepath.Join(root, file))
	if err != nil {
		return "", err
	}
	var ev events.S3Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return "", fmt.Errorf("%s is not an S3 event: %w", file, err)
	}
	if len(ev.Records) == 0 {
		return "", fmt.Errorf("%s has no record", file)
	}
	obj := ev.Records[0].S3.Object
	out, err := st.S3Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(st.Bucket), Key: aws.String(obj.URLDecodedKey),
		Body: strings.NewReader(strings.Repeat("sample ", int(obj.Size)/7+1)[:obj.Size])})
	if err != nil {
		return "", fmt.Errorf("storing the object of %s: %w", file, err)
	}
	return fmt.Sprintf("sed -e 's/%s/%s/' -e 's/%s/%s/' %s > /tmp/%s", obj.VersionID, aws.ToString(out.VersionId),
		obj.ETag, strings.Trim(aws.ToString(out.ETag), `"`), file, filepath.Base(file)), nil
}

// usage is what a run prints: ready-to-paste commands against the stack.
var usage = template.Must(template.New("usage").Parse(`
The bundle runs locally. Try it from another terminal, in bash (aws CLI v1 or
v2, curl and jq):

  # Credentials and region for the aws CLI: MinIO's root user for S3; the local
  # Secrets Manager and Lambda take any key
  export AWS_ACCESS_KEY_ID={{.st.MinIO.AccessKey}} AWS_SECRET_ACCESS_KEY={{.st.MinIO.SecretKey}} AWS_DEFAULT_REGION=us-east-1

  # S3 (MinIO): upload a file, then read the media id NXCloud gave it from its tags
  aws --endpoint-url {{.st.S3Endpoint}} s3 cp menu.pdf s3://{{.st.Bucket}}/{{.st.Prefix}}{{.phone}}/menu.pdf
  for i in 1 2 3 4 5 6 7 8 9 10; do MEDIA=$(aws --endpoint-url {{.st.S3Endpoint}} s3api get-object-tagging --bucket {{.st.Bucket}} --key {{.st.Prefix}}{{.phone}}/menu.pdf --query "TagSet[?Key=='nxcloud-media-id'].Value" --output text); [ -n "$MEDIA" ] && break; sleep 1; done; echo "media id: $MEDIA"

  # Message media (uploadMedia): a photo becomes a media id a WhatsApp message can carry
  aws --endpoint-url {{.st.S3Endpoint}} s3 cp photo.jpg s3://{{.st.Bucket}}/{{.st.MediaPrefix}}{{.phone}}/photo.jpg
  for i in 1 2 3 4 5 6 7 8 9 10; do PHOTO=$(aws --endpoint-url {{.st.S3Endpoint}} s3api get-object-tagging --bucket {{.st.Bucket}} --key {{.st.MediaPrefix}}{{.phone}}/photo.jpg --query "TagSet[?Key=='nxcloud-media-id'].Value" --output text); [ -n "$PHOTO" ] && break; sleep 1; done; echo "media id: $PHOTO"

  # HTTP API: the media, its file (through the redirect), then delete it
  curl -s "{{.st.APIURL}}/media/$MEDIA?business_phone={{.phone}}"
  curl -sL -o menu-back.pdf "{{.st.APIURL}}/media/$MEDIA/content?business_phone={{.phone}}"
  curl -s -X DELETE "{{.st.APIURL}}/media/$MEDIA?business_phone={{.phone}}"

  # HTTP API: upload over HTTP (make demo walks it through): create a session,
  # PUT the file with exactly the headers answered, read the session's status
  S=$(curl -s -X POST {{.st.APIURL}}/uploads -d '{"file_name":"menu.pdf","type":"application/pdf","size":'$(wc -c <menu.pdf)',"business_phone":"{{.phone}}"}')
  headers=(); while IFS= read -r h; do headers+=(-H "$h"); done < <(jq -r '.headers | to_entries[] | "\(.key): \(.value)"' <<<"$S")
  curl -s -X PUT -T menu.pdf "${headers[@]}" "$(jq -r .upload_url <<<"$S")"
  sleep 2; curl -s {{.st.APIURL}}/uploads/$(jq -r .upload_id <<<"$S")

  # Archive a media file into the bucket under {{.st.ArchivePrefix}}: the local NXCloud knows a photo a
  # customer sent ({{.inbound}}), and every file uploaded above
  curl -s -X POST '{{.st.APIURL}}/media/{{.inbound}}/archive?business_phone={{.phone}}'
  aws --endpoint-url {{.st.S3Endpoint}} s3 ls --recursive s3://{{.st.Bucket}}/{{.st.ArchivePrefix}}

  # Secrets Manager: put the template's placeholder into the secret, see the
  # functions refuse it (they read the secret again after NXCLOUD_SECRET_TTL,
  # {{.ttl}} here), and rotate the credentials back
  SAVED=$(aws --endpoint-url {{.st.SecretsEndpoint}} secretsmanager get-secret-value --secret-id {{.st.SecretID}} --query SecretString --output text)
  aws --endpoint-url {{.st.SecretsEndpoint}} secretsmanager put-secret-value --secret-id {{.st.SecretID}} --secret-string '{"accessKey":"REPLACE_ME","accessSecret":"REPLACE_ME"}'
  sleep {{.ttl.Seconds}}; curl -s "{{.st.APIURL}}/media/{{.sample}}?business_phone={{.phone}}"
  aws --endpoint-url {{.st.SecretsEndpoint}} secretsmanager put-secret-value --secret-id {{.st.SecretID}} --secret-string "$SAVED"

{{if .every}}  # The sweep (ReconcileFunction) runs every {{.every}} (-reconcile-every) and sends
  # the versions older than {{.settle}} (-reconcile-settle) that have no verdict, such
  # as those whose event is in the failure queue.{{else}}  # The sweep (ReconcileFunction) runs only when invoked (-reconcile-every=0);
  # it sends the versions older than {{.settle}} (-reconcile-settle) that have no
  # verdict, such as those whose event is in the failure queue.{{end}} Run it now
  # (Lambda's Invoke API, the command that runs it in AWS), and list the failure
  # queue (Lambda's on-failure records):
  aws --endpoint-url {{.st.APIURL}} lambda invoke --function-name {{.sweep}} /dev/stdout
  curl -s {{.st.APIURL}}{{.queue}}
{{with .docker}}
  # sam local invoke in Docker (after sam build): events/env.json points the
  # functions at this run; each runs with its own credentials. The objects the
  # S3 events of events/ name are stored; their events need the versions S3
  # gave them:
{{range .patches}}  {{.}}
{{end}}{{range .commands}}  {{.}}
{{end}}{{end}}
Ctrl-C stops everything.
`))
