package upload

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/ledger"
)

// version is the object version an upload is about, as HeadObject described
// it, and what the rules made of it.
type version struct {
	ledger.Object
	size        int64
	contentType string
	metadata    map[string]string
	tagCount    int32
	record      *ledger.Record // the verdict already made for this version, if any

	phone, typ string // set by rules
}

// errNoVersions refuses a bucket that does not keep versions.
type errNoVersions struct{ bucket string }

func (e *errNoVersions) Error() string {
	return fmt.Sprintf("the object has no version id of its own: bucket %s does not keep versions (or kept none when the object was stored), "+
		"and without versions the upload cannot tell which content an event is for: enable versioning "+
		"(aws s3api put-bucket-versioning --bucket %s --versioning-configuration Status=Enabled) and store the object again", e.bucket, e.bucket)
}

// pin fixes the version to send: obj's, or the current one when obj names
// none. HeadObject of the current object tells both whether the bucket keeps
// versions and whether obj's version is still current; the version's record
// is read meanwhile (or after, for obj without a version).
func (p *Pipeline) pin(ctx context.Context, obj Object) (*version, error) {
	v := &version{Object: obj}
	var rec *ledger.Record
	var recErr error
	read := make(chan struct{})
	if v.VersionID == "" {
		close(read)
	} else {
		go func() {
			defer close(read)
			rec, recErr = p.ledger.Record(ctx, v.Object)
		}()
	}
	head, err := p.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(obj.Bucket), Key: aws.String(obj.Key)})
	<-read
	switch {
	case err != nil && ledger.IsNotFound(err):
		return nil, end(Skipped, "object no longer exists")
	case err != nil:
		return nil, ledger.S3Err("head object", "s3:GetObject on the object", err)
	}
	current := aws.ToString(head.VersionId)
	if current == "" || current == "null" {
		return nil, &errNoVersions{bucket: obj.Bucket}
	}
	if v.VersionID == "" {
		v.VersionID = current // e.g. an event from `sam local generate-event s3 put`
		rec, recErr = p.ledger.Record(ctx, v.Object)
	}
	if recErr != nil {
		return nil, recErr
	}
	if rec != nil {
		// A verdict made for this version stands, current or not (an
		// upload before an overwrite).
		v.record = rec
		return v, nil
	}
	if v.VersionID != current {
		// The newer version has its own event. The note is for people: it
		// decides nothing, so the version is sent if it becomes current
		// again.
		reason := "overwritten since the event: the current version is " + current
		if err := p.ledger.MarkSuperseded(ctx, v.Object, reason); err != nil && !ledger.IsNotFound(err) {
			p.log.WarnContext(ctx, "superseded version not tagged", "bucket", v.Bucket, "key", v.Key, "version", v.VersionID, "error", err)
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
	return v, nil
}

// rules decides the merchant phone and the NXCloud type of v and checks its
// size, from its metadata alone: a problem is a permanent rejection, found
// before any byte is read.
func (p *Pipeline) rules(d *Destination, v *version) error {
	phone, why := phoneFor(v.metadata, v.Key, d.Prefix, p.cfg.DefaultBusinessPhone)
	v.phone = phone
	if why != "" {
		return end(Rejected, "%s", why)
	}
	ft, why := typeFor(d.Types, v.contentType, v.Key)
	v.typ = ft.MediaType
	if why != "" {
		return end(Rejected, "%s", why)
	}
	if v.size > p.cfg.MaxUploadBytes {
		return end(Rejected, "size %d bytes exceeds MAX_UPLOAD_BYTES %d", v.size, p.cfg.MaxUploadBytes)
	}
	if ft.MaxBytes > 0 && v.size > ft.MaxBytes {
		return end(Rejected, "size %d bytes exceeds the %d bytes NXCloud takes for %s (%s)", v.size, ft.MaxBytes, ft.Kind, ft.MediaType)
	}
	return nil
}

// SessionFolder is where upload sessions put their files, below a
// destination's prefix: <prefix>uploads/<upload id>/<file name>.
const SessionFolder = "uploads/"

// isSessionFile reports whether key is the file of an upload session.
func isSessionFile(d *Destination, key string) bool {
	rest, ok := strings.CutPrefix(key, d.Prefix+SessionFolder)
	return ok && strings.Count(rest, "/") == 1
}

// bind makes sure v is the first version of its session's key: one session
// is one file, and a later version is rejected, never sent.
func (p *Pipeline) bind(ctx context.Context, v *version) error {
	first, err := p.ledger.Bind(ctx, v.Object)
	switch {
	case err != nil:
		return err
	case first != v.VersionID:
		return end(Rejected, "upload session already used: its first file (version %s) decided it; create a new session with POST /uploads for another file", first)
	}
	return nil
}
