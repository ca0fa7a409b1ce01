// Package sessions is the store of UploadSessionsFunction: upload sessions
// kept in the media bucket, with no database (SPEC.md, "Upload sessions").
//
// POST /uploads makes a session of a fresh id (128 random bits, 32 hex
// digits) and writes its document, JSON, at
//
//	<UPLOAD_PREFIX>uploads/<id>/              the session (file name, type, size, phone, expiry)
//	<UPLOAD_PREFIX>uploads/<id>/<file_name>   where the presigned PUT puts the file
//
// The document's key ends with "/", which the upload function skips as a
// folder marker; the file's key is under the trigger prefix, so putting it
// starts the upload function as any other object does. The presigned PUT
// (the SDK's presign client, SigV4) signs Content-Type, Content-Length,
// If-None-Match: * and the x-amz-meta-business-phone metadata: S3 refuses a
// PUT of another type, another size or other metadata, and a second PUT of
// the session's file. The caller's input never names a key: the id is ours
// and the file name has no / or \.
//
// GET /uploads/{uploadId} reads the document (404 when there is none), then
// HeadObject of the file (none: awaiting_file, or expired past the expiry),
// then the upload function's record of the file's version (upload.ReadRecord:
// none yet is processing, else uploaded with the media id or rejected with
// the reason): at most three S3 requests, none for an id that is not of the
// form handed out.
package sessions
