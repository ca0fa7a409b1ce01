// Package reconcile is the sweep of ReconcileFunction: it finds the object
// versions under the upload prefix whose events never got them a verdict (an
// event lost, too old for Lambda's retries, sent to the failure queue, a file
// stored while the upload function was throttled or broken, files older than
// the function) and sends them through the upload pipeline, the same code
// and the same claims as the upload function (SPEC.md, "Operations").
//
// A run is a join of three listings, about one request per 1,000 keys and no
// request per object:
//
//  1. ListObjectVersions of the prefix: every current version is examined;
//     folder markers, zero-byte objects and versions younger than
//     Config.Settle (left to their event) are not candidates.
//  2. ListObjectsV2 of upload.RecordPrefix + prefix: a candidate with a
//     record has its verdict (the record's key names key and version).
//  3. Only if candidates are left, ListObjectsV2 of upload.ClaimPrefix +
//     prefix: a candidate whose claim was written within the longest lease
//     (plus the upload's grace for clocks) is being sent by someone else.
//
// What is left is pending, and goes, oldest first and a few at a time,
// through upload.Handler.Process with a synthetic S3 record. The claim makes
// a sweep racing the version's own event send it once. A version is started
// only while the time left covers it (Config.MinSend plus its size at
// Config.SendRate); the rest is left to the next run, and the run answers its
// Summary before the invocation's deadline.
package reconcile
