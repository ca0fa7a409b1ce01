// Package upload is the pipeline of UploadTemplateFileFunction (and of the
// sweep, ReconcileFunction): for every record of an S3 ObjectCreated event
// under the upload prefix it streams the exact object version the event names
// to NXCloud's uploadTemplateFile, records the verdict for that version and
// tags the version with it (SPEC.md, "Upload").
//
// A record goes through these steps, each a function of its own:
//
//  1. decode: the key is URL-decoded as S3 encodes it; records that are not
//     ObjectCreated, outside the prefix, or folder markers are skipped.
//  2. pin: HeadObject of the current object (the version's record is read
//     at the same time) fixes the version to send (the
//     event's version id, or the current version for an event without one);
//     a bucket without versioning is refused with the fix; a version that is
//     no longer current is superseded (recorded, not retried); a zero-byte
//     object is skipped; a version that already has a verdict (its record) is
//     skipped, after its tags are made to say it.
//  3. rules: merchant phone, NXCloud type and size; a problem is a permanent
//     rejection.
//  4. claim: a conditional write (If-None-Match: *) of the version's claim
//     object, a lease of Config.Lease, so that concurrent deliveries send the
//     version once (claim.go has the protocol).
//  5. send: GetObject of the pinned version (opened with pin when the event
//     names the version, else with the claim: opening it sends nothing)
//     streamed into the multipart request with its exact Content-Length,
//     while the lease is renewed.
//  6. record: the verdict is written to the version's record object
//     (RecordKey) the moment NXCloud answers, before tagging.
//  7. tag: nxcloud-media-id and nxcloud-status (or nxcloud-status=rejected
//     and nxcloud-error) on that version, existing tags kept.
//  8. release: after a transient failure the claim is deleted so that
//     Lambda's retry can go at once; after a verdict it is kept (the record
//     decides from then on) and expires with the bucket's lifecycle rule.
//
// Records and claims live outside the trigger prefix (RecordPrefix,
// ClaimPrefix), so writing them triggers nothing; a record's key holds the
// object key and version id, so that listing RecordPrefix answers which
// versions have a verdict (the sweep relies on this).
//
// Transient failures (S3 or NXCloud unreachable, 5xx, throttling, Secrets
// Manager) make Handle return an error so that Lambda's asynchronous retries
// run. Every record ends in exactly one structured log line.
package upload
