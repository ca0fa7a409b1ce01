package e2e_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localstack"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

// uuidRE is the form of a message media id (uploadMedia's answer).
var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// TestMediaRoundTrip: a photo stored under MEDIA_PREFIX becomes a message
// media id (uploadMedia, through the bucket's notification to
// UploadMediaFunction); GET /media/{id} describes it, /content leads to the
// same bytes, DELETE removes it.
func TestMediaRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	key := st.MediaPrefix + phone + "/photo-" + randomID(6) + ".jpg"
	body := append([]byte("\xff\xd8\xff\xe0 jpeg "), randomID(32)...)
	putObject(t, ctx, key, body, func(in *s3.PutObjectInput) { in.ContentType = aws.String("image/jpeg") })
	tags := waitTags(t, ctx, key)
	id := tags["nxcloud-media-id"]
	if tags["nxcloud-status"] != "uploaded" || !uuidRE.MatchString(id) {
		t.Fatalf("tags = %v; want uploaded with a message media id (a UUID)", tags)
	}
	m, ok := st.NXCloud.Media(id)
	if !ok || m.Action != nxcloud.ActionUploadMedia || m.MimeType != "image/jpeg" || m.SHA256 != sha256Hex(body) {
		t.Fatalf("NXCloud has %+v for %s; want the photo, sent with uploadMedia", m, id)
	}
	if n := len(uploadCallsOf(body)); n != 0 {
		t.Errorf("the photo went %d times to uploadTemplateFile", n)
	}

	r := apiCall(t, http.MethodGet, "/media/"+id+"?business_phone="+phone)
	if r.Status != http.StatusOK || !bytes.Contains(r.Body, []byte(`"image/jpeg"`)) {
		t.Fatalf("GET /media/%s = %s", id, r)
	}
	r = apiCall(t, http.MethodGet, "/media/"+id+"/content?business_phone="+phone)
	if r.Status != http.StatusFound {
		t.Fatalf("GET /media/%s/content = %s; want 302", id, r)
	}
	resp, err := http.Get(r.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if !bytes.Equal(got, body) {
		t.Errorf("the content link served %d bytes; want the photo's %d", len(got), len(body))
	}
	if r := apiCall(t, http.MethodDelete, "/media/"+id+"?business_phone="+phone); r.Status != http.StatusOK {
		t.Errorf("DELETE /media/%s = %s", id, r)
	}
	if line := uploadLogLine(id); line == nil || line["destination"] != "message" {
		t.Errorf("the upload's log line %v; want destination message", line)
	}
}

// TestMediaRules: the uploadMedia table decides the type (Content-Type
// without its parameters, else the extension) and the size of each kind,
// from metadata alone: over a kind's limit, or a type the table lacks, is
// rejected and nothing is sent; at the limit it is sent.
func TestMediaRules(t *testing.T) {
	t.Parallel()
	// The stack's MAX_UPLOAD_BYTES is 1 MiB: this function keeps the
	// default (100 MiB), so the kinds' own limits decide; its prefix has no
	// notification, so it alone sees the versions.
	prefix := "direct-media-" + randomID(6) + "/"
	fn := mustRuntime(t, localstack.UploadMediaFunction, "-MAX_UPLOAD_BYTES", "MEDIA_PREFIX="+prefix)
	const mb, kb = 1 << 20, 1 << 10
	for _, tc := range []struct {
		name, file, contentType string
		size                    int
		wantType                string // "" rejected
	}{
		{"image at 5 MB", "p.jpg", "image/jpeg", 5 * mb, "image/jpeg"},
		{"image over 5 MB", "p.png", "image/png", 5*mb + 1, ""},
		{"sticker at 100 KB", "s.webp", "application/octet-stream", 100 * kb, "image/webp"},
		{"sticker over 100 KB", "s.webp", "image/webp", 100*kb + 1, ""},
		{"audio with codecs", "voice", "audio/ogg; codecs=opus", 1000, "audio/ogg"},
		{"opus by extension", "voice.OPUS", "binary/octet-stream", 1000, "audio/ogg"},
		{"video/3gpp read as video/3gp", "clip", "video/3gpp", 1000, "video/3gp"},
		{"docx by extension", "report.docx", "application/octet-stream", 1000, "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
		{"text with charset", "notes", "Text/Plain; charset=utf-8", 1000, "text/plain"},
		{"gif", "anim.gif", "image/gif", 1000, ""},
		{"image/jpg is not in the table", "x.bin", "image/jpg", 1000, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 60*time.Second)
			key := prefix + phone + "/" + randomID(6) + "-" + tc.file
			body := sized(tc.size)
			put := putObject(t, ctx, key, body, func(in *s3.PutObjectInput) { in.ContentType = aws.String(tc.contentType) })
			if ferr := invokeUpload(t, ctx, fn.Invoke, eventFor(st.Bucket, key, len(body), put)); ferr != nil {
				t.Fatalf("invoke: %s", ferr.Message)
			}
			tags := objectTags(t, ctx, st.Bucket, key, aws.ToString(put.VersionId))
			if tc.wantType == "" {
				if tags["nxcloud-status"] != "rejected" || tags["nxcloud-error"] == "" {
					t.Errorf("tags = %v; want rejected with a reason", tags)
				}
				return
			}
			m, ok := st.NXCloud.Media(tags["nxcloud-media-id"])
			if tags["nxcloud-status"] != "uploaded" || !ok || m.MimeType != tc.wantType || m.Size != int64(tc.size) {
				t.Errorf("tags %v, NXCloud %+v; want uploaded as %s, %d bytes", tags, m, tc.wantType, tc.size)
			}
		})
	}
}

// TestMediaPrefixesKeptApart: each upload function serves its own prefix
// only: an event for the other prefix is skipped, nothing is sent.
func TestMediaPrefixesKeptApart(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	for fn, key := range map[string]string{
		localstack.UploadMediaFunction:        st.Prefix + phone + "/menu-" + randomID(6) + ".pdf",
		localstack.UploadTemplateFileFunction: st.MediaPrefix + phone + "/menu-" + randomID(6) + ".pdf",
	} {
		body := randomPDF()
		rt, logs := mustRuntimeLog(t, fn)
		put := putObjectIn(t, ctx, st.Bucket, key, body, nil)
		ev := eventFor(st.Bucket, key, len(body), put)
		if ferr := invokeUpload(t, ctx, rt.Invoke, ev); ferr != nil {
			t.Fatalf("%s: %s", fn, ferr.Message)
		}
		found := false
		for deadline := time.Now().Add(5 * time.Second); !found && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			for _, l := range logs.Lines(t, "upload") {
				found = found || l["key"] == key && l["outcome"] == "skipped" && strings.Contains(fmt.Sprint(l["reason"]), "outside prefix")
			}
		}
		if !found {
			t.Errorf("%s did not log %s as skipped outside its prefix", fn, key)
		}
	}
}
