package upload

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// version is the object version a record is about, as HeadObject described
// it, and what the rules made of it.
type version struct {
	bucket, key, id string
	size            int64
	contentType     string
	metadata        map[string]string
	tagCount        int32
	record          *Record // the verdict already made for this version, if any

	phone, typ string // set by rules
}

// decode returns the object key of rec, or ends the record when it is not
// for this function.
func (h *Handler) decode(rec *events.S3EventRecord) (string, error) {
	key, err := DecodeKey(rec.S3.Object.Key)
	if err != nil {
		return "", end(Skipped, "%s", tagSafe(err.Error()))
	}
	name := strings.TrimPrefix(rec.EventName, "s3:")
	switch {
	case name != "" && !strings.HasPrefix(name, "ObjectCreated:"):
		return "", end(Skipped, "event %s is not ObjectCreated", rec.EventName)
	case rec.S3.Bucket.Name == "":
		return "", end(Skipped, "the record names no bucket")
	case !strings.HasPrefix(key, h.cfg.Prefix) || strings.HasPrefix(key, ClaimPrefix) || strings.HasPrefix(key, RecordPrefix):
		return "", end(Skipped, "key outside prefix %s", h.cfg.Prefix)
	case strings.HasSuffix(key, "/"):
		return "", end(Skipped, "folder marker")
	}
	return key, nil
}

// pin fixes the version to send: the one the event names (eventVersion), or
// the current one when the event names none. HeadObject of the current
// object tells both whether the bucket keeps versions and whether the
// event's version is still current; the version's record is read meanwhile
// (or after, for an event that names no version).
func (h *Handler) pin(ctx context.Context, bucket, key, eventVersion string) (*version, error) {
	v := &version{bucket: bucket, key: key, id: eventVersion}
	var rec *Record
	var recErr error
	read := make(chan struct{})
	if v.id == "" {
		close(read)
	} else {
		go func() {
			defer close(read)
			rec, recErr = h.readRecord(ctx, v)
		}()
	}
	head, err := h.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	<-read
	switch {
	case err != nil && IsNotFound(err):
		return nil, end(Skipped, "object no longer exists")
	case err != nil:
		return nil, s3Error("head object", "s3:GetObject", err)
	}
	current := aws.ToString(head.VersionId)
	if current == "" || current == "null" {
		return nil, fmt.Errorf("the object has no version id of its own: bucket %s does not keep versions (or kept none when the object was stored), "+
			"and without versions the upload cannot tell which content an event is for: enable versioning "+
			"(aws s3api put-bucket-versioning --bucket %s --versioning-configuration Status=Enabled) and store the object again", bucket, bucket)
	}
	if v.id == "" {
		v.id = current // e.g. an event from `sam local generate-event s3 put`
		rec, recErr = h.readRecord(ctx, v)
	}
	if v.id != current {
		// The newer version has its own event. A verdict already recorded
		// for this version (an upload before the overwrite) stays.
		reason := "overwritten since the event: the current version is " + current
		if err := h.writeRecord(ctx, v, Record{Status: Superseded, Error: reason}, true); err != nil && !isPreconditionFailed(err) {
			h.log.WarnContext(ctx, "superseded verdict not recorded", "bucket", bucket, "key", key, "version", v.id, "error", err)
		}
		return nil, end(Superseded, "%s", reason)
	}
	v.size = aws.ToInt64(head.ContentLength)
	v.contentType = aws.ToString(head.ContentType)
	v.metadata = head.Metadata
	v.tagCount = aws.ToInt32(head.TagCount)
	if v.size == 0 {
		return nil, end(Skipped, "zero-byte object")
	}
	v.record = rec
	return v, recErr
}

// rules decides the merchant phone and the NXCloud type of v and checks its
// size; a problem is a permanent rejection, found before any byte is sent.
func (h *Handler) rules(v *version) error {
	phone, why := phoneFor(v.metadata, v.key, h.cfg.Prefix, h.cfg.DefaultBusinessPhone)
	v.phone = phone
	if why != "" {
		return end(Rejected, "%s", why)
	}
	typ, why := typeFor(v.contentType, v.key)
	v.typ = typ
	if why != "" {
		return end(Rejected, "%s", why)
	}
	if v.size > h.cfg.MaxUploadBytes {
		return end(Rejected, "size %d bytes exceeds MAX_UPLOAD_BYTES %d", v.size, h.cfg.MaxUploadBytes)
	}
	return nil
}
