package upload

import (
	"context"
	"errors"
	"io"
	"path"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

// stream is the GetObject of the version to send, started before the claim
// is ours: opening the stream sends nothing to NXCloud, and its first bytes
// are there when the claim is, in the common case of a version no other
// delivery holds.
type stream struct {
	ready  chan struct{}
	body   io.ReadCloser
	err    error
	opened time.Time
}

// maxIdleStream is how long an opened stream may wait unread for its claim
// before it is opened again (S3 drops a connection that stalls for long).
const maxIdleStream = 5 * time.Second

// openStream starts the GetObject of v.
func (h *Handler) openStream(ctx context.Context, v *version) *stream {
	s := &stream{ready: make(chan struct{}), opened: h.now()}
	go func() {
		defer close(s.ready)
		out, err := h.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(v.bucket), Key: aws.String(v.key), VersionId: aws.String(v.id)})
		if err == nil {
			s.body = out.Body
		}
		s.err = err
	}()
	return s
}

// wait returns the stream's body once it is open.
func (s *stream) wait() (io.ReadCloser, error) {
	<-s.ready
	return s.body, s.err
}

// discard closes a stream that will not be sent.
func (s *stream) discard() {
	go func() {
		if body, _ := s.wait(); body != nil {
			body.Close()
		}
	}()
}

// send streams the version v to NXCloud while our claim c is held, and
// returns the media id NXCloud answered. A permanent rejection by NXCloud
// (9000, 9002, 9006, or input it cannot take) is returned as a Rejected
// ending; anything else is a transient error.
func (h *Handler) send(ctx context.Context, v *version, c *claim, s *stream) (string, error) {
	ctx, stop := h.hold(ctx, c)
	defer stop()
	if h.now().Sub(s.opened) > maxIdleStream {
		s.discard()
		s = h.openStream(ctx, v)
	}
	open := func(ctx context.Context) (io.ReadCloser, error) { return h.openStream(ctx, v).wait() }
	body, err := s.wait()
	switch {
	case err != nil && IsNotFound(err):
		return "", end(Skipped, "object version no longer exists")
	case err != nil:
		return "", s3Error("get object", "s3:GetObject and s3:GetObjectVersion", err)
	}
	defer body.Close()

	id, err := h.up.UploadTemplateFile(ctx, nxcloud.UploadInput{
		BusinessPhone: v.phone,
		Type:          v.typ,
		FileName:      path.Base(v.key),
		Size:          v.size,
		Body:          body,
		GetBody:       open,
	})
	if err == nil {
		return id, nil
	}
	if cause := context.Cause(ctx); errors.Is(cause, errLeaseLost) {
		return "", cause
	}
	if apiErr, ok := nxcloud.AsAPIError(err); ok && apiErr.IsPermanent() {
		return "", end(Rejected, "nxcloud code %d: %s", apiErr.Code, apiErr.Message)
	}
	if errors.Is(err, nxcloud.ErrInvalidInput) {
		return "", end(Rejected, "%s", err.Error())
	}
	return "", err
}

// isRejection reports a Rejected ending.
func isRejection(err error) bool {
	var e *ending
	return errors.As(err, &e) && e.outcome == Rejected
}
