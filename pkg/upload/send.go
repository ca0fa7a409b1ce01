package upload

import (
	"context"
	"errors"
	"io"
	"path"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/ledger"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

// stream is the GetObject of the version to send, started beside the
// claim: opening the stream sends nothing to NXCloud, and its first bytes
// are there when the claim is, in the common case of a version no other
// delivery holds. It is opened only once the rules accepted the version: a
// rejected object's body is never opened.
type stream struct {
	ready  chan struct{}
	body   io.ReadCloser
	err    error
	opened time.Time
	taken  bool
}

// maxIdleStream is how long an opened stream may wait unread for its claim
// before it is opened again (S3 drops a connection that stalls for long).
const maxIdleStream = 5 * time.Second

// openStream starts the GetObject of v.
func (p *Pipeline) openStream(ctx context.Context, v *version) *stream {
	s := &stream{ready: make(chan struct{}), opened: p.cfg.Clock()}
	go func() {
		defer close(s.ready)
		out, err := p.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(v.Bucket), Key: aws.String(v.Key), VersionId: aws.String(v.VersionID)})
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

// discard closes a stream that was not sent.
func (s *stream) discard() {
	if s.taken {
		return
	}
	go func() {
		if body, _ := s.wait(); body != nil {
			_ = body.Close()
		}
	}()
}

// send streams the version v to d while the claim c is held, and returns
// the media id NXCloud answered. A permanent rejection by NXCloud (9000,
// 9002, 9006, or input it cannot take) is returned as a Rejected ending;
// anything else is a transient error (ErrLeaseLost when the claim could no
// longer be proven: the send was cancelled at that moment).
func (p *Pipeline) send(ctx context.Context, d *Destination, v *version, c *ledger.Claim, s *stream) (string, error) {
	ctx, stop := c.Hold(ctx)
	defer stop()
	if p.cfg.Clock().Sub(s.opened) > maxIdleStream {
		s.discard()
		s.taken = true
		s = p.openStream(ctx, v)
	}
	s.taken = true
	body, err := s.wait()
	switch {
	case err != nil && ledger.IsNotFound(err):
		return "", end(Skipped, "object version no longer exists")
	case err != nil:
		return "", ledger.S3Err("get object", "s3:GetObject and s3:GetObjectVersion on the object", err)
	}
	defer func() { _ = body.Close() }()
	// A read of the file stalled on S3 must not keep the send alive past
	// the lease: the transport only lets go of the request once the body's
	// Read returns, so the body is closed the moment the claim is lost.
	defer context.AfterFunc(ctx, func() { _ = body.Close() })()

	id, err := d.Send(ctx, nxcloud.UploadInput{
		BusinessPhone: v.phone,
		Type:          v.typ,
		FileName:      path.Base(v.Key),
		Size:          v.size,
		Body:          body,
		GetBody:       func(ctx context.Context) (io.ReadCloser, error) { return p.openStream(ctx, v).wait() },
	})
	if err == nil {
		return id, nil
	}
	if cause := context.Cause(ctx); errors.Is(cause, ledger.ErrLeaseLost) {
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
