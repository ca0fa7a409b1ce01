// Package reconcile is the sweep of ReconcileFunction: it finds the object
// versions under the destinations' prefixes whose events never got them a
// verdict (an event lost, too old for Lambda's retries, sent to the failure
// queue, a file stored while an upload function was throttled or broken,
// files older than the functions, a superseded version made current again
// by an undo) and sends them through the upload pipeline, the same code and
// the same claims as the upload functions (SPEC.md, "Operations").
//
// A run lists each prefix with ListObjectVersions (EncodingType=url, so any
// key S3 can hold is listed), one page of up to 1,000 versions at a time. In
// each page, the current versions older than Config.Settle (younger ones
// are left to their event), not folder markers and not empty, are
// candidates; the ledger's Scanner drops those with a verdict or a live
// claim, reading the records' and claims' listings in key order alongside
// the pages; what is left is pending and goes through upload.Pipeline.Upload
// a few at a time. Memory holds one page and does not grow with the bucket;
// a run where nothing is pending costs list requests only, about one of
// each listing per 1,000 objects.
//
// A version is started only while the time left covers it (Config.MinSend
// plus its size at Config.SendRate). When time runs out the run keeps its
// position in the bucket (ledger.Position) and the next run goes on from
// there, so that a bucket of any size is covered in turn. A version that
// fails is logged and counted and never stops the others; a run in which
// any failed logs its summary and then ends with an error, so that the
// function's errors alarm fires.
package reconcile
