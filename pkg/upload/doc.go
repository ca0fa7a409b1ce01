// Package upload is the pipeline of UploadTemplateFileFunction and
// UploadMediaFunction (and of the sweep, ReconcileFunction): it sends one
// object version to its prefix's destination, NXCloud's uploadTemplateFile
// (template files) or uploadMedia (message media), records the verdict for
// that version and tags the version with it (SPEC.md, "Upload").
//
// Pipeline.Upload takes an object version (an Object: bucket, key, version
// id) and runs these steps, each a function of its own that returns its
// outcome (an ending for skipped, superseded or rejected; an error for a
// transient failure); the Result is built once, at the end:
//
//  1. route: the destination whose prefix the key is under; keys outside
//     every prefix and folder markers are skipped.
//  2. pin: HeadObject of the current object (the version's record is read
//     at the same time) fixes the version: the one named, or the current one
//     for an Object without a version id. A bucket without versioning is
//     refused with the fix; a version with a verdict is skipped after its
//     tags are made to say it; a version that is no longer current is
//     superseded (noted on it, not a verdict); a zero-byte object is skipped.
//  3. rules: merchant phone, the NXCloud type and the size limit of its kind,
//     from the metadata alone: a problem is a permanent rejection, decided
//     before the object's body is opened. A file of an upload session is
//     first bound to its session (one session, one file).
//  4. claim: the ledger's lease on the version (pkg/ledger), while the
//     version's GetObject is opened beside it.
//  5. send: the version streamed into the multipart request with its exact
//     Content-Length while the lease is held; the send stops the moment the
//     lease can no longer be proven.
//  6. record: the verdict written for the version under the claim, the
//     answer kept in the claim when the record cannot be written.
//  7. tag: nxcloud-media-id and nxcloud-status (or nxcloud-status=rejected
//     and nxcloud-error) on that version, existing tags kept.
//  8. release: after a failure before NXCloud answered, the claim is deleted
//     so that Lambda's retry can go at once.
//
// HandleEvent, the upload functions' Lambda handler, only decodes the
// records of an S3 event into versions; a transient failure makes it return
// an error whose errorType names the failure class (FailureType), so that
// Lambda's asynchronous retries run and the failure queue's records say what
// failed. Every version ends in exactly one structured log line.
package upload
