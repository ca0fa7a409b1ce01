// Package ledger keeps the S3 bookkeeping of the object versions the bundle
// sends to NXCloud. An object version (Object) is the unit of work: this
// package is the only one that spells the keys where its bookkeeping lives,
// and the upload pipeline, the sweep and the upload sessions' status all go
// through it.
//
// For each version, in the version's own bucket and outside every upload
// prefix (so that writing them triggers nothing):
//
//   - its record, RecordKey(key, version) under RecordPrefix: the verdict
//     (uploaded with its media id, or rejected with its reason), written once
//     with a conditional create (If-None-Match: *), so that of two writers the
//     first verdict stands. A version with a record is never sent again.
//   - its claim, ClaimKey(key, version) under ClaimPrefix: a lease that the
//     one delivery allowed to send holds while it sends and until the verdict
//     is recorded (claim.go has the protocol). When the record cannot be
//     written, the verdict NXCloud answered is kept in the claim, where the
//     next holder finds it and records it instead of sending again.
//   - its tags on the version itself (nxcloud-media-id, nxcloud-status,
//     nxcloud-error): the visible copy of the verdict, never what decides it.
//     S3 copies tags on CopyObject, so a copy is judged by its own record.
//   - for a file of an upload session, the binding of the session's key to
//     the first version stored under it (Bind).
//
// The sweep lists what is decided with a Scanner, page by page and in
// order, so that its memory does not grow with the bucket, and keeps its
// position under SweepPrefix.
//
// A lease is not a fence (as client-go's leaderelection says of its own):
// the writes that must not come from a holder that lost its claim are made
// conditional (If-Match on the claim's ETag, If-None-Match on the record), so
// that S3 itself refuses them.
package ledger
