package upload_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/ledger"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/upload"
)

// FuzzKeyRoundTrip checks that DecodeKey inverts EncodeKey for any key, and
// that a raw key DecodeKey accepts decodes to a key that round-trips.
func FuzzKeyRoundTrip(f *testing.F) {
	for _, k := range []string{"templates/menu.pdf", "templates/8615812341795/a b+c%.pdf", "templates/ü/菜单.pdf",
		"a%2Fb", "%", "+", "%zz", "templates/\x00\r\n.pdf", "templates//x/", "\xff"} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := upload.DecodeKey(upload.EncodeKey(s))
		if err != nil || got != s {
			t.Fatalf("DecodeKey(EncodeKey(%q)) = %q, %v", s, got, err)
		}
		if dec, err := upload.DecodeKey(s); err == nil {
			if again, err := upload.DecodeKey(upload.EncodeKey(dec)); err != nil || again != dec {
				t.Fatalf("decoded key %q does not round-trip: %q, %v", dec, again, err)
			}
		} else if err.Error() == "" {
			t.Fatalf("DecodeKey(%q) failed with an empty message", s)
		}
	})
}

// fzObject is one object version of fzS3.
type fzObject struct {
	body        []byte
	etag        string
	version     string
	contentType string
	metadata    map[string]string
	tags        []types.Tag
	modified    time.Time
}

// fzS3 is an in-memory S3 bucket space with versions (or none, when
// unversioned) and conditional writes, enough for the upload pipeline.
type fzS3 struct {
	mu          sync.Mutex
	objects     map[string][]*fzObject // bucket + "\x00" + key: its versions, the current one last
	n           int
	unversioned bool
}

func newFzS3() *fzS3 { return &fzS3{objects: map[string][]*fzObject{}} }

func fzErr(code string) error { return &smithy.GenericAPIError{Code: code, Message: code} }

func fzID(bucket, key *string) string { return aws.ToString(bucket) + "\x00" + aws.ToString(key) }

func (s *fzS3) put(bucket, key string, body []byte, contentType string, md map[string]string) *fzObject {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.putLocked(bucket+"\x00"+key, body, contentType, md)
}

func (s *fzS3) putLocked(id string, body []byte, contentType string, md map[string]string) *fzObject {
	s.n++
	sum := sha256.Sum256(append([]byte(fmt.Sprint(s.n)), body...))
	o := &fzObject{body: body, etag: `"` + hex.EncodeToString(sum[:16]) + `"`, contentType: contentType, metadata: md, modified: time.Now()}
	if s.unversioned {
		s.objects[id] = []*fzObject{o}
	} else {
		o.version = fmt.Sprintf("v%d", s.n)
		s.objects[id] = append(s.objects[id], o)
	}
	return o
}

// lookup finds a version: the current one when version is nil.
func (s *fzS3) lookup(bucket, key *string, version *string) (*fzObject, error) {
	vs := s.objects[fzID(bucket, key)]
	if len(vs) == 0 {
		return nil, fzErr("NoSuchKey")
	}
	if version == nil {
		return vs[len(vs)-1], nil
	}
	for _, o := range vs {
		if o.version == *version {
			return o, nil
		}
	}
	return nil, fzErr("NoSuchVersion")
}

func (s *fzS3) HeadObject(_ context.Context, in *s3.HeadObjectInput, _ ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.lookup(in.Bucket, in.Key, in.VersionId)
	if err != nil {
		return nil, fzErr("NotFound")
	}
	out := &s3.HeadObjectOutput{ContentLength: aws.Int64(int64(len(o.body))), ETag: aws.String(o.etag),
		ContentType: aws.String(o.contentType), Metadata: o.metadata, TagCount: aws.Int32(int32(len(o.tags)))}
	if o.version != "" {
		out.VersionId = aws.String(o.version)
	}
	return out, nil
}

func (s *fzS3) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.lookup(in.Bucket, in.Key, in.VersionId)
	if err != nil {
		return nil, err
	}
	return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(o.body)), ContentLength: aws.Int64(int64(len(o.body))),
		ETag: aws.String(o.etag), VersionId: aws.String(o.version), LastModified: aws.Time(o.modified)}, nil
}

func (s *fzS3) GetObjectTagging(_ context.Context, in *s3.GetObjectTaggingInput, _ ...func(*s3.Options)) (*s3.GetObjectTaggingOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.lookup(in.Bucket, in.Key, in.VersionId)
	if err != nil {
		return nil, err
	}
	return &s3.GetObjectTaggingOutput{TagSet: append([]types.Tag(nil), o.tags...)}, nil
}

func (s *fzS3) PutObjectTagging(_ context.Context, in *s3.PutObjectTaggingInput, _ ...func(*s3.Options)) (*s3.PutObjectTaggingOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.lookup(in.Bucket, in.Key, in.VersionId)
	if err != nil {
		return nil, err
	}
	if len(in.Tagging.TagSet) > 10 {
		return nil, fzErr("BadRequest")
	}
	for _, tg := range in.Tagging.TagSet {
		if v := aws.ToString(tg.Value); len([]rune(v)) > 256 || !fzTagValueRE.MatchString(v) {
			return nil, fzErr("InvalidTag")
		}
	}
	o.tags = append([]types.Tag(nil), in.Tagging.TagSet...)
	return &s3.PutObjectTaggingOutput{}, nil
}

// fzTagValueRE is what S3 accepts in a tag value.
var fzTagValueRE = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)

func (s *fzS3) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	body, err := io.ReadAll(in.Body)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, _ := s.lookup(in.Bucket, in.Key, nil)
	switch {
	case in.IfNoneMatch != nil && cur != nil:
		return nil, fzErr("PreconditionFailed")
	case in.IfMatch != nil && (cur == nil || *in.IfMatch != cur.etag):
		return nil, fzErr("PreconditionFailed")
	}
	o := s.putLocked(fzID(in.Bucket, in.Key), body, aws.ToString(in.ContentType), in.Metadata)
	return &s3.PutObjectOutput{ETag: aws.String(o.etag), VersionId: aws.String(o.version)}, nil
}

func (s *fzS3) DeleteObject(_ context.Context, in *s3.DeleteObjectInput, _ ...func(*s3.Options)) (*s3.DeleteObjectOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := fzID(in.Bucket, in.Key)
	if in.VersionId == nil {
		delete(s.objects, id)
		return &s3.DeleteObjectOutput{}, nil
	}
	s.objects[id] = slices.DeleteFunc(s.objects[id], func(o *fzObject) bool { return o.version == *in.VersionId })
	if len(s.objects[id]) == 0 {
		delete(s.objects, id)
	}
	return &s3.DeleteObjectOutput{}, nil
}

// keys lists the keys under prefix that have a current version.
func (s *fzS3) ListObjectsV2(_ context.Context, in *s3.ListObjectsV2Input, _ ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	out := &s3.ListObjectsV2Output{}
	for _, k := range s.keys(aws.ToString(in.Bucket), aws.ToString(in.Prefix)) {
		out.Contents = append(out.Contents, types.Object{Key: aws.String(k)})
	}
	return out, nil
}

func (s *fzS3) keys(bucket, prefix string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.objects {
		if b, key, _ := strings.Cut(k, "\x00"); b == bucket && strings.HasPrefix(key, prefix) {
			out = append(out, key)
		}
	}
	return out
}

// fzUploader is an Uploader that reads the whole body and answers an id or
// the error the fuzzer chose.
type fzUploader struct {
	outcome byte
	mu      sync.Mutex
	calls   []nxcloud.UploadInput
	ids     []string
}

var fzUploadErrors = []error{
	nil,
	&nxcloud.APIError{Action: nxcloud.ActionUploadTemplateFile, Code: 9002, Message: "Merchant phone number error"},
	&nxcloud.APIError{Action: nxcloud.ActionUploadTemplateFile, Code: 9000, Message: "Parameter exception \x00\r\n\"quoted\""},
	&nxcloud.ResponseError{Action: nxcloud.ActionUploadTemplateFile, HTTPStatus: 503, Reason: "unexpected HTTP status"},
	fmt.Errorf("nxcloud uploadTemplateFile: %w", nxcloud.ErrTimeout),
	&nxcloud.CredentialsError{Err: errors.New("secrets manager unavailable")},
	&nxcloud.APIError{Action: nxcloud.ActionUploadTemplateFile, Code: 1001, Message: "Authentication failed"},
}

func (u *fzUploader) UploadTemplateFile(_ context.Context, in nxcloud.UploadInput) (string, error) {
	b, err := io.ReadAll(in.Body)
	if err != nil {
		return "", err
	}
	if int64(len(b)) != in.Size {
		return "", fmt.Errorf("body has %d bytes, Size says %d", len(b), in.Size)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.calls = append(u.calls, in)
	if err := fzUploadErrors[int(u.outcome)%len(fzUploadErrors)]; err != nil {
		return "", err
	}
	mid := fmt.Sprintf("4:fuzz-%d", len(u.ids))
	u.ids = append(u.ids, mid)
	return mid, nil
}

var fzPhoneRE = regexp.MustCompile(`^[0-9]{5,20}$`)

// FuzzHandleRecords runs the handler on events whose records carry arbitrary
// raw keys, event names and object properties, against an in-memory S3 and
// a fake NXCloud. It never panics; it sends only objects under the prefix
// (never folders, claims, empty or oversize objects) with a valid phone and
// an accepted type; a second delivery of the same event sends nothing new;
// an uploaded tag always carries an id NXCloud answered and the record holds
// it; a claim is left only with a verdict; nothing is sent from an
// unversioned bucket.
func FuzzHandleRecords(f *testing.F) {
	f.Add("templates/8615812341795/menu.pdf", "templates%2F8615812341795%2Fmenu.pdf", "templates/x/", "ObjectCreated:Put", "application/pdf", "", uint16(100), byte(0), byte(0))
	f.Add("templates/a b+c.png", "templates/a+b%2Bc.png", "nxcloud-claims/templates/a", "s3:ObjectCreated:Copy", "image/png; charset=x", "8615812341795", uint16(1), byte(1), byte(1))
	f.Add("templates/菜单.JPG", "%zz", "templates/%E8%8F%9C%E5%8D%95.JPG", "ObjectRemoved:Delete", "", "12", uint16(0), byte(2), byte(2))
	f.Add("templates/12345/clip.mp4", "templates/12345/clip.mp4", "templates/12345/clip.mp4", "", "video/mp4", " 8615812341795 ", uint16(4096), byte(3), byte(3))
	f.Add("other/menu.pdf", "", "templates/\x00\r\n\".pdf", "ObjectCreated:*", "text/plain", "+8615812341795", uint16(2000), byte(4), byte(4))
	f.Add("templates/a.pdf", "templates/a.pdf", "templates/a.pdf", "ObjectCreated:Put", "application/pdf", "8615812341795", uint16(50), byte(5), byte(5))
	f.Add("templates/a.pdf", "templates/a.pdf", "templates/b.pdf", "ObjectCreated:Put", "application/pdf", "8615812341795", uint16(50), byte(6), byte(6))

	f.Fuzz(func(t *testing.T, key, raw1, raw2, eventName, contentType, mdPhone string, size uint16, outcome, flags byte) {
		const bucket, maxBytes = "fuzz-bucket", 3000
		st := newFzS3()
		st.unversioned = flags&16 != 0
		var md map[string]string
		if mdPhone != "" {
			md = map[string]string{"business-phone": mdPhone}
		}
		body := bytes.Repeat([]byte{'x'}, int(size))
		obj := st.put(bucket, key, body, contentType, md)
		version := obj.version
		if flags&2 != 0 {
			version = "" // as sam local generate-event writes it
		}
		rec := func(rawKey string) events.S3EventRecord {
			r := events.S3EventRecord{EventName: eventName, EventSource: "aws:s3"}
			r.S3.Bucket.Name = bucket
			r.S3.Object = events.S3Object{Key: rawKey, Size: int64(size), ETag: obj.etag, VersionID: version}
			return r
		}
		ev := events.S3Event{Records: []events.S3EventRecord{rec(upload.EncodeKey(key)), rec(raw1), rec(raw2), rec(upload.EncodeKey(key))}}
		if flags&4 != 0 {
			ev.Records[1].S3.Bucket.Name = ""
		}

		up := &fzUploader{outcome: outcome}
		cfg := upload.Config{
			MaxUploadBytes: maxBytes,
			ClaimWait:      10 * time.Millisecond,
		}
		if flags&8 != 0 {
			cfg.DefaultBusinessPhone = "8613900000001"
		}
		h := upload.New(cfg, st, upload.Destination{Name: upload.TemplateDestination, Prefix: "templates/", Types: nxcloud.TemplateFileTypes, Send: up.UploadTemplateFile})

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		err1 := h.HandleEvent(ctx, ev)
		calls1, ids1 := len(up.calls), len(up.ids)
		err2 := h.HandleEvent(ctx, ev)
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("two deliveries took %v (errors %v, %v)", d, err1, err2)
		}

		up.mu.Lock()
		defer up.mu.Unlock()
		if st.unversioned && len(up.calls) > 0 {
			t.Fatalf("sent %d times from a bucket without versioning", len(up.calls))
		}
		for _, c := range up.calls {
			switch {
			case !strings.HasPrefix(key, "templates/") || strings.HasSuffix(key, "/"):
				t.Fatalf("sent an object outside the prefix or a folder: key %q", key)
			case c.Size == 0 || c.Size > maxBytes:
				t.Fatalf("sent %d bytes (max %d, zero-byte objects are skipped)", c.Size, maxBytes)
			case !fzPhoneRE.MatchString(c.BusinessPhone):
				t.Fatalf("sent with the phone %q", c.BusinessPhone)
			case !slices.ContainsFunc(nxcloud.TemplateFileTypes, func(ft nxcloud.FileType) bool { return ft.MediaType == c.Type }):
				t.Fatalf("sent with the type %q", c.Type)
			case c.FileName != path.Base(key):
				t.Fatalf("sent as %q, want the key's base name %q", c.FileName, path.Base(key))
			}
		}
		// Only one object exists: NXCloud stores it at most once, whatever
		// the duplicates in and across deliveries (a failed send may be
		// repeated by a later record), and nothing is sent once it is
		// uploaded.
		if ids1 == 1 && len(up.calls) != calls1 {
			t.Fatalf("the object was sent again after it was uploaded")
		}
		if len(up.ids) > 1 {
			t.Fatalf("one object uploaded %d times", len(up.ids))
		}
		tags := map[string]string{}
		st.mu.Lock()
		if o, _ := st.lookup(aws.String(bucket), aws.String(key), nil); o != nil {
			for _, tg := range o.tags {
				tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
			}
		}
		st.mu.Unlock()
		uploaded := string(upload.Uploaded)
		if tags[ledger.TagStatus] == uploaded && !strings.HasPrefix(key, ledger.ClaimPrefix) && (len(up.ids) != 1 || tags[ledger.TagMediaID] != up.ids[0]) {
			t.Fatalf("tagged uploaded with %q, NXCloud answered %v", tags[ledger.TagMediaID], up.ids)
		}
		if len(up.ids) == 1 {
			if tags[ledger.TagStatus] != uploaded {
				t.Fatalf("NXCloud answered %s but the object is tagged %v", up.ids[0], tags)
			}
			r, err := ledger.New(st, ledger.Config{}).Record(ctx, ledger.Object{Bucket: bucket, Key: key, VersionID: obj.version})
			if err != nil || r == nil || r.Status != ledger.Uploaded || r.MediaID != up.ids[0] {
				t.Fatalf("NXCloud answered %s but the record is %+v (%v)", up.ids[0], r, err)
			}
		}
		if fzUploadErrors[int(outcome)%len(fzUploadErrors)] != nil && len(up.calls) > 0 {
			// A transient failure must be returned (Lambda retries); a
			// permanent one tags the object rejected.
			if tags[ledger.TagStatus] != string(upload.Rejected) && (err1 == nil || err2 == nil) {
				t.Fatalf("NXCloud failed (%v) but Handle returned %v, %v and tagged %v",
					fzUploadErrors[int(outcome)%len(fzUploadErrors)], err1, err2, tags)
			}
		}
		// A claim is released after a transient failure and kept only with
		// a verdict recorded for its version.
		for _, c := range st.keys(bucket, ledger.ClaimPrefix) {
			if c == key {
				continue
			}
			if r, err := ledger.New(st, ledger.Config{}).Record(ctx, ledger.Object{Bucket: bucket, Key: key, VersionID: obj.version}); c != ledger.ClaimKey(key, obj.version) || err != nil || r == nil {
				t.Fatalf("claim %q left behind without a verdict (record %+v, %v)", c, r, err)
			}
		}
	})
}
