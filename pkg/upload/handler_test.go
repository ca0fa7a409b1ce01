package upload_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/ledger"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/upload"
)

const phone = "8615812341795"

var pdf = []byte("%PDF-1.4\n% a tiny test file\n%%EOF\n")

// TestUploadKeys streams objects whose keys need URL-decoding and checks
// what NXCloud received, the tags, the log line and that no claim is left.
func TestUploadKeys(t *testing.T) {
	t.Parallel()
	for _, key := range []string{
		"templates/menu.pdf",
		"templates/summer menu 2026.pdf",
		"templates/a+b=c.pdf",
		"templates/菜单 été.pdf",
		"templates/deep/er/report (final).pdf",
	} {
		t.Run(key, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone}})
			o := e.put(key, pdf, withType("application/pdf"))
			e.handle(e.event(record{obj: o}))

			ups := e.nx.Uploads()
			if len(ups) != 1 {
				t.Fatalf("NXCloud got %d uploads; want 1", len(ups))
			}
			m := ups[0]
			base := key[strings.LastIndex(key, "/")+1:]
			if m.FileName != base || m.MimeType != "application/pdf" || m.BusinessPhone != phone || m.Size != o.size || m.SHA256 != o.sha256 {
				t.Errorf("NXCloud got %+v; want file %q, application/pdf, %s, %d bytes, sha256 %s", m, base, phone, o.size, o.sha256)
			}
			call := e.nx.Calls(nxcloud.ActionUploadTemplateFile)[0]
			if call.ContentLength <= o.size || len(call.TransferEncoding) != 0 || call.Fields["messaging_product"] != "whatsapp" {
				t.Errorf("upload call: Content-Length %d, Transfer-Encoding %v, fields %v; want exact length, no chunking, messaging_product=whatsapp",
					call.ContentLength, call.TransferEncoding, call.Fields)
			}
			tags := e.tags(o)
			if tags[ledger.TagMediaID] != m.ID || tags[ledger.TagStatus] != string(upload.Uploaded) {
				t.Errorf("tags = %v; want %s=%s, %s=uploaded", tags, ledger.TagMediaID, m.ID, ledger.TagStatus)
			}
			l := e.wantOutcome(key, upload.Uploaded)
			for field, want := range map[string]any{
				"bucket": e.bucket, "version": o.version, "phone": phone, "type": "application/pdf",
				"size": float64(o.size), "media_id": m.ID,
			} {
				if l[field] != want {
					t.Errorf("log %s = %v; want %v", field, l[field], want)
				}
			}
			for _, field := range []string{"duration_ms", "bytes_per_sec"} {
				if _, ok := l[field]; !ok {
					t.Errorf("log line has no %s: %v", field, l)
				}
			}
			e.wantRecord(o, ledger.Uploaded, m.ID)
		})
	}
}

// TestKeyEncodings feeds the same key encoded as S3 does and with every
// character escaped; both must reach the object.
func TestKeyEncodings(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone}})
	o := e.put("templates/a b+c.pdf", pdf)
	e.handle(e.event(record{obj: o, rawKey: "templates%2Fa+b%2Bc.pdf"}))
	if n := len(e.nx.Uploads()); n != 1 {
		t.Fatalf("uploads = %d; want 1", n)
	}
	e.wantOutcome("templates/a b+c.pdf", upload.Uploaded)
}

func TestPhoneRules(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, key, def string
		opts           []putOpt
		want           string // phone sent, or "" for a rejection
	}{
		{name: "metadata", key: "templates/4915112345678/a.pdf", def: "11111", opts: []putOpt{withPhone(phone)}, want: phone},
		{name: "path segment", key: "templates/4915112345678/a.pdf", def: "11111", want: "4915112345678"},
		{name: "default", key: "templates/menus/a.pdf", def: "33612345678", want: "33612345678"},
		{name: "none", key: "templates/menus/a.pdf"},
		{name: "bad metadata", key: "templates/a.pdf", def: "11111", opts: []putOpt{withPhone("12-34")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: tc.def}})
			o := e.put(tc.key, pdf, append(tc.opts, withType("application/pdf"))...)
			e.handle(e.event(record{obj: o}))
			tags := e.tags(o)
			if tc.want == "" {
				if e.uploadCalls() != 0 {
					t.Fatalf("NXCloud was called for an object without a valid phone")
				}
				if tags[ledger.TagStatus] != string(upload.Rejected) || tags[ledger.TagError] == "" {
					t.Fatalf("tags = %v; want rejected with a reason", tags)
				}
				checkTagValue(t, tags[ledger.TagError])
				e.wantOutcome(tc.key, upload.Rejected)
				return
			}
			ups := e.nx.Uploads()
			if len(ups) != 1 || ups[0].BusinessPhone != tc.want {
				t.Fatalf("uploads = %+v; want one with phone %s", ups, tc.want)
			}
			if tags[ledger.TagStatus] != string(upload.Uploaded) {
				t.Fatalf("tags = %v; want uploaded", tags)
			}
		})
	}
}

func TestTypeRules(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, key, ct, want string
	}{
		{name: "content type accepted", key: "templates/photo.bin", ct: "image/png", want: "image/png"},
		{name: "content type with params", key: "templates/doc", ct: "Application/PDF; qs=0.9", want: "application/pdf"},
		{name: "image/jpg as is", key: "templates/p.png", ct: "image/jpg", want: "image/jpg"},
		{name: "octet-stream from extension", key: "templates/photo.JPG", ct: "application/octet-stream", want: "image/jpeg"},
		{name: "jpeg extension", key: "templates/photo.jpeg", ct: "binary/octet-stream", want: "image/jpeg"},
		{name: "mp4 extension", key: "templates/clip.mp4", ct: "application/octet-stream", want: "video/mp4"},
		{name: "unknown", key: "templates/notes.txt", ct: "text/plain"},
		{name: "gif", key: "templates/anim.gif", ct: "image/gif"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone}})
			o := e.put(tc.key, []byte("content of "+tc.key), withType(tc.ct))
			e.handle(e.event(record{obj: o}))
			tags := e.tags(o)
			if tc.want == "" {
				if e.uploadCalls() != 0 {
					t.Fatal("NXCloud was called for an unsupported type")
				}
				if tags[ledger.TagStatus] != string(upload.Rejected) || !strings.Contains(tags[ledger.TagError], "unsupported type") {
					t.Fatalf("tags = %v; want rejected: unsupported type", tags)
				}
				checkTagValue(t, tags[ledger.TagError])
				return
			}
			ups := e.nx.Uploads()
			if len(ups) != 1 || ups[0].MimeType != tc.want {
				t.Fatalf("uploads = %+v; want one of type %s", ups, tc.want)
			}
		})
	}
}

// checkTagValue holds a tag value to S3's rules.
func checkTagValue(t *testing.T, v string) {
	t.Helper()
	if len(v) > 256 {
		t.Errorf("tag value longer than 256: %q", v)
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(" +-=._:/@", r)) {
			t.Errorf("tag value %q has the character %q S3 refuses", v, r)
		}
	}
}

func TestOversizeRejectedBeforeSending(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone, MaxUploadBytes: 100}})
	ok := e.put("templates/small.pdf", bytes.Repeat([]byte("x"), 100))
	big := e.put("templates/big.pdf", bytes.Repeat([]byte("x"), 101))
	e.handle(e.event(record{obj: big}, record{obj: ok}))
	calls := e.nx.Calls(nxcloud.ActionUploadTemplateFile)
	if len(calls) != 1 || calls[0].FileSize != 100 {
		t.Fatalf("NXCloud calls = %d; want only the 100-byte file", len(calls))
	}
	tags := e.tags(big)
	if tags[ledger.TagStatus] != string(upload.Rejected) || !strings.Contains(tags[ledger.TagError], "MAX_UPLOAD_BYTES") {
		t.Fatalf("tags = %v; want rejected over MAX_UPLOAD_BYTES", tags)
	}
	e.wantOutcome(big.key, upload.Rejected)
}

func TestSkippedRecords(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone}})
	folder := e.put("templates/folder/", nil)
	empty := e.put("templates/empty.pdf", nil)
	outside := e.put("other/menu.pdf", pdf)
	removed := e.put("templates/removed.pdf", pdf)
	claimLike := e.put(ledger.ClaimPrefix+"templates/x.pdf/v", pdf)
	created := e.put("templates/copied.pdf", pdf)
	if _, err := e.s3.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(removed.key)}); err != nil {
		t.Fatal(err)
	}
	e.handle(e.event(
		record{obj: folder},
		record{obj: empty},
		record{obj: outside},
		record{obj: removed},
		record{obj: claimLike},
		record{obj: created, name: "ObjectRemoved:Delete"},
		record{obj: created, name: "s3:ObjectCreated:Copy"},
	))
	if n := e.uploadCalls(); n != 1 {
		t.Fatalf("NXCloud calls = %d; want 1 (the copied object only)", n)
	}
	for key, reason := range map[string]string{
		folder.key:  "folder",
		empty.key:   "zero-byte",
		outside.key: "outside prefix",
		removed.key: "no longer exists",
	} {
		if l := e.wantOutcome(key, upload.Skipped); !strings.Contains(l["reason"].(string), reason) {
			t.Errorf("%s: reason %q; want it to mention %q", key, l["reason"], reason)
		}
	}
	for _, o := range []object{folder, empty, outside} {
		if tags := e.tags(o); len(tags) != 0 {
			t.Errorf("%s was tagged: %v", o.key, tags)
		}
	}
	e.wantOutcome(created.key, upload.Uploaded)
}

func TestTestEventAndEmptyEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	for name, raw := range map[string]string{
		"s3:TestEvent":  `{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-01-02T03:04:05.000Z","Bucket":"` + e.bucket + `","RequestId":"5582815E1AEA5ADF","HostId":"8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"}`,
		"empty records": `{"Records":[]}`,
		"no records":    `{}`,
	} {
		t.Run(name, func(t *testing.T) {
			if err := e.h.HandleEvent(context.Background(), decodeEvent(t, raw)); err != nil {
				t.Fatalf("Handle(%s) = %v; want nil", name, err)
			}
		})
	}
	if e.uploadCalls() != 0 {
		t.Fatal("NXCloud was called")
	}
}

func TestDuplicateDeliverySequential(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone}})
	o := e.put("templates/menu.pdf", pdf)
	ev := e.event(record{obj: o})
	e.handle(ev)
	id := e.tags(o)[ledger.TagMediaID]
	e.handle(ev)
	if n := e.uploadCalls(); n != 1 {
		t.Fatalf("NXCloud calls = %d; want 1", n)
	}
	l := e.wantOutcome(o.key, upload.Skipped)
	if l["media_id"] != id || !strings.Contains(l["reason"].(string), "already uploaded") {
		t.Errorf("second delivery logged %v; want skipped, already uploaded, media id %s", l, id)
	}
}

func TestDuplicateDeliveryConcurrent(t *testing.T) {
	t.Parallel()
	// A slow NXCloud keeps the first upload in flight while the duplicates
	// arrive; they wait for its verdict and end without an error.
	e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone}})
	o := e.put("templates/menu.pdf", pdf)
	ev := e.event(record{obj: o})
	e.nx.Inject(nxcloud.ActionUploadTemplateFile, nxcloudtest.Fault{Delay: 300 * time.Millisecond, Times: 4})

	const n = 4
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = e.h.HandleEvent(context.Background(), ev)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("delivery %d: %v", i, err)
		}
	}
	ups := e.nx.Uploads()
	if len(ups) != 1 {
		t.Fatalf("NXCloud uploads = %d; want 1", len(ups))
	}
	if e.tags(o)[ledger.TagStatus] != string(upload.Uploaded) {
		t.Error("object not tagged uploaded")
	}
	e.wantRecord(o, ledger.Uploaded, ups[0].ID)
}

func TestSuperseded(t *testing.T) {
	t.Parallel()
	t.Run("older version", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone}})
		old := e.put("templates/menu.pdf", pdf)
		cur := e.put("templates/menu.pdf", []byte("%PDF new"))
		e.handle(e.event(record{obj: old}))
		if e.uploadCalls() != 0 {
			t.Fatal("the old version was sent")
		}
		e.wantOutcome(old.key, upload.Superseded)
		if rec := e.record(old); rec != nil {
			t.Errorf("superseded is not a verdict, yet %+v was recorded", rec)
		}
		if tags := e.tags(old); tags[ledger.TagStatus] != ledger.Superseded || !strings.Contains(tags[ledger.TagError], cur.version) {
			t.Errorf("old version's tags = %v; want superseded naming the current version %s", tags, cur.version)
		}
		if len(e.tags(cur)) != 0 {
			t.Error("the current version was tagged by the old version's event")
		}
		// The new version's own event uploads it.
		e.handle(e.event(record{obj: cur}))
		if ups := e.nx.Uploads(); len(ups) != 1 || ups[0].SHA256 != cur.sha256 {
			t.Fatalf("uploads = %+v; want the current version", ups)
		}
	})
	t.Run("an uploaded version keeps its verdict when overwritten", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone}})
		old := e.put("templates/menu.pdf", pdf)
		e.handle(e.event(record{obj: old}))
		id := e.nx.Uploads()[0].ID
		e.put("templates/menu.pdf", []byte("%PDF new"))
		e.handle(e.event(record{obj: old})) // a late duplicate of the first event
		e.wantOutcome(old.key, upload.Skipped)
		e.wantRecord(old, ledger.Uploaded, id)
	})
	t.Run("event without a version id is served from the current version", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone}})
		e.put("templates/menu.pdf", []byte("%PDF old"))
		o := e.put("templates/menu.pdf", pdf)
		e.handle(e.event(record{obj: o, noIdent: true}))
		ups := e.nx.Uploads()
		if len(ups) != 1 || ups[0].SHA256 != o.sha256 || e.tags(o)[ledger.TagMediaID] != ups[0].ID {
			t.Fatalf("uploads = %+v, tags %v; want the current version sent and tagged", ups, e.tags(o))
		}
		e.wantRecord(o, ledger.Uploaded, ups[0].ID)
	})
}

// TestUnversionedBucketRefused: without versions the upload cannot tell
// which content an event is for; it refuses with the fix and sends nothing.
func TestUnversionedBucketRefused(t *testing.T) {
	t.Parallel()
	no := false
	e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone}, versioned: &no})
	o := e.put("templates/menu.pdf", pdf)
	err := e.h.HandleEvent(context.Background(), e.event(record{obj: o}))
	if err == nil || !strings.Contains(err.Error(), "put-bucket-versioning") || !strings.Contains(err.Error(), e.bucket) {
		t.Fatalf("Handle = %v; want an error naming the bucket and how to enable versioning", err)
	}
	if e.uploadCalls() != 0 || len(e.tags(o)) != 0 || len(e.claims()) != 0 {
		t.Fatalf("calls %d, tags %v, claims %v; want nothing sent, tagged or claimed", e.uploadCalls(), e.tags(o), e.claims())
	}
}

// copyObject copies src to dst in the bucket (S3 copies the tags along) and
// returns the new version.
func (e *env) copyObject(src object, dst string, metadata map[string]string) object {
	e.t.Helper()
	in := &s3.CopyObjectInput{
		Bucket: aws.String(e.bucket), Key: aws.String(dst),
		CopySource: aws.String(e.bucket + "/" + src.key + "?versionId=" + src.version),
	}
	if metadata != nil {
		in.Metadata, in.MetadataDirective = metadata, types.MetadataDirectiveReplace
	}
	out, err := e.s3.CopyObject(context.Background(), in)
	if err != nil {
		e.t.Fatalf("copy %s to %s: %v", src.key, dst, err)
	}
	return object{key: dst, version: aws.ToString(out.VersionId), size: src.size, sha256: src.sha256}
}

// TestCopiesAreNewVersions: S3 copies tags, so a copy carries the original's
// verdict; it is a new version and is decided on its own.
func TestCopiesAreNewVersions(t *testing.T) {
	t.Parallel()
	const other = "8613800138000"
	t.Run("copy to another phone's folder is sent with its own id", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		a := e.put("templates/"+phone+"/a.pdf", pdf, withTags("owner=ops"))
		e.handle(e.event(record{obj: a}))
		b := e.copyObject(a, "templates/"+other+"/a.pdf", nil)
		if got := e.tags(b)[ledger.TagMediaID]; got == "" {
			t.Fatal("the copy carries no tags: the test does not exercise S3's tag copy")
		}
		e.handle(e.event(record{obj: b, name: "ObjectCreated:Copy"}))
		ups := e.nx.Uploads()
		if len(ups) != 2 || ups[1].BusinessPhone != other || ups[1].SHA256 != a.sha256 || ups[1].ID == ups[0].ID {
			t.Fatalf("uploads = %+v; want the copy sent again for %s", ups, other)
		}
		if tags := e.tags(b); tags[ledger.TagMediaID] != ups[1].ID || tags["owner"] != "ops" {
			t.Fatalf("copy's tags = %v; want its own id %s, owner kept", tags, ups[1].ID)
		}
		e.wantRecord(b, ledger.Uploaded, ups[1].ID)
		e.wantRecord(a, ledger.Uploaded, ups[0].ID)
	})
	t.Run("copy onto itself with the phone fixes a rejection", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{})
		a := e.put("templates/menus/a.pdf", pdf)
		e.handle(e.event(record{obj: a}))
		if tags := e.tags(a); tags[ledger.TagStatus] != string(upload.Rejected) {
			t.Fatalf("tags = %v; want rejected for lack of a phone", tags)
		}
		fixed := e.copyObject(a, a.key, map[string]string{upload.MetadataBusinessPhone: other})
		e.handle(e.event(record{obj: fixed, name: "ObjectCreated:Copy"}))
		ups := e.nx.Uploads()
		if len(ups) != 1 || ups[0].BusinessPhone != other {
			t.Fatalf("uploads = %+v; want the fixed copy sent for %s", ups, other)
		}
		tags := e.tags(fixed)
		if tags[ledger.TagStatus] != string(upload.Uploaded) || tags[ledger.TagMediaID] != ups[0].ID || tags[ledger.TagError] != "" {
			t.Fatalf("tags = %v; want uploaded with %s and no error left", tags, ups[0].ID)
		}
		e.wantRecord(a, ledger.Rejected, "")
		e.wantRecord(fixed, ledger.Uploaded, ups[0].ID)
	})
}

func TestNXCloudRejects(t *testing.T) {
	t.Parallel()
	for _, code := range []int{9000, 9002, 9006} {
		t.Run(nxcloudtest.Message(code), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone}})
			o := e.put("templates/menu.pdf", pdf, withTags("owner=ops"))
			e.nx.Inject(nxcloud.ActionUploadTemplateFile, nxcloudtest.Fault{Code: code})
			e.handle(e.event(record{obj: o}))
			tags := e.tags(o)
			if tags[ledger.TagStatus] != string(upload.Rejected) || !strings.Contains(tags[ledger.TagError], "9") || tags["owner"] != "ops" {
				t.Fatalf("tags = %v; want rejected with the code, owner kept", tags)
			}
			checkTagValue(t, tags[ledger.TagError])
			e.wantOutcome(o.key, upload.Rejected)
			if rec := e.wantRecord(o, ledger.Rejected, ""); !strings.Contains(rec.Error, "nxcloud code") {
				t.Errorf("record = %+v; want the NXCloud code as the reason", rec)
			}
			// A duplicate delivery of the same event is a no-op: the
			// rejection is permanent, nothing is sent again.
			e.handle(e.event(record{obj: o}))
			if n := e.uploadCalls(); n != 1 {
				t.Errorf("NXCloud calls after a duplicate delivery = %d; want 1", n)
			}
			if got := e.tags(o)[ledger.TagStatus]; got != string(upload.Rejected) {
				t.Errorf("status after a duplicate delivery = %q; want rejected", got)
			}
		})
	}
	t.Run("phone not on WhatsApp", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone}, nxOpts: []nxcloudtest.Option{nxcloudtest.WithNotWhatsAppPhones(phone)}})
		o := e.put("templates/menu.pdf", pdf)
		e.handle(e.event(record{obj: o}))
		if tags := e.tags(o); tags[ledger.TagStatus] != string(upload.Rejected) || !strings.Contains(tags[ledger.TagError], "9002") {
			t.Fatalf("tags = %v; want rejected 9002", tags)
		}
	})
}

func TestTransientFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		fault nxcloudtest.Fault
	}{
		{name: "HTTP 500", fault: nxcloudtest.Fault{HTTPStatus: 500}},
		{name: "HTTP 429", fault: nxcloudtest.Fault{HTTPStatus: 429}},
		{name: "code -1", fault: nxcloudtest.Fault{Code: -1}},
		{name: "code 9001", fault: nxcloudtest.Fault{Code: 9001}},
		{name: "connection dropped", fault: nxcloudtest.Fault{DropConnection: true}},
		{name: "not JSON", fault: nxcloudtest.Fault{HTTPStatus: 502, Body: "<html>bad gateway</html>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone}})
			o := e.put("templates/menu.pdf", pdf)
			ev := e.event(record{obj: o})
			e.nx.Inject(nxcloud.ActionUploadTemplateFile, tc.fault)
			if err := e.h.HandleEvent(context.Background(), ev); err == nil {
				t.Fatal("Handle = nil; want an error so Lambda retries")
			}
			if tags := e.tags(o); len(tags) != 0 {
				t.Fatalf("tags after a transient failure: %v", tags)
			}
			if c := e.claims(); len(c) != 0 {
				t.Fatalf("claim not released: %v", c)
			}
			if rec := e.record(o); rec != nil {
				t.Fatalf("a verdict was recorded after a transient failure: %+v", rec)
			}
			e.wantOutcome(o.key, upload.Failed)
			// Lambda's retry.
			e.handle(ev)
			ups := e.nx.Uploads()
			if len(ups) != 1 || e.tags(o)[ledger.TagMediaID] != ups[0].ID {
				t.Fatalf("retry: uploads %+v, tags %v", ups, e.tags(o))
			}
		})
	}
}

// failingCreds is a Secrets Manager outage.
type failingCreds struct{}

func (failingCreds) Retrieve(context.Context) (nxcloud.Credentials, error) {
	return nxcloud.Credentials{}, errors.New("secrets manager: service unavailable")
}
func (c failingCreds) Refresh(ctx context.Context) (nxcloud.Credentials, error) {
	return c.Retrieve(ctx)
}

func TestCredentialsFailureIsTransient(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone}, creds: failingCreds{}})
	o := e.put("templates/menu.pdf", pdf)
	err := e.h.Upload(context.Background(), upload.Object{Bucket: e.bucket, Key: o.key, VersionID: o.version}).Err
	var ce *nxcloud.CredentialsError
	if !errors.As(err, &ce) || upload.FailureType(err) != "SecretUnavailable" {
		t.Fatalf("Upload = %v (%s); want a *nxcloud.CredentialsError, SecretUnavailable", err, upload.FailureType(err))
	}
	if e.uploadCalls() != 0 || len(e.tags(o)) != 0 || len(e.claims()) != 0 {
		t.Fatalf("calls %d, tags %v, claims %v; want none", e.uploadCalls(), e.tags(o), e.claims())
	}
}

func TestDeadlineAbortsAndReleases(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone, Margin: 500 * time.Millisecond}})
	o := e.put("templates/menu.pdf", pdf)
	e.nx.Inject(nxcloud.ActionUploadTemplateFile, nxcloudtest.Fault{Delay: 10 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	err := e.h.Upload(ctx, upload.Object{Bucket: e.bucket, Key: o.key, VersionID: o.version}).Err
	if err == nil || !errors.Is(err, nxcloud.ErrTimeout) || upload.FailureType(err) != "NXCloudUnavailable" {
		t.Fatalf("Upload = %v (%s); want nxcloud.ErrTimeout, NXCloudUnavailable", err, upload.FailureType(err))
	}
	if took := time.Since(start); took > 2700*time.Millisecond {
		t.Errorf("Handle returned after %v: it must stop before the Lambda deadline minus the margin", took)
	}
	if ctx.Err() != nil {
		t.Error("Handle returned after the Lambda deadline")
	}
	if c := e.claims(); len(c) != 0 {
		t.Errorf("claim not released: %v", c)
	}
}

// TestSlowS3AfterNXCloudAnswered: NXCloud answers just before the send's
// deadline and S3 is slow right after; the record and the tags are still
// written before the Lambda deadline, so no retry sends the file again.
func TestSlowS3AfterNXCloudAnswered(t *testing.T) {
	t.Parallel()
	spy := &spyS3{}
	e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone}, wrapS3: spy.wrap})
	o := e.put("templates/menu.pdf", pdf)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	// The send must end by 6s - 1.2s (a fifth of the time as the margin).
	e.nx.Inject(nxcloud.ActionUploadTemplateFile, nxcloudtest.Fault{Delay: 4 * time.Second})
	spy.set(func(s *spyS3) {
		s.delay = func(op, key string) time.Duration {
			if strings.HasPrefix(key, ledger.RecordPrefix) && op == "PutObject" || op == "PutObjectTagging" {
				return 400 * time.Millisecond
			}
			return 0
		}
	})
	err := e.h.HandleEvent(ctx, e.event(record{obj: o}))
	if err != nil || ctx.Err() != nil {
		t.Fatalf("Handle = %v (context %v); want the upload recorded and tagged before the deadline", err, ctx.Err())
	}
	ups := e.nx.Uploads()
	if len(ups) != 1 || e.tags(o)[ledger.TagMediaID] != ups[0].ID {
		t.Fatalf("uploads %+v, tags %v", ups, e.tags(o))
	}
	e.wantRecord(o, ledger.Uploaded, ups[0].ID)
}

func TestTagsMerged(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone}})
	o := e.put("templates/menu.pdf", pdf, withTags("owner=ops&project=spring%20menu&nxcloud-error=stale"))
	e.handle(e.event(record{obj: o}))
	tags := e.tags(o)
	id := e.nx.Uploads()[0].ID
	want := map[string]string{"owner": "ops", "project": "spring menu", ledger.TagMediaID: id, ledger.TagStatus: string(upload.Uploaded)}
	if len(tags) != len(want) {
		t.Fatalf("tags = %v; want %v", tags, want)
	}
	for k, v := range want {
		if tags[k] != v {
			t.Errorf("tag %s = %q; want %q", k, tags[k], v)
		}
	}
}

func TestMultiRecordRetrySkipsSuccesses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone}})
	a := e.put("templates/a.pdf", []byte("%PDF a"))
	b := e.put("templates/b.pdf", []byte("%PDF b"))
	c := e.put("templates/c.pdf", []byte("%PDF c"))
	ev := e.event(record{obj: a}, record{obj: b}, record{obj: c})
	// The second call (record b) fails.
	e.nx.Inject(nxcloud.ActionUploadTemplateFile, nxcloudtest.Fault{Delay: time.Millisecond})
	e.nx.Inject(nxcloud.ActionUploadTemplateFile, nxcloudtest.Fault{HTTPStatus: 503})
	err := e.h.HandleEvent(context.Background(), ev)
	if err == nil || !strings.Contains(err.Error(), "b.pdf") || strings.Contains(err.Error(), "a.pdf") {
		t.Fatalf("Handle = %v; want an error about b.pdf only", err)
	}
	if e.tags(a)[ledger.TagStatus] != string(upload.Uploaded) || e.tags(c)[ledger.TagStatus] != string(upload.Uploaded) || len(e.tags(b)) != 0 {
		t.Fatalf("tags a=%v b=%v c=%v; want a and c uploaded, b untouched", e.tags(a), e.tags(b), e.tags(c))
	}
	e.handle(ev)
	ups := e.nx.Uploads()
	if len(ups) != 3 || e.uploadCalls() != 4 {
		t.Fatalf("uploads %d, calls %d; want 3 uploads in 4 calls (no resend of a or c)", len(ups), e.uploadCalls())
	}
	e.wantOutcome(a.key, upload.Skipped)
	e.wantOutcome(b.key, upload.Uploaded)
}

// TestTaggingFailureKeepsMediaID: NXCloud answered an id but tagging fails;
// the id is recorded first, so the retry tags with it instead of uploading
// again.
func TestTaggingFailureKeepsMediaID(t *testing.T) {
	t.Parallel()
	spy := &spyS3{fail: map[string]int{"PutObjectTagging": 100}}
	e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone}, wrapS3: spy.wrap})
	o := e.put("templates/menu.pdf", pdf)
	ev := e.event(record{obj: o})
	err := e.h.HandleEvent(context.Background(), ev)
	if err == nil {
		t.Fatal("Handle = nil; want an error while the object is not tagged")
	}
	ups := e.nx.Uploads()
	if len(ups) != 1 {
		t.Fatalf("uploads %+v; want one", ups)
	}
	e.wantRecord(o, ledger.Uploaded, ups[0].ID)

	spy.set(func(s *spyS3) { s.fail = nil })
	e.handle(ev)
	if n := e.uploadCalls(); n != 1 {
		t.Fatalf("NXCloud calls = %d after the retry; want still 1", n)
	}
	if tags := e.tags(o); tags[ledger.TagMediaID] != ups[0].ID || tags[ledger.TagStatus] != string(upload.Uploaded) {
		t.Fatalf("tags = %v; want the first upload's id", tags)
	}
	e.wantOutcome(o.key, upload.Skipped)
}

// TestUntaggableMediaID: an id S3 cannot hold as a tag value is tagged in
// its S3-safe form, kept whole in the record, and never fails the event.
func TestUntaggableMediaID(t *testing.T) {
	t.Parallel()
	for name, id := range map[string]string{
		"characters outside the tag alphabet": "4:abc#def?ghi&jkl",
		"longer than 256 characters":          "4:" + strings.Repeat("x", 300),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone}})
			o := e.put("templates/menu.pdf", pdf)
			answer, _ := json.Marshal(map[string]any{"code": 0, "message": "Request successful", "data": map[string]string{"id": id}})
			e.nx.Inject(nxcloud.ActionUploadTemplateFile, nxcloudtest.Fault{Body: string(answer)})
			e.handle(e.event(record{obj: o}))
			want := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(id)))
			if tags := e.tags(o); tags[ledger.TagMediaID] != want || tags[ledger.TagStatus] != string(upload.Uploaded) {
				t.Fatalf("tags = %v; want %s=%s", tags, ledger.TagMediaID, want)
			}
			if ledger.MediaIDTagValue(id) != want {
				t.Errorf("MediaIDTagValue(%q) = %q; want %q", id, ledger.MediaIDTagValue(id), want)
			}
			e.wantRecord(o, ledger.Uploaded, id)
		})
	}
}

// putClaim writes a claim as another delivery would.
func (e *env) putClaim(o object, leaseMS int64) {
	e.t.Helper()
	body := fmt.Sprintf(`{"bucket":%q,"key":%q,"version_id":%q,"owner":"other","lease_ms":%d}`, e.bucket, o.key, o.version, leaseMS)
	_, err := e.s3.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(e.bucket), Key: aws.String(ledger.ClaimKey(o.key, o.version)), Body: strings.NewReader(body),
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// putRecord writes the verdict uploaded with mediaID for o, as a holder
// does when NXCloud answers.
func (e *env) putRecord(o object, mediaID string) {
	rec, _ := json.Marshal(ledger.Record{Status: ledger.Uploaded, Bucket: e.bucket, Key: o.key, VersionID: o.version, MediaID: mediaID})
	if _, err := e.s3.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(e.bucket), Key: aws.String(ledger.RecordKey(o.key, o.version)), Body: bytes.NewReader(rec)}); err != nil {
		e.t.Error(err)
	}
}

// later is a clock d ahead: claims written now look that much older to a
// handler with it.
func later(d time.Duration) func() time.Time { return func() time.Time { return time.Now().Add(d) } }

func TestClaims(t *testing.T) {
	t.Parallel()
	t.Run("stale claim is taken over", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone, Clock: later(2 * time.Minute)}})
		o := e.put("templates/menu.pdf", pdf)
		e.putClaim(o, 30_000)
		e.handle(e.event(record{obj: o}))
		ups := e.nx.Uploads()
		if len(ups) != 1 {
			t.Fatalf("uploads %d; want 1 after taking over the stale claim", len(ups))
		}
		e.wantRecord(o, ledger.Uploaded, ups[0].ID)
	})
	t.Run("live claim elsewhere is retried later", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone, ClaimWait: 500 * time.Millisecond}})
		o := e.put("templates/menu.pdf", pdf)
		e.putClaim(o, 30_000)
		err := e.h.HandleEvent(context.Background(), e.event(record{obj: o}))
		if err == nil || e.uploadCalls() != 0 {
			t.Fatalf("Handle = %v with %d calls; want a transient error and nothing sent", err, e.uploadCalls())
		}
		if c := e.claims(); len(c) != 1 {
			t.Fatalf("claims = %v; the other holder's claim must stay", c)
		}
	})
	t.Run("a longer lease than allowed counts as the longest", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone, Clock: later(70 * time.Second)}})
		o := e.put("templates/menu.pdf", pdf)
		e.putClaim(o, int64(time.Hour/time.Millisecond))
		e.handle(e.event(record{obj: o}))
		if n := len(e.nx.Uploads()); n != 1 {
			t.Fatalf("uploads %d; a claim is stale 60s+5s after its last write whatever it says", n)
		}
	})
	t.Run("the holder's verdict ends the wait without an error", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone}})
		o := e.put("templates/menu.pdf", pdf)
		e.putClaim(o, 30_000)
		// What the holder writes when NXCloud answers.
		time.AfterFunc(400*time.Millisecond, func() { e.putRecord(o, "4:held") })
		e.handle(e.event(record{obj: o}))
		if e.uploadCalls() != 0 {
			t.Fatal("a duplicate sent the version another delivery holds")
		}
		if l := e.wantOutcome(o.key, upload.Skipped); l["media_id"] != "4:held" {
			t.Errorf("log line %v; want the holder's media id", l)
		}
	})
	t.Run("claim released while waiting", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone}})
		o := e.put("templates/menu.pdf", pdf)
		e.putClaim(o, 30_000)
		time.AfterFunc(400*time.Millisecond, func() {
			_, _ = e.s3.DeleteObject(context.Background(), &s3.DeleteObjectInput{
				Bucket: aws.String(e.bucket), Key: aws.String(ledger.ClaimKey(o.key, o.version))})
		})
		e.handle(e.event(record{obj: o}))
		if len(e.nx.Uploads()) != 1 {
			t.Fatalf("uploads = %d; want 1 once the other holder released", len(e.nx.Uploads()))
		}
	})
	t.Run("a dead holder's recorded id is tagged, not uploaded again", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone, Clock: later(2 * time.Minute)}})
		o := e.put("templates/menu.pdf", pdf)
		e.putClaim(o, 30_000)
		e.putRecord(o, "4:recorded")
		e.handle(e.event(record{obj: o}))
		if e.uploadCalls() != 0 {
			t.Fatal("the version was sent again although its id was recorded")
		}
		if tags := e.tags(o); tags[ledger.TagMediaID] != "4:recorded" || tags[ledger.TagStatus] != string(upload.Uploaded) {
			t.Fatalf("tags = %v; want the recorded id", tags)
		}
	})
}

// TestLeaseRenewedWhileSending: an upload that takes several leases keeps
// its claim; a duplicate whose clock runs 5s ahead (so the staleness grace
// is used up) still sees it live and sends nothing.
func TestLeaseRenewedWhileSending(t *testing.T) {
	t.Parallel()
	const lease = 3 * time.Second
	e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone, Lease: lease}})
	o := e.put("templates/menu.pdf", pdf)
	e.nx.Inject(nxcloud.ActionUploadTemplateFile, nxcloudtest.Fault{Delay: 3 * lease})
	ev := e.event(record{obj: o})
	done := make(chan error, 1)
	go func() { done <- e.h.HandleEvent(context.Background(), ev) }()

	time.Sleep(2 * lease)
	dup := upload.New(upload.Config{DefaultBusinessPhone: phone, Lease: lease, Clock: later(5 * time.Second)}, e.s3, upload.Template("templates/", e.client))
	if err := dup.HandleEvent(context.Background(), ev); err != nil {
		t.Fatalf("duplicate: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := e.uploadCalls(); n != 1 {
		t.Fatalf("NXCloud calls = %d; want 1: the holder's renewed lease must keep the duplicate out", n)
	}
}

// TestLeaseLostStopsSending: a holder whose claim was taken over stops
// sending at its next renewal, before NXCloud has the whole file.
func TestLeaseLostStopsSending(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone, Lease: 900 * time.Millisecond}})
	o := e.put("templates/menu.pdf", pdf)
	e.nx.Inject(nxcloud.ActionUploadTemplateFile, nxcloudtest.Fault{Delay: 5 * time.Second})
	go func() {
		time.Sleep(500 * time.Millisecond)
		e.putClaim(o, 30_000) // another delivery took the claim over
	}()
	start := time.Now()
	err := e.h.HandleEvent(context.Background(), e.event(record{obj: o}))
	if err == nil || !strings.Contains(err.Error(), "claim on this version was lost") {
		t.Fatalf("Handle = %v; want the lost claim reported", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("sending went on for %v after the claim was lost", took)
	}
	if rec := e.record(o); rec != nil {
		t.Fatalf("a verdict was recorded by the holder that lost its claim: %+v", rec)
	}
}

// TestClaimDocument reads the claim while the upload is in flight: it names
// the version and the lease.
func TestClaimDocument(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone}})
	o := e.put("templates/menu.pdf", pdf)
	e.nx.Inject(nxcloud.ActionUploadTemplateFile, nxcloudtest.Fault{Delay: time.Second})
	done := make(chan error, 1)
	go func() { done <- e.h.HandleEvent(context.Background(), e.event(record{obj: o})) }()

	var body []byte
	for range 100 {
		out, err := e.s3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(ledger.ClaimKey(o.key, o.version))})
		if err == nil {
			body, _ = io.ReadAll(out.Body)
			out.Body.Close()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Bucket, Key, Owner string
		VersionID          string `json:"version_id"`
		LeaseMS            int64  `json:"lease_ms"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("claim %q is not JSON: %v", body, err)
	}
	if doc.Bucket != e.bucket || doc.Key != o.key || doc.VersionID != o.version || doc.Owner == "" || doc.LeaseMS != ledger.DefaultLease.Milliseconds() {
		t.Fatalf("claim = %s; want bucket, key, version, owner and the %s lease", body, ledger.DefaultLease)
	}
}

// TestRequestsPerUpload counts the S3 requests of the common cases: a small
// new file (template or message), a duplicate delivery, a rejection.
func TestRequestsPerUpload(t *testing.T) {
	t.Parallel()
	for _, message := range []bool{false, true} {
		spy := &spyS3{}
		e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone}, wrapS3: spy.wrap, message: message})
		prefix := map[bool]string{false: "templates/", true: "media/"}[message]
		o := e.put(prefix+"menu.pdf", pdf)
		ev := e.event(record{obj: o})
		e.handle(ev)
		if n, ops := spy.total(); n > 6 {
			t.Errorf("a successful upload (message %v) made %d S3 requests %v; want at most 6", message, n, ops)
		}
		e.handle(ev)
		if n, ops := spy.total(); n > 3 {
			t.Errorf("a duplicate delivery (message %v) made %d S3 requests %v; want at most 3", message, n, ops)
		}
		bad := e.put(prefix+"anim.gif", []byte("GIF89a"), withType("image/gif"))
		e.handle(e.event(record{obj: bad}))
		if n, ops := spy.total(); n > 4 {
			t.Errorf("a rejection (message %v) made %d S3 requests %v; want at most 4", message, n, ops)
		}
	}
}

// TestBytesMatch sends a binary object of a few MiB and compares hashes.
func TestBytesMatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone}})
	body := make([]byte, 5<<20+123)
	for i := range body {
		body[i] = byte(i*7 + i>>9)
	}
	o := e.put("templates/video.mp4", body, withType("video/mp4"))
	e.handle(e.event(record{obj: o}))
	ups := e.nx.Uploads()
	if len(ups) != 1 || ups[0].SHA256 != o.sha256 || ups[0].Size != int64(len(body)) {
		t.Fatalf("NXCloud got %+v; want %d bytes with sha256 %s", ups, len(body), o.sha256)
	}
}

// rotatingCreds serves stale credentials until refreshed, as the secret
// cache does right after a rotation.
type rotatingCreds struct {
	mu         sync.Mutex
	cur, fresh nxcloud.Credentials
}

func (r *rotatingCreds) Retrieve(context.Context) (nxcloud.Credentials, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur, nil
}

func (r *rotatingCreds) Refresh(context.Context) (nxcloud.Credentials, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cur = r.fresh
	return r.cur, nil
}

// TestRotatedSecretReopensBody: NXCloud refuses the old key, the client
// refreshes and, the secret having changed, sends again with a body GetBody
// reopened from the same version. An unchanged secret is not sent twice.
func TestRotatedSecretReopensBody(t *testing.T) {
	t.Parallel()
	t.Run("changed", func(t *testing.T) {
		t.Parallel()
		creds := &rotatingCreds{cur: nxcloud.Credentials{AccessKey: "old-key", AccessSecret: "old-secret"}}
		e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone}, creds: creds})
		creds.fresh = e.nx.Credentials()
		o := e.put("templates/menu.pdf", pdf)
		e.handle(e.event(record{obj: o}))
		calls := e.nx.Calls(nxcloud.ActionUploadTemplateFile)
		ups := e.nx.Uploads()
		if len(calls) != 2 || calls[0].Code < 1000 || calls[0].Code > 1099 || len(ups) != 1 || ups[0].SHA256 != o.sha256 {
			t.Fatalf("calls %d (first code %d), uploads %+v; want an auth refusal then the whole file", len(calls), calls[0].Code, ups)
		}
	})
	t.Run("unchanged", func(t *testing.T) {
		t.Parallel()
		wrong := nxcloud.Credentials{AccessKey: "wrong-key", AccessSecret: "wrong-secret"}
		e := newEnv(t, envOptions{cfg: upload.Config{DefaultBusinessPhone: phone}, creds: &rotatingCreds{cur: wrong, fresh: wrong}})
		o := e.put("templates/menu.pdf", pdf)
		if err := e.h.HandleEvent(context.Background(), e.event(record{obj: o})); err == nil {
			t.Fatal("Handle = nil; want the authentication error (transient: the secret may be fixed)")
		}
		if n := e.uploadCalls(); n != 1 {
			t.Fatalf("NXCloud calls = %d; want 1: the same credentials are not sent the whole file again", n)
		}
	})
}

// TestLargeObjectFlatMemory streams a 200 MiB object from MinIO to the local
// NXCloud through the handler and measures the process's peak resident
// memory during the handler run (VmHWM after resetting it, Linux) and the
// peak Go heap, with the SDK validating the object's CRC64NVME checksum on
// the fly. The whole file never sits in memory: the target is under
// 64 MiB more than before the run.
func TestLargeObjectFlatMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("200 MiB upload: skipped with -short")
	}
	const size = 200 << 20
	const limit = 64 << 20
	rec := &checksumRecorder{}
	e := newEnv(t, envOptions{
		cfg:    upload.Config{DefaultBusinessPhone: phone, MaxUploadBytes: 256 << 20},
		wrapS3: func(api upload.S3API) upload.S3API { rec.S3API = api; return rec },
	})

	// A 200 MiB file of pseudo-random bytes, hashed while written.
	path := filepath.Join(t.TempDir(), "big.mp4")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	rng := rand.NewChaCha8([32]byte{1, 2, 3})
	if _, err := io.CopyN(io.MultiWriter(f, h), rng, size); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%x", h.Sum(nil))
	putStart := time.Now()
	out, err := e.s3.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(e.bucket), Key: aws.String("templates/big.mp4"), Body: f,
		ContentLength: aws.Int64(size), ContentType: aws.String("video/mp4"),
		// Stored with a full-object checksum, as S3 does by default, so that
		// the SDK validates the GetObject stream while it flows to NXCloud.
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc64nvme,
	})
	_ = f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("put 200 MiB into MinIO in %v", time.Since(putStart).Round(time.Millisecond))
	head, err := e.s3.HeadObject(context.Background(), &s3.HeadObjectInput{
		Bucket: aws.String(e.bucket), Key: aws.String("templates/big.mp4"), ChecksumMode: types.ChecksumModeEnabled,
	})
	if err != nil || aws.ToString(head.ChecksumCRC64NVME) == "" {
		t.Fatalf("MinIO keeps no CRC64NVME checksum of the object (%v): the stream would not be validated", err)
	}
	o := object{key: "templates/big.mp4", version: aws.ToString(out.VersionId), etag: strings.Trim(aws.ToString(out.ETag), `"`), size: size}

	runtime.GC()
	debug.FreeOSMemory()
	baseRSS, rssOK := procStatus("VmRSS")
	hwmReset := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil

	var peakHeap uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var ms runtime.MemStats
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peakHeap = max(peakHeap, ms.HeapInuse)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	start := time.Now()
	e.handle(e.event(record{obj: o}))
	took := time.Since(start)
	close(stop)
	wg.Wait()
	hwm, hwmOK := procStatus("VmHWM")

	ups := e.nx.Uploads()
	if len(ups) != 1 || ups[0].Size != size || ups[0].SHA256 != want {
		t.Fatalf("NXCloud got %+v; want %d bytes with sha256 %s", ups, size, want)
	}
	t.Logf("handler streamed 200 MiB in %v (%.0f MiB/s); peak Go heap in use %.1f MiB",
		took.Round(time.Millisecond), float64(size)/(1<<20)/took.Seconds(), float64(peakHeap)/(1<<20))
	if peakHeap > limit {
		t.Errorf("peak Go heap %d MiB; want under %d MiB: the object is being buffered", peakHeap>>20, limit>>20)
	}
	if rssOK && hwmOK && hwmReset {
		grew := int64(hwm) - int64(baseRSS)
		t.Logf("resident memory: %.1f MiB before, peak %.1f MiB during the run (+%.1f MiB)",
			float64(baseRSS)/(1<<20), float64(hwm)/(1<<20), float64(grew)/(1<<20))
		if grew > limit {
			t.Errorf("peak resident memory grew by %d MiB; want under %d MiB", grew>>20, limit>>20)
		}
	} else {
		t.Log("resident memory not measured: /proc/self/status or clear_refs unavailable")
	}
	if rec.checksum() == "" {
		t.Error("the handler's GetObject carried no checksum: the stream was not validated")
	}
	if tags := e.tags(o); tags[ledger.TagMediaID] != ups[0].ID {
		t.Errorf("tags = %v; want the media id", tags)
	}
}

// procStatus reads a "Vm..." line of /proc/self/status, in bytes.
func procStatus(field string) (uint64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return 0, false
		}
		kb, err := strconv.ParseUint(fields[0], 10, 64)
		return kb << 10, err == nil
	}
	return 0, false
}

// checksumRecorder notes the CRC64NVME checksum of the objects GetObject
// returns (the SDK validates the body against it when it is present).
type checksumRecorder struct {
	upload.S3API
	mu  sync.Mutex
	sum string
}

func (c *checksumRecorder) GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	out, err := c.S3API.GetObject(ctx, in, optFns...)
	if err == nil && strings.HasPrefix(aws.ToString(in.Key), "templates/") {
		c.mu.Lock()
		c.sum = aws.ToString(out.ChecksumCRC64NVME)
		c.mu.Unlock()
	}
	return out, err
}

func (c *checksumRecorder) checksum() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sum
}
