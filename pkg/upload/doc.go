// Package upload is the pipeline of UploadTemplateFileFunction: for every
// record of an S3 ObjectCreated event under the upload prefix it streams the
// exact object version the event names to NXCloud's uploadTemplateFile and
// tags the object with the media id NXCloud returns (SPEC.md, "Upload").
//
// Per record, in order:
//
//  1. Filter: only ObjectCreated records under the prefix; the key is
//     URL-decoded as S3 encodes it; folder markers ("/" at the end) and
//     zero-byte objects are skipped.
//  2. Pin the version: HeadObject of the current object, conditional on the
//     event's ETag; a newer version or another ETag means the object was
//     overwritten since the event: logged as superseded, not retried (the new
//     version has its own event). A deleted object is skipped.
//  3. Skip an object already tagged nxcloud-status=uploaded.
//  4. Decide phone and type and check the size; a permanent problem tags the
//     object nxcloud-status=rejected and nxcloud-error=<reason>.
//  5. Claim: a conditional PutObject (If-None-Match: *) of a claim object
//     under ClaimPrefix, outside the trigger prefix, so that concurrent
//     duplicate deliveries reach NXCloud once. See claim.go for the protocol.
//  6. Stream GetObject of the pinned version straight into the multipart
//     request, with its exact Content-Length.
//  7. Tag nxcloud-media-id and nxcloud-status=uploaded (existing tags kept),
//     then delete the claim.
//
// Transient failures (S3 or NXCloud unreachable, 5xx, throttling, Secrets
// Manager) release the claim and make Handle return an error, so that
// Lambda's asynchronous retries run; records that succeeded are tagged and a
// retry skips them. Every record ends in exactly one structured log line.
package upload
