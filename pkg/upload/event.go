package upload

import (
	"context"
	"errors"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/ledger"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

// HandleEvent is the Lambda handler of an upload function: it decodes the
// records of an S3 event into object versions and uploads each in order.
// Records that are not ObjectCreated are skipped (logged); versions gone,
// superseded, already decided or permanently rejected end without error.
// If any version failed transiently, HandleEvent returns an error, so that
// Lambda retries the event (the versions with a verdict are skipped by the
// retry); its errorType names the failure class (FailureType). An event
// without records (the s3:TestEvent S3 sends when notifications are
// configured) is a no-op.
func (p *Pipeline) HandleEvent(ctx context.Context, ev events.S3Event) error {
	if len(ev.Records) == 0 {
		p.log.InfoContext(ctx, "event without records ignored (s3:TestEvent or empty event)")
		return nil
	}
	var errs []error
	for i := range ev.Records {
		obj, why := decode(&ev.Records[i])
		if why != "" {
			p.log.InfoContext(ctx, "record skipped", "outcome", string(Skipped), "reason", why,
				"bucket", obj.Bucket, "key", ev.Records[i].S3.Object.Key, "event", ev.Records[i].EventName)
			continue
		}
		if r := p.Upload(ctx, obj); r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return messages.InvokeResponse_Error{Type: FailureType(errs[0]), Message: errors.Join(errs...).Error()}
}

// decode returns the object version a record announces, or why the record
// is not for an upload function.
func decode(rec *events.S3EventRecord) (Object, string) {
	obj := Object{Bucket: rec.S3.Bucket.Name, VersionID: rec.S3.Object.VersionID}
	key, err := DecodeKey(rec.S3.Object.Key)
	if err != nil {
		return obj, err.Error()
	}
	obj.Key = key
	if name := strings.TrimPrefix(rec.EventName, "s3:"); name != "" && !strings.HasPrefix(name, "ObjectCreated:") {
		return obj, "event " + rec.EventName + " is not ObjectCreated"
	}
	return obj, ""
}

// FailureType names the class of a transient failure, as the errorType of
// the invocation (what Lambda's on-failure destination records): one of
// SecretNotConfigured, SecretUnavailable, NXCloudAuthFailed, NXCloudFailed,
// NXCloudUnavailable, S3AccessDenied, S3Throttled, S3Unavailable,
// VersioningDisabled, ClaimHeld, LeaseLost.
func FailureType(err error) string {
	var s3e *ledger.S3Error
	var cred *nxcloud.CredentialsError
	var nov *errNoVersions
	switch {
	case errors.Is(err, ledger.ErrClaimHeld):
		return "ClaimHeld"
	case errors.Is(err, ledger.ErrLeaseLost):
		return "LeaseLost"
	case errors.As(err, &nov):
		return "VersioningDisabled"
	case errors.As(err, &cred) && errors.Is(err, nxcloud.ErrNotConfigured):
		return "SecretNotConfigured"
	case errors.As(err, &cred):
		return "SecretUnavailable"
	case errors.As(err, &s3e) && s3e.AccessDenied():
		return "S3AccessDenied"
	case errors.As(err, &s3e) && s3e.Throttled():
		return "S3Throttled"
	case errors.As(err, &s3e):
		return "S3Unavailable"
	}
	if ae, ok := nxcloud.AsAPIError(err); ok {
		if ae.IsAuth() {
			return "NXCloudAuthFailed"
		}
		return "NXCloudFailed"
	}
	return "NXCloudUnavailable"
}
