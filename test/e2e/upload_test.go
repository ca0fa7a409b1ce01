package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/iampolicy"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart/lambdarttest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localstack"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/miniotest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/ledger"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/metrics"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
)

const tagWait = 30 * time.Second

// randomPDF is a small file whose SHA-256 identifies it among all uploads.
func randomPDF() []byte {
	return []byte("%PDF-1.4\n% e2e " + randomID(32) + "\n%%EOF\n")
}

// sized is a file of exactly n bytes with random content.
func sized(n int) []byte {
	b := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
	copy(b, randomID(min(n, 32)))
	return b
}

// putObject writes an object to the stack's bucket with the real SDK; mod
// adjusts the request (Content-Type, metadata, tagging).
func putObject(t *testing.T, ctx context.Context, key string, body []byte, mod func(*s3.PutObjectInput)) *s3.PutObjectOutput {
	t.Helper()
	return putObjectIn(t, ctx, st.Bucket, key, body, mod)
}

func putObjectIn(t *testing.T, ctx context.Context, bucket, key string, body []byte, mod func(*s3.PutObjectInput)) *s3.PutObjectOutput {
	t.Helper()
	in := &s3.PutObjectInput{
		Bucket:      aws.String(bucket),
		Key:         aws.String(key),
		Body:        bytes.NewReader(body),
		ContentType: aws.String("application/pdf"),
	}
	if mod != nil {
		mod(in)
	}
	out, err := st.S3Client().PutObject(ctx, in)
	if err != nil {
		t.Fatalf("put s3://%s/%s: %v", bucket, key, err)
	}
	return out
}

// waitTags waits until the upload function set nxcloud-status on key.
func waitTags(t *testing.T, ctx context.Context, key string) map[string]string {
	t.Helper()
	return waitForTag(t, ctx, key, "nxcloud-status", tagWait)
}

// waitForTag polls the tags of key's current version until tag is set.
func waitForTag(t *testing.T, ctx context.Context, key, tag string, wait time.Duration) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		if tags := miniotest.Tags(t, st.S3Client(), st.Bucket, key, ""); tags[tag] != "" {
			return tags
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s was not tagged %s in time: see the UploadTemplateFileFunction log lines", key, tag)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// objectTags reads the tags of a version of an object ("" for the latest).
func objectTags(t *testing.T, ctx context.Context, bucket, key, version string) map[string]string {
	t.Helper()
	return miniotest.Tags(t, st.S3Client(), bucket, key, version)
}

// recordOf reads the verdict recorded for a version, nil when none.
func recordOf(t *testing.T, ctx context.Context, bucket, key, version string) *ledger.Record {
	t.Helper()
	rec, err := ledger.New(st.S3Client(), ledger.Config{}).Record(ctx, ledger.Object{Bucket: bucket, Key: key, VersionID: version})
	if err != nil {
		t.Fatalf("record of %s: %v", key, err)
	}
	return rec
}

// uploadsOf returns the files NXCloud stored with body's content.
func uploadsOf(body []byte) []nxcloudtest.Media {
	sum := sha256Hex(body)
	var out []nxcloudtest.Media
	for _, m := range st.NXCloud.Uploads() {
		if m.SHA256 == sum {
			out = append(out, m)
		}
	}
	return out
}

// uploadCallsOf returns the uploadTemplateFile calls that carried body.
func uploadCallsOf(body []byte) []nxcloudtest.Call {
	sum := sha256Hex(body)
	var out []nxcloudtest.Call
	for _, c := range st.NXCloud.Calls(nxcloud.ActionUploadTemplateFile) {
		if c.FileSHA256 == sum {
			out = append(out, c)
		}
	}
	return out
}

// eventFor is the S3 event of a written object version.
func eventFor(bucket, key string, size int, put *s3.PutObjectOutput) []byte {
	ev := localstack.S3EventForObject(bucket, key, int64(size), strings.Trim(aws.ToString(put.ETag), `"`), aws.ToString(put.VersionId))
	b, _ := json.Marshal(ev)
	return b
}

// invokeUpload invokes an upload function synchronously and fails the test
// on an invocation error; it returns the function error, if any.
func invokeUpload(t *testing.T, ctx context.Context, fn invoker, payload []byte) *lambdart.FunctionError {
	t.Helper()
	res, err := fn(ctx, payload)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	return res.Error
}

// uploadLogLine finds the upload function's JSON log line naming mediaID,
// waiting a moment: the line is written after the tags, and the process's
// output is read through a pipe.
func uploadLogLine(mediaID string) map[string]any {
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if m := findUploadLogLine(mediaID); m != nil || time.Now().After(end) {
			return m
		}
	}
}

func findUploadLogLine(mediaID string) map[string]any {
	for _, line := range strings.Split(output.String(), "\n") {
		fn, js, ok := strings.Cut(line, " | ")
		if !ok || (fn != localstack.UploadTemplateFileFunction && fn != localstack.UploadMediaFunction) || !strings.Contains(js, mediaID) {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(js), &m) == nil {
			for _, v := range m {
				if v == mediaID {
					return m
				}
			}
		}
	}
	return nil
}

// TestUploadSuccess: objects under the prefix reach NXCloud exactly as
// stored, with the phone and type the rules pick, and are tagged with the
// id NXCloud returned; other tags stay.
func TestUploadSuccess(t *testing.T) {
	t.Parallel()
	p := st.Prefix
	for _, tc := range []struct {
		name, key, contentType string
		metadata               map[string]string
		tagging                string
		size                   int
		wantType, wantPhone    string
	}{
		{name: "pdf under a phone folder", key: p + phone + "/menu-%s.pdf", contentType: "application/pdf", wantType: "application/pdf", wantPhone: phone},
		{name: "spaces plus and non-ASCII", key: p + phone + "/menu card+v2 é %s.pdf", contentType: "application/pdf", wantType: "application/pdf", wantPhone: phone},
		{name: "percent and parentheses", key: p + phone + "/100% (final) %s.pdf", contentType: "application/pdf", wantType: "application/pdf", wantPhone: phone},
		{name: "octet-stream with .png", key: p + phone + "/photo-%s.png", contentType: "application/octet-stream", wantType: "image/png", wantPhone: phone},
		{name: "upper-case .JPG without a useful type", key: p + phone + "/photo-%s.JPG", contentType: "binary/octet-stream", wantType: "image/jpeg", wantPhone: phone},
		{name: "content type wins over the extension", key: p + phone + "/scan-%s.pdf", contentType: "image/jpeg", wantType: "image/jpeg", wantPhone: phone},
		{name: "content type with parameters", key: p + phone + "/clip-%s.bin", contentType: "video/mp4; codecs=avc1", wantType: "video/mp4", wantPhone: phone},
		{name: "upper-case content type", key: p + phone + "/upper-%s.bin", contentType: "IMAGE/PNG", wantType: "image/png", wantPhone: phone},
		{name: "image/jpg as given", key: p + phone + "/pic-%s.jpeg", contentType: "image/jpg", wantType: "image/jpg", wantPhone: phone},
		{name: "metadata phone beats the path", key: p + phone + "/meta-%s.pdf", contentType: "application/pdf", metadata: map[string]string{"business-phone": "4915112345678"}, wantType: "application/pdf", wantPhone: "4915112345678"},
		{name: "first path segment of a deep key", key: p + "12345/deep/dir/file-%s.pdf", contentType: "application/pdf", wantType: "application/pdf", wantPhone: "12345"},
		{name: "existing tags kept", key: p + phone + "/tagged-%s.pdf", contentType: "application/pdf", tagging: "team=marketing&env=e2e+test", wantType: "application/pdf", wantPhone: phone},
		{name: "quotes and a backslash in the name", key: p + phone + `/say "hi" \\ %s.pdf`, contentType: "application/pdf", wantType: "application/pdf", wantPhone: phone},
		{name: "ten tags already", key: p + phone + "/full-%s.pdf", contentType: "application/pdf", tagging: "team=marketing&env=e2e+test&t3=3&t4=4&t5=5&t6=6&t7=7&t8=8&t9=9&t10=10", wantType: "application/pdf", wantPhone: phone},
		{name: "exactly MAX_UPLOAD_BYTES", key: p + phone + "/limit-%s.mp4", contentType: "video/mp4", size: maxUploadBytes, wantType: "video/mp4", wantPhone: phone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 60*time.Second)
			key := fmt.Sprintf(tc.key, randomID(6))
			body := randomPDF()
			if tc.size > 0 {
				body = sized(tc.size)
			}
			put := putObject(t, ctx, key, body, func(in *s3.PutObjectInput) {
				in.ContentType = aws.String(tc.contentType)
				in.Metadata = tc.metadata
				if tc.tagging != "" {
					in.Tagging = aws.String(tc.tagging)
				}
			})
			tags := waitTags(t, ctx, key)
			id := tags["nxcloud-media-id"]
			if tags["nxcloud-status"] != "uploaded" || id == "" {
				t.Fatalf("tags = %v, want nxcloud-status=uploaded and nxcloud-media-id", tags)
			}
			if _, bad := tags["nxcloud-error"]; bad {
				t.Errorf("an uploaded object carries nxcloud-error: %v", tags)
			}
			switch n := strings.Count(tc.tagging, "=") + 2; {
			case len(tags) > 10:
				t.Errorf("%d tags: S3 allows 10", len(tags))
			case n <= 10 && tc.tagging != "" && (tags["team"] != "marketing" || tags["env"] != "e2e test" || len(tags) != n):
				t.Errorf("the object's own tags were not kept: %v", tags)
			}
			m, ok := st.NXCloud.Media(id)
			switch {
			case !ok:
				t.Fatalf("NXCloud does not know the tagged id %s", id)
			case m.SHA256 != sha256Hex(body) || m.Size != int64(len(body)):
				t.Errorf("NXCloud stored %d bytes (sha256 %s), want the object's %d bytes", m.Size, m.SHA256, len(body))
			case m.MimeType != tc.wantType:
				t.Errorf("type = %q, want %q", m.MimeType, tc.wantType)
			case m.FileName != path.Base(key):
				t.Errorf("file name = %q, want the key's base name %q", m.FileName, path.Base(key))
			case m.BusinessPhone != tc.wantPhone:
				t.Errorf("business_phone = %q, want %q", m.BusinessPhone, tc.wantPhone)
			}
			if n := len(uploadsOf(body)); n != 1 {
				t.Errorf("NXCloud stored the file %d times, want once", n)
			}
			for _, c := range uploadCallsOf(body) {
				if c.ContentLength <= 0 || len(c.TransferEncoding) > 0 {
					t.Errorf("the upload was sent without an exact Content-Length (%d, %v)", c.ContentLength, c.TransferEncoding)
				}
				if c.Fields["messaging_product"] != "whatsapp" {
					t.Errorf("messaging_product = %q, want whatsapp", c.Fields["messaging_product"])
				}
			}
			if v := objectTags(t, ctx, st.Bucket, key, aws.ToString(put.VersionId)); v["nxcloud-media-id"] != id {
				t.Errorf("the version the event named is not the tagged one: %v", v)
			}
			line := uploadLogLine(id)
			if line == nil {
				t.Fatalf("no log line of the upload function names media id %s", id)
			}
			for _, want := range []string{"bucket", "key", "phone", "type", "size"} {
				if _, ok := line[want]; !ok {
					t.Errorf("the upload log line has no %q: %v", want, line)
				}
			}
			hasDuration := false
			for k := range line {
				hasDuration = hasDuration || strings.Contains(k, "duration")
			}
			if !hasDuration || line["key"] != key || line["bucket"] != st.Bucket {
				t.Errorf("the upload log line lacks the duration, key or bucket: %v", line)
			}
		})
	}
}

// TestUploadRejected: permanent problems found before sending tag the
// object rejected with a reason and send nothing.
func TestUploadRejected(t *testing.T) {
	t.Parallel()
	p := st.Prefix
	for _, tc := range []struct {
		name, key, contentType string
		size                   int
	}{
		{name: "no phone anywhere", key: p + "nophone-%s.pdf", contentType: "application/pdf"},
		{name: "a folder that is not a phone", key: p + "1234/short-%s.pdf", contentType: "application/pdf"},
		{name: "unsupported type", key: p + phone + "/notes-%s.txt", contentType: "text/plain"},
		{name: "unsupported extension without a type", key: p + phone + "/archive-%s.zip", contentType: "application/octet-stream"},
		{name: "over MAX_UPLOAD_BYTES", key: p + phone + "/big-%s.pdf", contentType: "application/pdf", size: maxUploadBytes + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 60*time.Second)
			key := fmt.Sprintf(tc.key, randomID(6))
			body := randomPDF()
			if tc.size > 0 {
				body = sized(tc.size)
			}
			putObject(t, ctx, key, body, func(in *s3.PutObjectInput) { in.ContentType = aws.String(tc.contentType) })
			tags := waitTags(t, ctx, key)
			if tags["nxcloud-status"] != "rejected" || strings.TrimSpace(tags["nxcloud-error"]) == "" {
				t.Errorf("tags = %v, want nxcloud-status=rejected with an nxcloud-error reason", tags)
			}
			if _, ok := tags["nxcloud-media-id"]; ok {
				t.Errorf("a rejected object has a media id: %v", tags)
			}
			if n := len(uploadCallsOf(body)); n != 0 {
				t.Errorf("a rejected object reached NXCloud (%d calls)", n)
			}
			for _, c := range st.NXCloud.Calls(nxcloud.ActionUploadTemplateFile) {
				if c.FileName == path.Base(key) {
					t.Errorf("NXCloud got a call for %s", path.Base(key))
				}
			}
		})
	}
}

// TestUploadSkipped: zero-byte objects, folder markers and keys outside the
// prefix are left alone: no tags, no call, no error.
func TestUploadSkipped(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	r := randomID(6)
	cases := []struct {
		name, key string
		body      []byte
	}{
		{"zero-byte object", st.Prefix + phone + "/empty-" + r + ".pdf", nil},
		{"folder marker", st.Prefix + "folder-" + r + "/", nil},
		{"folder marker with content", st.Prefix + phone + "/folder-full-" + r + "/", randomPDF()},
		{"outside the prefix", "other/" + phone + "/outside-" + r + ".pdf", randomPDF()},
	}
	for _, tc := range cases {
		put := putObject(t, ctx, tc.key, tc.body, nil)
		// Synchronously, as sam local invoke would, besides MinIO's own event.
		if ferr := invokeUpload(t, ctx, stackFunction(localstack.UploadTemplateFileFunction), eventFor(st.Bucket, tc.key, len(tc.body), put)); ferr != nil {
			t.Errorf("%s: the function failed: %s", tc.name, ferr.Message)
		}
	}
	// A real object put after them, so that MinIO's events for the others
	// have been delivered when it is tagged.
	sentinel := st.Prefix + phone + "/sentinel-" + r + ".pdf"
	putObject(t, ctx, sentinel, randomPDF(), nil)
	waitTags(t, ctx, sentinel)
	if err := st.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		if tags := objectTags(t, ctx, st.Bucket, tc.key, ""); len(tags) != 0 {
			t.Errorf("%s: tags %v, want none", tc.name, tags)
		}
		base := path.Base(tc.key)
		for _, c := range st.NXCloud.Calls(nxcloud.ActionUploadTemplateFile) {
			if strings.Contains(c.FileName, r) && c.FileName == base || (tc.body != nil && c.FileSHA256 == sha256Hex(tc.body)) {
				t.Errorf("%s: NXCloud got a call", tc.name)
			}
		}
	}
	for _, f := range st.Failed() {
		if strings.Contains(string(f.RequestPayload), r) && !strings.Contains(string(f.RequestPayload), "sentinel") {
			t.Errorf("a skipped object reached the failure queue: %s", f.ResponsePayload.ErrorMessage)
		}
	}
}

// TestUploadNonObjectEvents: the s3:TestEvent S3 sends when notifications
// are configured, and an event without records, are no-ops.
func TestUploadNonObjectEvents(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	for _, ev := range []string{
		`{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-01-12T10:15:30.123Z","Bucket":"` + st.Bucket + `","RequestId":"5582815E1AEA5ADF","HostId":"8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"}`,
		`{"Records":[]}`,
		`{}`,
	} {
		if ferr := invokeUpload(t, ctx, stackFunction(localstack.UploadTemplateFileFunction), []byte(ev)); ferr != nil {
			t.Errorf("%s: the function failed: %s: %s", ev, ferr.Type, ferr.Message)
		}
	}
}

// TestUploadEventFile: events/s3-put.json and s3-put-media.json, invoked as
// sam local invoke does once their object exists.
func TestUploadEventFile(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	for i, f := range []struct {
		file, fn, prefix, contentType, etag, version string
	}{
		{"s3-put.json", localstack.UploadTemplateFileFunction, st.Prefix, "application/pdf", "0b9c2c3f1a7e5d4c8b6a29f1e0d3c4b5", "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"},
		{"s3-put-media.json", localstack.UploadMediaFunction, st.MediaPrefix, "image/jpeg", "7f3e2a91c4d5b6e8a0f1c2d3e4f5a6b7", "8rXoXf2QmW0bqVH3Yx.Lz7nKpTcD4sEa"},
	} {
		raw := readEvent(t, f.file)
		var ev struct {
			Records []struct {
				S3 struct {
					Bucket struct {
						Name string `json:"name"`
					} `json:"bucket"`
					Object struct {
						Key  string `json:"key"`
						Size int    `json:"size"`
					} `json:"object"`
				} `json:"s3"`
			} `json:"Records"`
		}
		if err := json.Unmarshal(raw, &ev); err != nil || len(ev.Records) != 1 {
			t.Fatalf("events/%s: %v", f.file, err)
		}
		rec := ev.Records[0].S3
		key := strings.ReplaceAll(rec.Object.Key, "+", " ")
		if !strings.HasPrefix(key, f.prefix) {
			t.Fatalf("events/%s names %s, outside the prefix %s", f.file, key, f.prefix)
		}
		if i == 0 { // both fixtures name the same example bucket
			if err := st.MinIO.CreateBucket(ctx, rec.Bucket.Name, true); err != nil {
				t.Fatalf("creating the fixture's bucket: %v", err)
			}
		}
		body := sized(rec.Object.Size)
		put := putObjectIn(t, ctx, rec.Bucket.Name, key, body, func(in *s3.PutObjectInput) { in.ContentType = aws.String(f.contentType) })
		// The function of a stack whose bucket is the fixture's: its policy names it.
		fn := mustRuntime(t, f.fn, "MEDIA_BUCKET="+rec.Bucket.Name).Invoke

		// As is: its version id names another version, so nothing is sent.
		if ferr := invokeUpload(t, ctx, fn, raw); ferr != nil {
			t.Fatalf("events/%s as is: the function failed: %s", f.file, ferr.Message)
		}
		if n := len(uploadsOf(body)); n != 0 {
			t.Errorf("events/%s: an event naming another version sent the object (%d uploads)", f.file, n)
		}

		// With the ETag and version id of the object written.
		patched := strings.NewReplacer(
			`"`+f.etag+`"`, `"`+strings.Trim(aws.ToString(put.ETag), `"`)+`"`,
			`"`+f.version+`"`, `"`+aws.ToString(put.VersionId)+`"`,
		).Replace(string(raw))
		if patched == string(raw) {
			t.Fatalf("events/%s changed: update this test's ETag and version id", f.file)
		}
		if ferr := invokeUpload(t, ctx, fn, []byte(patched)); ferr != nil {
			t.Fatalf("events/%s with the real ETag: the function failed: %s", f.file, ferr.Message)
		}
		tags := objectTags(t, ctx, rec.Bucket.Name, key, "")
		m, ok := st.NXCloud.Media(tags["nxcloud-media-id"])
		if tags["nxcloud-status"] != "uploaded" || !ok || m.FileName != path.Base(key) || m.Size != int64(len(body)) || m.MimeType != f.contentType {
			t.Errorf("events/%s: tags %v, media %+v: want the fixture's object uploaded as %q, %s", f.file, tags, m, path.Base(key), f.contentType)
		}
	}
}

// TestUploadDuplicates: deliveries of an event after its success, and
// several at once, reach NXCloud once.
func TestUploadDuplicates(t *testing.T) {
	t.Parallel()
	t.Run("sequential", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t, 60*time.Second)
		key := st.Prefix + phone + "/dup-seq-" + randomID(6) + ".pdf"
		body := randomPDF()
		put := putObject(t, ctx, key, body, nil)
		first := waitTags(t, ctx, key)
		ev := eventFor(st.Bucket, key, len(body), put)
		for range 2 {
			st.Enqueue(ev)
			if err := st.WaitIdle(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if ferr := invokeUpload(t, ctx, stackFunction(localstack.UploadTemplateFileFunction), ev); ferr != nil {
			t.Errorf("a duplicate failed: %s", ferr.Message)
		}
		if n := len(uploadCallsOf(body)); n != 1 {
			t.Errorf("NXCloud got %d uploads, want 1", n)
		}
		if again := objectTags(t, ctx, st.Bucket, key, ""); again["nxcloud-media-id"] != first["nxcloud-media-id"] {
			t.Errorf("the media id changed from %s to %s", first["nxcloud-media-id"], again["nxcloud-media-id"])
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t, 90*time.Second)
		key := st.Prefix + phone + "/dup-conc-" + randomID(6) + ".pdf"
		body := sized(256 << 10)
		put := putObject(t, ctx, key, body, nil)
		ev := eventFor(st.Bucket, key, len(body), put)
		// MinIO delivers its own event; three more at the same time.
		st.Enqueue(ev)
		var wg sync.WaitGroup
		errs := make(chan string, 3)
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := st.Invoke(ctx, localstack.UploadTemplateFileFunction, ev)
				switch {
				case err != nil:
					errs <- err.Error()
				case res.Error != nil:
					errs <- res.Error.Message
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Errorf("a concurrent duplicate failed: %s", e)
		}
		tags := waitTags(t, ctx, key)
		if err := st.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
		if tags["nxcloud-status"] != "uploaded" {
			t.Errorf("tags = %v, want uploaded", tags)
		}
		if n := len(uploadCallsOf(body)); n != 1 {
			t.Errorf("NXCloud got %d uploads of concurrent duplicates, want 1", n)
		}
	})
}

// directRuntime is an extra upload Runtime serving a prefix MinIO sends no
// events for, so that only the test's own invocations run, with
// NXCLOUD_BUSINESS_PHONE set.
func directRuntime(t *testing.T, changes ...string) (invoker, string) {
	t.Helper()
	prefix := "direct-" + randomID(6) + "/"
	rt := mustRuntime(t, localstack.UploadTemplateFileFunction,
		append([]string{"UPLOAD_PREFIX=" + prefix, "NXCLOUD_BUSINESS_PHONE=" + defaultPhone}, changes...)...)
	return rt.Invoke, prefix
}

// TestUploadDefaultPhone: NXCLOUD_BUSINESS_PHONE is the phone of objects
// that name none; a path phone still wins; UPLOAD_PREFIX is honoured.
func TestUploadDefaultPhone(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	fn, prefix := directRuntime(t)
	for _, tc := range []struct{ key, want string }{
		{prefix + "no-phone.pdf", defaultPhone},
		{prefix + "not-a-phone/x.pdf", defaultPhone},
		{prefix + phone + "/with-phone.pdf", phone},
	} {
		body := randomPDF()
		put := putObject(t, ctx, tc.key, body, nil)
		if ferr := invokeUpload(t, ctx, fn, eventFor(st.Bucket, tc.key, len(body), put)); ferr != nil {
			t.Fatalf("%s: the function failed: %s", tc.key, ferr.Message)
		}
		tags := objectTags(t, ctx, st.Bucket, tc.key, "")
		m, ok := st.NXCloud.Media(tags["nxcloud-media-id"])
		if tags["nxcloud-status"] != "uploaded" || !ok || m.BusinessPhone != tc.want {
			t.Errorf("%s: tags %v, phone %q, want uploaded with phone %s", tc.key, tags, m.BusinessPhone, tc.want)
		}
	}
	// The stack's own function (prefix templates/) ignores that prefix.
	body := randomPDF()
	k := prefix + "ignored.pdf"
	put := putObject(t, ctx, k, body, nil)
	if ferr := invokeUpload(t, ctx, stackFunction(localstack.UploadTemplateFileFunction), eventFor(st.Bucket, k, len(body), put)); ferr != nil {
		t.Fatalf("the function failed on a key outside its prefix: %s", ferr.Message)
	}
	if len(uploadCallsOf(body)) != 0 || len(objectTags(t, ctx, st.Bucket, k, "")) != 0 {
		t.Errorf("a key outside UPLOAD_PREFIX was processed")
	}
}

// TestUploadSuperseded: an event naming a version that was overwritten
// sends nothing; the new version's own event uploads it.
func TestUploadSuperseded(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	fn, prefix := directRuntime(t)
	key := prefix + phone + "/overwritten.pdf"
	v1, v2 := randomPDF(), randomPDF()
	put1 := putObject(t, ctx, key, v1, nil)
	put2 := putObject(t, ctx, key, v2, nil)

	if ferr := invokeUpload(t, ctx, fn, eventFor(st.Bucket, key, len(v1), put1)); ferr != nil {
		t.Fatalf("the old version's event failed (it must be logged as superseded, not retried): %s", ferr.Message)
	}
	if n := len(uploadCallsOf(v1)) + len(uploadCallsOf(v2)); n != 0 {
		t.Errorf("the old version's event sent %d files", n)
	}
	if tags := objectTags(t, ctx, st.Bucket, key, ""); len(tags) != 0 {
		t.Errorf("the old version's event tagged the object: %v", tags)
	}
	if ferr := invokeUpload(t, ctx, fn, eventFor(st.Bucket, key, len(v2), put2)); ferr != nil {
		t.Fatalf("the new version's event failed: %s", ferr.Message)
	}
	tags := objectTags(t, ctx, st.Bucket, key, aws.ToString(put2.VersionId))
	m, ok := st.NXCloud.Media(tags["nxcloud-media-id"])
	if tags["nxcloud-status"] != "uploaded" || !ok || m.SHA256 != sha256Hex(v2) {
		t.Errorf("the new version: tags %v; want it uploaded with its own content", tags)
	}
	if len(uploadCallsOf(v1)) != 0 {
		t.Errorf("the old version was sent")
	}

	// Through the stack: the old event delivered again after the new one.
	key = st.Prefix + phone + "/overwritten-" + randomID(6) + ".pdf"
	put1 = putObject(t, ctx, key, v1, nil)
	waitTags(t, ctx, key)
	put2 = putObject(t, ctx, key, v2, nil)
	waitForTag(t, ctx, key, "nxcloud-media-id", tagWait)
	before := len(uploadCallsOf(v1))
	st.Enqueue(eventFor(st.Bucket, key, len(v1), put1))
	if err := st.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(uploadCallsOf(v1)); n != before {
		t.Errorf("a late event of an overwritten version sent it again")
	}
	if tags := objectTags(t, ctx, st.Bucket, key, aws.ToString(put2.VersionId)); tags["nxcloud-status"] != "uploaded" {
		t.Errorf("the new version is not uploaded: %v", tags)
	}
}

// TestUploadObjectGone: an object deleted before its event is handled is
// skipped without an error and without a failure-queue entry.
func TestUploadObjectGone(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	fn, prefix := directRuntime(t)
	key := prefix + phone + "/deleted.pdf"
	body := randomPDF()
	put := putObject(t, ctx, key, body, nil)
	if _, err := st.S3Client().DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(st.Bucket), Key: aws.String(key)}); err != nil {
		t.Fatal(err)
	}
	if ferr := invokeUpload(t, ctx, fn, eventFor(st.Bucket, key, len(body), put)); ferr != nil {
		t.Errorf("a deleted object failed the invocation: %s", ferr.Message)
	}
	if n := len(uploadCallsOf(body)); n != 0 {
		t.Errorf("a deleted object was sent (%d calls)", n)
	}

	// Through the stack's asynchronous path: never there at all.
	ghost := st.Prefix + phone + "/ghost-" + randomID(8) + ".pdf"
	ev := localstack.S3EventForObject(st.Bucket, ghost, 1234, "0b9c2c3f1a7e5d4c8b6a29f1e0d3c4b5", "")
	b, _ := json.Marshal(ev)
	st.Enqueue(b)
	if err := st.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	for _, f := range st.Failed() {
		if strings.Contains(string(f.RequestPayload), path.Base(ghost)) {
			t.Errorf("an event for a missing object reached the failure queue: %s", f.ResponsePayload.ErrorMessage)
		}
	}
}

// TestUploadSecretMissing: without credentials the upload is a transient
// failure (an error for Lambda to retry), nothing is sent or tagged.
func TestUploadSecretMissing(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	fn, prefix := directRuntime(t, "NXCLOUD_SECRET_ID=e2e/missing-"+randomID(8))
	key := prefix + phone + "/nosecret.pdf"
	body := randomPDF()
	put := putObject(t, ctx, key, body, nil)
	if ferr := invokeUpload(t, ctx, fn, eventFor(st.Bucket, key, len(body), put)); ferr == nil {
		t.Errorf("a missing secret did not fail the invocation: Lambda would not retry")
	}
	if tags := objectTags(t, ctx, st.Bucket, key, ""); len(tags) != 0 {
		t.Errorf("tags %v after a transient failure, want none", tags)
	}
	if n := len(uploadCallsOf(body)); n != 0 {
		t.Errorf("NXCloud got %d uploads without credentials", n)
	}
	claims, err := st.S3Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(st.Bucket), Prefix: aws.String("nxcloud-claims/" + key)})
	if err != nil {
		t.Fatal(err)
	}
	if len(claims.Contents) != 0 {
		t.Errorf("the claim of a failed upload was not released: %d claim objects", len(claims.Contents))
	}
}

// TestUploadNXCloudFaults: NXCloud's permanent codes reject without retry;
// a 5xx is retried by Lambda and uploads once; a 5xx on every attempt ends
// in the failure queue (serial: faults).
func TestUploadNXCloudFaults(t *testing.T) {
	serial(t, nxcloud.ActionUploadTemplateFile)
	action := nxcloud.ActionUploadTemplateFile
	claimsOf := func(t *testing.T, ctx context.Context, key string) int {
		out, err := st.S3Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(st.Bucket), Prefix: aws.String("nxcloud-claims/" + key)})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.Contents)
	}
	for _, code := range []int{9000, 9002, 9006} {
		t.Run(fmt.Sprintf("code %d", code), func(t *testing.T) {
			ctx := testContext(t, 60*time.Second)
			key := st.Prefix + phone + fmt.Sprintf("/code-%d-%s.pdf", code, randomID(6))
			n := len(st.NXCloud.Calls(action))
			st.NXCloud.Inject(action, nxcloudtest.Fault{Code: code})
			body := randomPDF()
			put := putObject(t, ctx, key, body, nil)
			tags := waitTags(t, ctx, key)
			if err := st.WaitIdle(ctx); err != nil {
				t.Fatal(err)
			}
			if tags["nxcloud-status"] != "rejected" || !strings.Contains(tags["nxcloud-error"], fmt.Sprint(code)) {
				t.Errorf("tags = %v, want rejected with a reason naming %d", tags, code)
			}
			if got := len(callsSince(action, n)); got != 1 {
				t.Errorf("NXCloud got %d calls, want 1: a permanent rejection is not retried", got)
			}
			// S3 delivers at least once: the same event again is a no-op.
			st.Enqueue(eventFor(st.Bucket, key, len(body), put))
			if err := st.WaitIdle(ctx); err != nil {
				t.Fatal(err)
			}
			if got := len(callsSince(action, n)); got != 1 {
				t.Errorf("a duplicate delivery of the rejected object's event sent it to NXCloud again (%d calls in all): duplicate delivery must be a no-op", got)
			}
			if again := objectTags(t, ctx, st.Bucket, key, aws.ToString(put.VersionId)); again["nxcloud-status"] != "rejected" {
				t.Errorf("after a duplicate delivery the tags are %v, want the rejection kept", again)
			}
			for _, f := range st.Failed() {
				if strings.Contains(string(f.RequestPayload), fmt.Sprintf("code-%d-", code)) {
					t.Errorf("a permanent rejection reached the failure queue")
				}
			}
			if rec := recordOf(t, ctx, st.Bucket, key, aws.ToString(put.VersionId)); rec == nil || rec.Status != ledger.Rejected {
				t.Errorf("record after a rejection = %+v, want the rejection recorded for the version", rec)
			}
		})
	}

	t.Run("two records, one failing once", func(t *testing.T) {
		// The first record fails transiently, the second succeeds; Lambda's
		// retry of the whole event uploads the first and skips the second.
		ctx := testContext(t, 60*time.Second)
		fn, prefix := directRuntime(t)
		var recs []json.RawMessage
		var bodies [][]byte
		for i := range 2 {
			key := fmt.Sprintf("%s%s/multi-%d.pdf", prefix, phone, i)
			body := randomPDF()
			put := putObject(t, ctx, key, body, nil)
			var ev struct{ Records []json.RawMessage }
			_ = json.Unmarshal(eventFor(st.Bucket, key, len(body), put), &ev)
			recs = append(recs, ev.Records...)
			bodies = append(bodies, body)
		}
		payload, _ := json.Marshal(map[string]any{"Records": recs})
		n := len(st.NXCloud.Calls(action))
		st.NXCloud.Inject(action, nxcloudtest.Fault{HTTPStatus: 500})
		if ferr := invokeUpload(t, ctx, fn, payload); ferr == nil {
			t.Errorf("a record failing transiently did not fail the invocation: Lambda would not retry it")
		}
		if ferr := invokeUpload(t, ctx, fn, payload); ferr != nil {
			t.Errorf("the retry failed: %s", ferr.Message)
		}
		for i, b := range bodies {
			if got := len(uploadsOf(b)); got != 1 {
				t.Errorf("record %d stored %d times, want once", i, got)
			}
		}
		if got := len(callsSince(action, n)); got != 3 {
			t.Errorf("NXCloud got %d calls, want 3 (the 500, the second record, the retry of the first)", got)
		}
	})

	t.Run("HTTP 500 once", func(t *testing.T) {
		ctx := testContext(t, 60*time.Second)
		key := st.Prefix + phone + "/retry-once-" + randomID(6) + ".pdf"
		body := randomPDF()
		n := len(st.NXCloud.Calls(action))
		st.NXCloud.Inject(action, nxcloudtest.Fault{HTTPStatus: 500})
		putObject(t, ctx, key, body, nil)
		tags := waitTags(t, ctx, key)
		if err := st.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
		if tags["nxcloud-status"] != "uploaded" {
			t.Errorf("tags = %v, want uploaded after Lambda's retry", tags)
		}
		if got := len(callsSince(action, n)); got != 2 {
			t.Errorf("NXCloud got %d calls, want 2 (the 500, then the retry)", got)
		}
		if got := len(uploadsOf(body)); got != 1 {
			t.Errorf("NXCloud stored the file %d times, want once", got)
		}
	})

	t.Run("HTTP 500 every time", func(t *testing.T) {
		ctx := testContext(t, 60*time.Second)
		key := st.Prefix + phone + "/retry-never-" + randomID(6) + ".pdf"
		body := randomPDF()
		failed := len(st.Failed())
		n := len(st.NXCloud.Calls(action))
		st.NXCloud.Inject(action, nxcloudtest.Fault{HTTPStatus: 500, Times: 20})
		put := putObject(t, ctx, key, body, nil)
		deadline := time.Now().Add(tagWait)
		for len(st.Failed()) == failed && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if err := st.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
		var entry *localstack.FailedEvent
		for _, f := range st.Failed()[failed:] {
			if strings.Contains(string(f.RequestPayload), "retry-never-") {
				entry = &f
			}
		}
		if entry == nil {
			t.Fatalf("the event is not in the failure queue after every attempt failed")
		}
		if entry.RequestContext.ApproximateInvokeCount != retryAttempts+1 {
			t.Errorf("attempts = %d, want %d", entry.RequestContext.ApproximateInvokeCount, retryAttempts+1)
		}
		if got := len(callsSince(action, n)); got != retryAttempts+1 {
			t.Errorf("NXCloud got %d calls, want one per attempt (%d)", got, retryAttempts+1)
		}
		if tags := objectTags(t, ctx, st.Bucket, key, aws.ToString(put.VersionId)); tags["nxcloud-status"] == "uploaded" || tags["nxcloud-status"] == "rejected" {
			t.Errorf("tags = %v: a transient failure must not tag the object", tags)
		}
		if c := claimsOf(t, ctx, key); c != 0 {
			t.Errorf("%d claim objects left after the failed attempts", c)
		}
		// Once NXCloud is back, a redelivery uploads it.
		drainFaults(t, action)
		st.Enqueue(entry.RequestPayload)
		if err := st.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
		if tags := objectTags(t, ctx, st.Bucket, key, ""); tags["nxcloud-status"] != "uploaded" || len(uploadsOf(body)) != 1 {
			t.Errorf("redelivery after the outage: tags %v, stored %d times; want uploaded once", tags, len(uploadsOf(body)))
		}
	})
}

// TestUploadMultipartAndCopy: objects written by a multipart upload (an
// ETag with a part count) or by a copy are uploaded like any other.
func TestUploadMultipartAndCopy(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	cli := st.S3Client()

	key := st.Prefix + phone + "/multipart-" + randomID(6) + ".pdf"
	body := sized(300 << 10)
	mp, err := cli.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(st.Bucket), Key: aws.String(key), ContentType: aws.String("application/pdf")})
	if err != nil {
		t.Fatal(err)
	}
	part, err := cli.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(st.Bucket), Key: aws.String(key), UploadId: mp.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(st.Bucket), Key: aws.String(key), UploadId: mp.UploadId,
		MultipartUpload: &s3types.CompletedMultipartUpload{Parts: []s3types.CompletedPart{{ETag: part.ETag, PartNumber: aws.Int32(1)}}},
	}); err != nil {
		t.Fatal(err)
	}
	tags := waitTags(t, ctx, key)
	if m, ok := st.NXCloud.Media(tags["nxcloud-media-id"]); tags["nxcloud-status"] != "uploaded" || !ok || m.SHA256 != sha256Hex(body) {
		t.Errorf("multipart upload: tags %v, want uploaded with the object's content", tags)
	}

	src := "other/copy-source-" + randomID(6) + ".png"
	img := randomPDF()
	putObject(t, ctx, src, img, func(in *s3.PutObjectInput) { in.ContentType = aws.String("image/png") })
	dst := st.Prefix + phone + "/copied-" + randomID(6) + ".png"
	if _, err := cli.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(st.Bucket), Key: aws.String(dst), CopySource: aws.String(st.Bucket + "/" + src)}); err != nil {
		t.Fatal(err)
	}
	tags = waitTags(t, ctx, dst)
	if m, ok := st.NXCloud.Media(tags["nxcloud-media-id"]); tags["nxcloud-status"] != "uploaded" || !ok || m.SHA256 != sha256Hex(img) || m.MimeType != "image/png" {
		t.Errorf("copied object: tags %v, want uploaded as image/png with the source's content", tags)
	}
}

// copyObject copies a version to dst (S3 copies its tags along); metadata,
// when set, replaces the source's.
func copyObject(t *testing.T, ctx context.Context, src, version, dst string, metadata map[string]string) *s3.CopyObjectOutput {
	t.Helper()
	in := &s3.CopyObjectInput{Bucket: aws.String(st.Bucket), Key: aws.String(dst),
		CopySource: aws.String(st.Bucket + "/" + src + "?versionId=" + version)}
	if metadata != nil {
		in.Metadata, in.MetadataDirective = metadata, s3types.MetadataDirectiveReplace
	}
	out, err := st.S3Client().CopyObject(ctx, in)
	if err != nil {
		t.Fatalf("copy %s to %s: %v", src, dst, err)
	}
	return out
}

// waitTagsWhere waits until the tags of a version satisfy ok, and returns
// them (the last ones read when they never did).
func waitTagsWhere(t *testing.T, ctx context.Context, key, version string, ok func(map[string]string) bool) map[string]string {
	t.Helper()
	for deadline := time.Now().Add(tagWait); ; time.Sleep(50 * time.Millisecond) {
		tags := objectTags(t, ctx, st.Bucket, key, version)
		if ok(tags) || time.Now().After(deadline) {
			return tags
		}
	}
}

// TestUploadCopies: S3 copies the tags with an object, so a copy carries
// the original's verdict; it is a new version and is sent on its own, with
// its own phone and id. A copy onto itself with new metadata is how S3
// changes metadata, and how a rejection is fixed.
func TestUploadCopies(t *testing.T) {
	t.Parallel()
	const other = "8613800138000"
	t.Run("to another phone's folder", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t, 60*time.Second)
		name := "copied-" + randomID(6) + ".pdf"
		src, dst := st.Prefix+phone+"/"+name, st.Prefix+other+"/"+name
		body := randomPDF()
		putObject(t, ctx, src, body, nil)
		first := waitTags(t, ctx, src)
		// aws s3 cp s3://B/templates/<phone>/a.pdf s3://B/templates/<other>/a.pdf
		out, err := st.S3Client().CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(st.Bucket), Key: aws.String(dst), CopySource: aws.String(st.Bucket + "/" + src)})
		if err != nil {
			t.Fatal(err)
		}
		// The copy starts out with the original's tags; wait for its own.
		tags := waitTagsWhere(t, ctx, dst, aws.ToString(out.VersionId), func(tags map[string]string) bool {
			return tags["nxcloud-media-id"] != first["nxcloud-media-id"]
		})
		ups := uploadsOf(body)
		if len(ups) != 2 || tags["nxcloud-status"] != "uploaded" || tags["nxcloud-media-id"] == first["nxcloud-media-id"] {
			t.Fatalf("copy: tags %v (original %v), %d uploads; want the copy sent again with its own id", tags, first, len(ups))
		}
		if m, _ := st.NXCloud.Media(tags["nxcloud-media-id"]); m.BusinessPhone != other {
			t.Errorf("the copy was sent for %q, want the phone of its folder %s", m.BusinessPhone, other)
		}
		if rec := recordOf(t, ctx, st.Bucket, dst, aws.ToString(out.VersionId)); rec == nil || rec.MediaID != tags["nxcloud-media-id"] {
			t.Errorf("the copy's record = %+v, want its own id", rec)
		}
	})
	t.Run("onto itself with the phone after a rejection", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t, 60*time.Second)
		key := st.Prefix + "nophone-" + randomID(6) + ".pdf"
		body := randomPDF()
		put := putObject(t, ctx, key, body, nil)
		if tags := waitTags(t, ctx, key); tags["nxcloud-status"] != "rejected" {
			t.Fatalf("tags = %v, want rejected for lack of a phone", tags)
		}
		fixed := copyObject(t, ctx, key, aws.ToString(put.VersionId), key, map[string]string{"business-phone": other})
		// The copy starts out with the rejection's tags; wait for its own.
		tags := waitTagsWhere(t, ctx, key, aws.ToString(fixed.VersionId), func(tags map[string]string) bool {
			return tags["nxcloud-status"] == "uploaded"
		})
		m, ok := st.NXCloud.Media(tags["nxcloud-media-id"])
		if tags["nxcloud-status"] != "uploaded" || !ok || m.BusinessPhone != other || tags["nxcloud-error"] != "" {
			t.Fatalf("the fixed copy: tags %v; want uploaded for %s, no error left", tags, other)
		}
		if n := len(uploadsOf(body)); n != 1 {
			t.Errorf("NXCloud stored the file %d times, want once", n)
		}
	})
}

// TestUploadVersions: an event without a version id (as `sam local
// generate-event s3 put` writes it) is served from the current version; an
// object in a bucket without versioning is refused with the fix.
func TestUploadVersions(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	fn, prefix := directRuntime(t)

	key := prefix + phone + "/no-version-id.pdf"
	putObject(t, ctx, key, randomPDF(), nil)
	body := randomPDF()
	cur := putObject(t, ctx, key, body, nil)
	ev := localstack.S3EventForObject(st.Bucket, key, int64(len(body)), "", "")
	payload, _ := json.Marshal(ev)
	if ferr := invokeUpload(t, ctx, fn, payload); ferr != nil {
		t.Fatalf("an event without a version id failed: %s", ferr.Message)
	}
	tags := objectTags(t, ctx, st.Bucket, key, aws.ToString(cur.VersionId))
	if m, ok := st.NXCloud.Media(tags["nxcloud-media-id"]); !ok || m.SHA256 != sha256Hex(body) {
		t.Errorf("tags of the current version %v; want it sent and tagged", tags)
	}

	bucket := "unversioned-" + randomID(8)
	if err := st.MinIO.CreateBucket(ctx, bucket, false); err != nil {
		t.Fatal(err)
	}
	key = prefix + phone + "/unversioned.pdf"
	body = randomPDF()
	put := putObjectIn(t, ctx, bucket, key, body, nil)
	// The function deployed with that bucket: its policy names the bucket.
	fn = mustRuntime(t, localstack.UploadTemplateFileFunction, "UPLOAD_PREFIX="+prefix, "MEDIA_BUCKET="+bucket).Invoke
	ferr := invokeUpload(t, ctx, fn, eventFor(bucket, key, len(body), put))
	if ferr == nil || !strings.Contains(ferr.Message, "put-bucket-versioning") || !strings.Contains(ferr.Message, bucket) {
		t.Fatalf("an object in a bucket without versioning: %+v; want an error naming the bucket and the fix", ferr)
	}
	if n := len(uploadCallsOf(body)); n != 0 {
		t.Errorf("an object in an unversioned bucket was sent (%d calls)", n)
	}
}

// TestUploadUntaggableID: NXCloud answers an id S3 cannot hold as a tag
// value; the object is tagged with its S3-safe form, the record keeps it
// whole, and the event never goes round the retries (serial: a fault).
func TestUploadUntaggableID(t *testing.T) {
	serial(t, nxcloud.ActionUploadTemplateFile)
	ctx := testContext(t, 60*time.Second)
	id := "4:Pz8#odd?id&" + randomID(6)
	answer, _ := json.Marshal(map[string]any{"code": 0, "message": "Request successful", "data": map[string]string{"id": id}})
	st.NXCloud.Inject(nxcloud.ActionUploadTemplateFile, nxcloudtest.Fault{Body: string(answer)})
	key := st.Prefix + phone + "/odd-id-" + randomID(6) + ".pdf"
	put := putObject(t, ctx, key, randomPDF(), nil)
	tags := waitTags(t, ctx, key)
	if err := st.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if want := ledger.MediaIDTagValue(id); tags["nxcloud-status"] != "uploaded" || tags["nxcloud-media-id"] != want || !strings.HasPrefix(want, "sha256:") {
		t.Errorf("tags = %v, want uploaded with %s", tags, want)
	}
	if rec := recordOf(t, ctx, st.Bucket, key, aws.ToString(put.VersionId)); rec == nil || rec.MediaID != id {
		t.Errorf("record = %+v, want the whole id %q", rec, id)
	}
	for _, f := range st.Failed() {
		if strings.Contains(string(f.RequestPayload), path.Base(key)) {
			t.Errorf("the event went to the failure queue: %s", f.ResponsePayload.ErrorMessage)
		}
	}
}

// ---------------------------------------------------------------- the sweep

// summary is ReconcileFunction's answer.
type summary struct {
	Examined int `json:"examined"`
	Pending  int `json:"pending"`
	Uploaded int `json:"uploaded"`
	Rejected int `json:"rejected"`
	Failed   int `json:"failed"`
}

// sweeper is an extra ReconcileFunction environment sweeping prefix, a
// prefix of its own so that it sees only its test's objects, and its output.
func sweeper(t *testing.T, prefix, settle string, changes ...string) (invoker, *lambdarttest.Buffer) {
	t.Helper()
	rt, logs := mustRuntimeLog(t, localstack.ReconcileFunction, append([]string{"UPLOAD_PREFIX=" + prefix,
		"MEDIA_PREFIX=" + strings.TrimSuffix(prefix, "/") + "-media/", "RECONCILE_SETTLE=" + settle}, changes...)...)
	return rt.Invoke, logs
}

// sweep invokes a sweep with event and returns its summary, checking that
// it is exactly the five documented members.
func sweep(t *testing.T, ctx context.Context, fn invoker, event string) summary {
	t.Helper()
	res, err := fn(ctx, []byte(event))
	if err != nil {
		t.Fatalf("invoke the sweep: %v", err)
	}
	if res.Error != nil {
		t.Fatalf("the sweep failed: %s: %s", res.Error.Type, res.Error.Message)
	}
	return sweepSummary(t, res)
}

// failingSweep invokes a sweep that must end in an error because some of
// its sends failed: it returns the summary of the run's last log line.
func failingSweep(t *testing.T, ctx context.Context, fn invoker, logs *lambdarttest.Buffer) summary {
	t.Helper()
	before := len(logs.Lines(t, "reconcile sweep"))
	res, err := fn(ctx, []byte(`{}`))
	if err != nil {
		t.Fatalf("invoke the sweep: %v", err)
	}
	if res.Error == nil || res.Error.Type != "SweepFailures" {
		t.Fatalf("the sweep answered %s (error %+v); want the errorType SweepFailures", res.Payload, res.Error)
	}
	// The log comes through a pipe.
	lines := logs.Lines(t, "reconcile sweep")
	for deadline := time.Now().Add(5 * time.Second); len(lines) == before && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		lines = logs.Lines(t, "reconcile sweep")
	}
	if len(lines) == before {
		t.Fatal("the failed sweep logged no summary")
	}
	var s summary
	b, _ := json.Marshal(lines[len(lines)-1])
	_ = json.Unmarshal(b, &s)
	return s
}

// sweepSummary decodes a sweep's answer.
func sweepSummary(t *testing.T, res *lambdart.Result) summary {
	t.Helper()
	fmt.Fprintf(output, "e2e answer | sweep -> %s\n", res.Payload)
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(res.Payload, &keys); err != nil {
		t.Fatalf("the sweep answered %s: %v", res.Payload, err)
	}
	if got := slices.Sorted(maps.Keys(keys)); !slices.Equal(got, []string{"examined", "failed", "pending", "rejected", "uploaded"}) {
		t.Errorf("the sweep answered the members %v, want examined, pending, uploaded, rejected, failed", got)
	}
	var s summary
	if err := json.Unmarshal(res.Payload, &s); err != nil {
		t.Fatalf("the sweep answered %s: %v", res.Payload, err)
	}
	return s
}

// emfValues parses the EMF lines of a function's output, failing the test
// on a line that declares metrics but is not valid EMF.
func emfValues(t *testing.T, out string) []metrics.Value {
	t.Helper()
	var vals []metrics.Value
	for _, line := range strings.Split(out, "\n") {
		if i := strings.IndexByte(line, '{'); i >= 0 && strings.Contains(line, `"_aws"`) {
			vs, err := metrics.Parse([]byte(line[i:]))
			if err != nil {
				t.Errorf("an EMF line does not parse as EMF: %v: %s", err, line)
				continue
			}
			vals = append(vals, vs...)
		}
	}
	return vals
}

// hasValue reports a value of metric name with exactly dims, and value when
// value is not negative.
func hasValue(vals []metrics.Value, name string, dims map[string]string, value float64) bool {
	dims = maps.Clone(dims)
	dims[metrics.DimService] = iampolicy.LocalStackName // every metric's, the stack's name
	for _, v := range vals {
		if v.Namespace == "NXCloudMedia" && v.Name == name && maps.Equal(v.Dimensions, dims) && (value < 0 || v.Value == value) {
			return true
		}
	}
	return false
}

// TestReconcileMissedEvent: an object whose event never came (stored under a
// prefix no notification serves) is uploaded once by the sweep and tagged;
// the next sweep finds nothing pending and sends nothing. The sweep's log
// carries the metrics as EMF.
func TestReconcileMissedEvent(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	prefix := "sweep-" + randomID(6) + "/"
	fn, logs := sweeper(t, prefix, "1ms")
	key := prefix + phone + "/missed " + randomID(4) + ".pdf"
	body := sized(4096 + len(randomID(3)))
	put := putObject(t, ctx, key, body, nil)

	if got, want := sweep(t, ctx, fn, `{}`), (summary{Examined: 1, Pending: 1, Uploaded: 1}); got != want {
		t.Errorf("first sweep = %+v, want %+v", got, want)
	}
	tags := objectTags(t, ctx, st.Bucket, key, "")
	ups := uploadsOf(body)
	if len(ups) != 1 || tags["nxcloud-status"] != "uploaded" || tags["nxcloud-media-id"] != ups[0].ID {
		t.Fatalf("tags %v, NXCloud holds %d copies: want one upload, tagged with its id", tags, len(ups))
	}
	if ups[0].BusinessPhone != phone || ups[0].FileName != baseName(key) {
		t.Errorf("NXCloud got %+v, want phone %s and file %s", ups[0], phone, baseName(key))
	}
	if rec := recordOf(t, ctx, st.Bucket, key, aws.ToString(put.VersionId)); rec == nil || rec.Status != ledger.Uploaded || rec.MediaID != ups[0].ID {
		t.Errorf("record %+v, want uploaded as %s", rec, ups[0].ID)
	}

	// The schedule's event (events/reconcile.json) is as good as {};
	// nothing is pending any more.
	if got, want := sweep(t, ctx, fn, string(readEvent(t, "reconcile.json"))), (summary{Examined: 1}); got != want {
		t.Errorf("second sweep = %+v, want %+v", got, want)
	}
	if n := len(uploadCallsOf(body)); n != 1 {
		t.Errorf("NXCloud got %d uploads of the file, want 1", n)
	}

	// Its metrics, as EMF lines in its log.
	var vals []metrics.Value
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if vals = emfValues(t, logs.String()); hasValue(vals, metrics.Uploads, map[string]string{"Outcome": "uploaded"}, 1) {
			break
		}
	}
	for _, w := range []struct {
		name  string
		dims  map[string]string
		value float64
	}{
		{metrics.Uploads, map[string]string{"Outcome": "uploaded"}, 1},
		{metrics.UploadBytes, map[string]string{"Outcome": "uploaded"}, float64(len(body))},
		{metrics.NXCloudLatency, map[string]string{"Action": nxcloud.ActionUploadTemplateFile, "Code": "0"}, -1},
		{metrics.NXCloudLatency, map[string]string{"Action": nxcloud.ActionUploadTemplateFile}, -1},
		{metrics.CredentialRefreshes, map[string]string{"Result": "ok"}, 1},
		{metrics.ColdStarts, map[string]string{"FunctionName": localstack.ReconcileFunction}, 1},
	} {
		if !hasValue(vals, w.name, w.dims, w.value) {
			t.Errorf("no EMF value %s %v = %v in the sweep's log", w.name, w.dims, w.value)
		}
	}
}

func baseName(key string) string { return key[strings.LastIndexByte(key, '/')+1:] }

// TestReconcileUploadMetrics: the upload function's log carries the
// uploads by outcome and the bytes sent as EMF.
func TestReconcileUploadMetrics(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	body := sized(5000 + int(randomID(2)[0]))
	key := st.Prefix + phone + "/metrics-" + randomID(6) + ".pdf"
	putObject(t, ctx, key, body, nil)
	if tags := waitTags(t, ctx, key); tags["nxcloud-status"] != "uploaded" {
		t.Fatalf("tags = %v", tags)
	}
	var own bytes.Buffer
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		own.Reset()
		for _, line := range strings.Split(output.String(), "\n") {
			if strings.HasPrefix(line, localstack.UploadTemplateFileFunction+" | ") {
				own.WriteString(line + "\n")
			}
		}
		if hasValue(emfValues(t, own.String()), metrics.UploadBytes, map[string]string{"Outcome": "uploaded"}, float64(len(body))) {
			return
		}
	}
	t.Errorf("the upload function logged no EMF UploadBytes = %d for the upload", len(body))
}

// TestReconcileFailureQueue: an object whose event went to the failure
// queue (NXCloud failing every retry) is uploaded once by the sweep after
// the fault is gone.
func TestReconcileFailureQueue(t *testing.T) {
	action := nxcloud.ActionUploadTemplateFile
	serial(t, action)
	ctx := testContext(t, 90*time.Second)
	id := "fq-" + randomID(6)
	prefix := st.Prefix + phone + "/" + id + "/"
	key := prefix + "menu.pdf"
	body := randomPDF()
	calls := len(st.NXCloud.Calls(action))
	st.NXCloud.Inject(action, nxcloudtest.Fault{HTTPStatus: 503, Times: retryAttempts + 1})
	putObject(t, ctx, key, body, func(in *s3.PutObjectInput) { in.Metadata = map[string]string{"business-phone": phone} })

	queued := func() bool {
		for _, f := range st.Failed() {
			if strings.Contains(string(f.RequestPayload), id) { // the key is URL-encoded there
				return true
			}
		}
		return false
	}
	for !queued() {
		if ctx.Err() != nil {
			t.Fatal("the event never reached the failure queue")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(uploadsOf(body)); n != 0 {
		t.Fatalf("NXCloud holds %d copies before the sweep, want none", n)
	}

	fn, _ := sweeper(t, prefix, "1ms")
	if got, want := sweep(t, ctx, fn, `{}`), (summary{Examined: 1, Pending: 1, Uploaded: 1}); got != want {
		t.Errorf("sweep = %+v, want %+v", got, want)
	}
	ups := uploadsOf(body)
	if tags := objectTags(t, ctx, st.Bucket, key, ""); len(ups) != 1 || tags["nxcloud-media-id"] != ups[0].ID {
		t.Errorf("after the sweep: tags %v, %d copies in NXCloud, want one, tagged", tags, len(ups))
	}
	if n := len(callsSince(action, calls)); n != retryAttempts+2 {
		t.Errorf("NXCloud got %d calls, want %d failed and 1 by the sweep", n, retryAttempts+1)
	}
}

// TestReconcileRacesEvent: sweeps running while the object's own event is
// delivered send it once.
func TestReconcileRacesEvent(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 90*time.Second)
	prefix := st.Prefix + phone + "/race-" + randomID(6) + "/"
	a, _ := sweeper(t, prefix, "1ms")
	b, _ := sweeper(t, prefix, "1ms")
	key := prefix + "menu.pdf"
	body := sized(512 << 10)
	put := putObject(t, ctx, key, body, func(in *s3.PutObjectInput) { in.Metadata = map[string]string{"business-phone": phone} })
	// MinIO's event is on its way; one more at the same time, and two sweeps.
	ev := eventFor(st.Bucket, key, len(body), put)
	var wg sync.WaitGroup
	sums := make([]summary, 2)
	for i, fn := range []invoker{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sums[i] = sweep(t, ctx, fn, `{}`)
		}()
	}
	st.Enqueue(ev)
	wg.Wait()
	if tags := waitTags(t, ctx, key); tags["nxcloud-status"] != "uploaded" {
		t.Errorf("tags = %v, want uploaded", tags)
	}
	if err := st.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(uploadCallsOf(body)); n != 1 {
		t.Errorf("NXCloud got %d uploads of the file from two sweeps and two deliveries, want 1", n)
	}
	for i, s := range sums {
		if s.Failed != 0 || s.Uploaded > 1 {
			t.Errorf("sweep %d = %+v: want no failure and at most the one upload", i, s)
		}
	}
}

// TestReconcileLeavesAlone: a version younger than the settle time, an
// uploaded one, a rejected one and one with a live claim are not sent.
func TestReconcileLeavesAlone(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	prefix := "sweep-" + randomID(6) + "/"
	direct := mustRuntime(t, localstack.UploadTemplateFileFunction, "UPLOAD_PREFIX="+prefix)

	uploaded, rejected, claimed, young := prefix+phone+"/uploaded.pdf", prefix+phone+"/rejected.txt", prefix+phone+"/claimed.pdf", prefix+phone+"/young.pdf"
	for _, k := range []string{uploaded, rejected} {
		body := randomPDF()
		ct := "application/pdf"
		if k == rejected {
			ct = "text/plain"
		}
		put := putObject(t, ctx, k, body, func(in *s3.PutObjectInput) { in.ContentType = aws.String(ct) })
		if ferr := invokeUpload(t, ctx, direct.Invoke, eventFor(st.Bucket, k, len(body), put)); ferr != nil {
			t.Fatalf("%s: %s", k, ferr.Message)
		}
	}
	if s := objectTags(t, ctx, st.Bucket, rejected, "")["nxcloud-status"]; s != "rejected" {
		t.Fatalf("%s is %q, want rejected", rejected, s)
	}
	claimedPut := putObject(t, ctx, claimed, randomPDF(), nil)
	fn, _ := sweeper(t, prefix, "2s")
	time.Sleep(3 * time.Second) // all of the above are older than the settle time
	putObject(t, ctx, young, randomPDF(), nil)
	claim, _ := json.Marshal(map[string]any{"bucket": st.Bucket, "key": claimed, "version_id": aws.ToString(claimedPut.VersionId), "owner": "e2e", "lease_ms": 60000})
	putObject(t, ctx, ledger.ClaimKey(claimed, aws.ToString(claimedPut.VersionId)), claim, func(in *s3.PutObjectInput) { in.ContentType = aws.String("application/json") })

	calls := len(st.NXCloud.Calls(uploadAction))
	if got, want := sweep(t, ctx, fn, `{}`), (summary{Examined: 4}); got != want {
		t.Errorf("sweep = %+v, want %+v", got, want)
	}
	for _, k := range []string{claimed, young} {
		if tags := objectTags(t, ctx, st.Bucket, k, ""); len(tags) != 0 {
			t.Errorf("%s was touched: tags %v", k, tags)
		}
	}
	for _, c := range callsSince(uploadAction, calls) {
		if strings.Contains(c.FileName, "claimed") || strings.Contains(c.FileName, "young") || strings.Contains(c.FileName, "uploaded") {
			t.Errorf("NXCloud got %s from the sweep", c.FileName)
		}
	}
}

const uploadAction = nxcloud.ActionUploadTemplateFile

// TestReconcileDeadline: a sweep that cannot send everything in time (NXCloud
// answering slowly, and failing) answers before the function's deadline
// with an error (some sends failed), keeps its position, and the next run
// goes on from there; the run after it starts over: each version is sent
// once.
func TestReconcileDeadline(t *testing.T) {
	serial(t, uploadAction)
	ctx := testContext(t, 120*time.Second)
	prefix := "sweep-" + randomID(6) + "/"
	bodies := map[string][]byte{}
	for i := range 12 {
		k := fmt.Sprintf("%s%s/slow-%02d.pdf", prefix, phone, i)
		bodies[k] = randomPDF()
		putObject(t, ctx, k, bodies[k], nil)
	}
	fn, logs := sweeper(t, prefix, "1ms") // its timeout is 10 s
	st.NXCloud.Inject(uploadAction, nxcloudtest.Fault{HTTPStatus: 500, Delay: 3 * time.Second, Times: len(bodies)})
	start := time.Now()
	s := failingSweep(t, ctx, fn, logs)
	t.Logf("the sweep against a slow NXCloud answered %+v after %s", s, time.Since(start).Round(time.Millisecond))
	if took := time.Since(start); took >= httpTimeout {
		t.Errorf("the sweep answered after %s, its timeout is %s", took, httpTimeout)
	}
	if s.Examined != 12 || s.Pending != 12 || s.Uploaded != 0 || s.Failed == 0 || s.Failed >= 12 {
		t.Errorf("sweep against a slow NXCloud = %+v, want 12 pending, some failed, some left", s)
	}
	drainFaults(t, uploadAction)
	// The next run goes on from where the first stopped, to the end; the
	// one after it starts over and sends what failed.
	left := 12 - s.Failed
	if got, want := sweep(t, ctx, fn, `{}`), (summary{Examined: left, Pending: left, Uploaded: left}); got != want {
		t.Errorf("next sweep = %+v, want %+v", got, want)
	}
	if got, want := sweep(t, ctx, fn, `{}`), (summary{Examined: 12, Pending: s.Failed, Uploaded: s.Failed}); got != want {
		t.Errorf("the sweep after it = %+v, want %+v", got, want)
	}
	for k, b := range bodies {
		if n := len(uploadsOf(b)); n != 1 {
			t.Errorf("%s: %d copies in NXCloud, want 1", k, n)
		}
	}
}
