package upload

import (
	"context"
	"errors"
	"io"
	"path"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

// send streams the version v to NXCloud while our claim c is held, and
// returns the media id NXCloud answered. A permanent rejection by NXCloud
// (9000, 9002, 9006, or input it cannot take) is returned as a Rejected
// ending; anything else is a transient error.
func (h *Handler) send(ctx context.Context, v *version, c *claim) (string, error) {
	ctx, stop := h.hold(ctx, c)
	defer stop()
	open := func(ctx context.Context) (io.ReadCloser, error) {
		out, err := h.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(v.bucket), Key: aws.String(v.key), VersionId: aws.String(v.id)})
		if err != nil {
			return nil, err
		}
		return out.Body, nil
	}
	body, err := open(ctx)
	switch {
	case err != nil && isNotFound(err):
		return "", end(Skipped, "object version no longer exists")
	case err != nil:
		return "", s3Error("get object", "s3:GetObject and s3:GetObjectVersion", err)
	}
	defer body.Close()

	id, err := h.up.UploadTemplateFile(ctx, nxcloud.UploadTemplateFileInput{
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
