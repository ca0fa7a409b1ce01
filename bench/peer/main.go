// Command peer is what the upload function's streaming is measured against,
// run by cmd/bench as its own process so that its CPU time and peak memory
// can be read like the function's:
//
//   - -mode=raw, the ceiling: io.Copy from one S3 GetObject straight into one
//     signed NXCloud uploadTemplateFile POST with an exact Content-Length;
//     no HeadObject, claim or tagging.
//   - -mode=naive, the naive peer: read the whole object into memory, build
//     the whole multipart body in memory, then POST it.
//
// The S3 client is built like the function's (awsconfig.LoadDefaultConfig,
// upload.S3Options with path-style for a local endpoint), so both validate
// the object's checksum the same way. The NXCloud credentials come from
// NXCLOUD_ACCESS_KEY and NXCLOUD_ACCESS_SECRET. It prints one JSON object:
// bytes sent, seconds from GetObject to NXCloud's answer, the media id and
// its own peak RSS (VmHWM).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/bench"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/upload"
)

// options are the command-line flags.
type options struct {
	mode, bucket, key, version, nxcloudURL, phone, typ, name string
}

// report is what the peer prints.
type report struct {
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	MediaID string  `json:"media_id"`
	// PeakRSS is the process's VmHWM in bytes, read at the end (rusage
	// ru_maxrss of a child would include its parent's size at fork).
	PeakRSS int64 `json:"peak_rss"`
}

func main() {
	var o options
	flag.StringVar(&o.mode, "mode", "raw", "raw (stream) or naive (read all, then post)")
	flag.StringVar(&o.bucket, "bucket", "", "S3 bucket")
	flag.StringVar(&o.key, "key", "", "S3 object key")
	flag.StringVar(&o.version, "version", "", "S3 object version id (optional)")
	flag.StringVar(&o.nxcloudURL, "nxcloud", "", "NXCloud base URL")
	flag.StringVar(&o.phone, "phone", "", "merchant phone")
	flag.StringVar(&o.typ, "type", "application/pdf", "media type of the file")
	flag.StringVar(&o.name, "name", "file.pdf", "file name sent to NXCloud")
	flag.Parse()
	rep, err := run(context.Background(), o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "peer:", err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(rep)
}

func run(ctx context.Context, o options) (report, error) {
	if o.bucket == "" || o.key == "" || o.nxcloudURL == "" || o.phone == "" {
		return report{}, fmt.Errorf("-bucket, -key, -nxcloud and -phone are required")
	}
	if o.mode != "raw" && o.mode != "naive" {
		return report{}, fmt.Errorf("-mode %q: use raw or naive", o.mode)
	}
	cred := nxcloud.Credentials{AccessKey: os.Getenv("NXCLOUD_ACCESS_KEY"), AccessSecret: os.Getenv("NXCLOUD_ACCESS_SECRET")}
	if cred.AccessKey == "" || cred.AccessSecret == "" {
		return report{}, fmt.Errorf("set NXCLOUD_ACCESS_KEY and NXCLOUD_ACCESS_SECRET")
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return report{}, fmt.Errorf("aws configuration: %w", err)
	}
	cli := s3.NewFromConfig(cfg, upload.S3Options(os.Getenv("AWS_ENDPOINT_URL_S3") != ""))
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}

	start := time.Now()
	in := &s3.GetObjectInput{Bucket: aws.String(o.bucket), Key: aws.String(o.key)}
	if o.version != "" {
		in.VersionId = aws.String(o.version)
	}
	obj, err := cli.GetObject(ctx, in)
	if err != nil {
		return report{}, fmt.Errorf("get object: %w", err)
	}
	defer obj.Body.Close()
	size := aws.ToInt64(obj.ContentLength)

	var req *http.Request
	if o.mode == "raw" {
		frame, err := bench.NewUploadFrame(o.phone, o.typ, o.name)
		if err != nil {
			return report{}, err
		}
		if req, err = bench.NewUploadRequest(ctx, o.nxcloudURL, cred, nxcloud.MD5, frame, obj.Body, size, time.Now()); err != nil {
			return report{}, err
		}
	} else {
		if req, err = naiveRequest(ctx, o, cred, obj.Body); err != nil {
			return report{}, err
		}
	}
	ans, err := bench.Do(hc, req)
	if err != nil {
		return report{}, err
	}
	elapsed := time.Since(start)
	var data struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(ans.Data, &data)
	return report{Bytes: size, Seconds: elapsed.Seconds(), MediaID: data.ID, PeakRSS: peakRSS()}, nil
}

// peakRSS is VmHWM of this process in bytes, 0 when /proc is not there.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// naiveRequest reads the whole object, then writes the whole multipart body
// into memory, as code written without streaming in mind does.
func naiveRequest(ctx context.Context, o options, cred nxcloud.Credentials, body io.Reader) (*http.Request, error) {
	content, err := io.ReadAll(body)
	if err != nil {
		return nil, fmt.Errorf("read object: %w", err)
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range [...][2]string{{"messaging_product", nxcloud.MessagingProduct}, {"business_phone", o.phone}, {"type", o.typ}} {
		if err := mw.WriteField(f[0], f[1]); err != nil {
			return nil, err
		}
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="`+o.name+`"`)
	h.Set("Content-Type", o.typ)
	part, err := mw.CreatePart(h)
	if err != nil {
		return nil, err
	}
	if _, err := part.Write(content); err != nil {
		return nil, err
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	frame := bench.UploadFrame{ContentType: mw.FormDataContentType()}
	all := buf.Bytes()
	return bench.NewUploadRequest(ctx, o.nxcloudURL, cred, nxcloud.MD5, frame, bytes.NewReader(all), int64(len(all)), time.Now())
}
