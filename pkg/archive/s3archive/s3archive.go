// Package s3archive archives NXCloud media files into S3 (SPEC.md,
// "Archive"), for ArchiveMediaFunction: it asks getMedia for the file's url,
// downloads it with the guarded client of package download and streams it
// into the stack's bucket at archive.Key, with a conditional write
// (If-None-Match: *), so that an archive is made once:
//
//  1. HeadObject of the key: an object there is the archive, answered from
//     its metadata without calling NXCloud or downloading (so it works after
//     the media expired at NXCloud).
//  2. getMedia (signed, by the NXCloud client), then a GET of its url with
//     none of NXCloud's headers.
//  3. The body streams into S3: with its Content-Length, into one PutObject;
//     without, through the SDK's upload manager (feature/s3/manager: 5 MiB
//     parts, one at a time, the multipart upload aborted on any failure).
//     Memory stays flat whatever the size. A body that ends before its
//     Content-Length, passes MAX_UPLOAD_BYTES or outlasts the time budget
//     fails the write, so nothing partial is ever stored.
//  4. Another archive of the same id that finished first makes the write
//     fail its condition (412, or 409 while both are in flight): the object
//     it stored is the archive, answered as in step 1.
//
// The object carries Content-Type (NXCloud's mime_type when it is a valid
// media type, else application/octet-stream), Content-Disposition
// (attachment, with NXCloud's file_name per RFC 6266 and RFC 5987) and the
// metadata media-id, business-phone, file-name and archived-at, from which
// every later archive reads the same document.
package s3archive

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/archive"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/archive/download"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/ledger"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
)

// Metadata keys of an archived object (x-amz-meta-*). A value that is not
// printable ASCII is stored as RFC 2047 encoded-words, as S3 itself returns
// such values.
const (
	MetaMediaID       = "media-id"
	MetaBusinessPhone = "business-phone"
	MetaFileName      = "file-name"
	MetaArchivedAt    = "archived-at"
)

// PartSize is the part size of a multipart upload (a download without a
// Content-Length): the smallest S3 accepts, one part in flight and one
// being read, so memory stays flat.
const PartSize = manager.MinUploadPartSize

// Budget margins: the download stops abortReserve before the request's
// deadline, so that a failed multipart upload is still aborted and the
// answer written in time.
const abortReserve = 2 * time.Second

// Config configures an Archiver.
type Config struct {
	Bucket   string // MEDIA_BUCKET
	Prefix   string // ARCHIVE_PREFIX
	MaxBytes int64  // MAX_UPLOAD_BYTES: the largest file archived
	// Clock returns the current time; default time.Now.
	Clock func() time.Time
}

// MediaGetter is what the archive needs from NXCloud; *nxcloud.Client
// implements it.
type MediaGetter interface {
	GetMedia(ctx context.Context, businessPhone, mediaID string) (*nxcloud.Media, error)
}

// S3API is the part of the S3 client the archive uses (HeadObject, and what
// the upload manager calls); *s3.Client implements it.
type S3API interface {
	manager.UploadAPIClient
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
}

// Archiver archives media files; it implements mediaapi.ArchiveService.
type Archiver struct {
	cfg      Config
	media    MediaGetter
	s3       S3API
	uploader uploader
	http     *http.Client
}

// uploader is the SDK's upload manager (*manager.Uploader). feature/s3/manager
// is deprecated in favour of feature/s3/transfermanager, still a v0: the
// manager is the released multipart machinery of this SDK version.
type uploader interface {
	Upload(ctx context.Context, in *s3.PutObjectInput, opts ...func(*manager.Uploader)) (*manager.UploadOutput, error) //nolint:staticcheck // SA1019: see above
}

// New returns an Archiver. download is the client of package download, with
// the policy of the function's NXCLOUD_BASE_URL.
func New(cfg Config, media MediaGetter, api S3API, download *http.Client) *Archiver {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	up := manager.NewUploader(abortClient{api}, func(u *manager.Uploader) { //nolint:staticcheck // SA1019: see uploader
		u.PartSize = PartSize
		u.Concurrency = 1
	})
	return &Archiver{cfg: cfg, media: media, s3: api, uploader: up, http: download}
}

// abortClient is the upload manager's S3 client. The manager aborts a
// failed multipart upload on the context of the upload, which has ended
// when the upload ran out of time: the abort gets abortReserve of its own
// (the upload's context ends abortReserve before the invocation's).
type abortClient struct{ S3API }

func (c abortClient) AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortReserve)
	defer cancel()
	return c.S3API.AbortMultipartUpload(ctx, in, optFns...)
}

// S3Options returns the S3 client options of the archive. plainHTTP is for a
// local S3 endpoint without TLS (MinIO in tests and local runs): there the
// SDK cannot stream a body of unknown checksum (a trailing checksum needs
// TLS), so the payload is sent unsigned and without a checksum; with TLS (S3
// itself) the SDK streams it with a trailing CRC32 that S3 checks.
func S3Options(pathStyle, plainHTTP bool) func(*s3.Options) {
	return func(o *s3.Options) {
		o.UsePathStyle = pathStyle
		if plainHTTP {
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
		}
	}
}

// Archive archives the media file mediaID of the merchant phone, unless it
// is archived already. created reports that this call stored it (201), else
// the document is the existing object's (200). Errors: NXCloud's (from
// getMedia, as the NXCloud client returns them, and an *nxcloud.ResponseError
// for a url that is not http(s)) and *archive.Error for the rest.
func (a *Archiver) Archive(ctx context.Context, phone, mediaID string) (obj *archive.Object, created bool, err error) {
	key := archive.Key(a.cfg.Prefix, phone, mediaID)
	if len(key) > archive.MaxKeyBytes {
		return nil, false, &archive.Error{Kind: archive.Input, Message: fmt.Sprintf(
			"mediaId is too long to be archived: its key %s<phone>/<mediaId escaped> would have %d bytes, and S3 keys have at most %d", a.cfg.Prefix, len(key), archive.MaxKeyBytes)}
	}
	if obj, err := a.existing(ctx, phone, mediaID, key); obj != nil || err != nil {
		return obj, false, err
	}

	m, err := a.media.GetMedia(ctx, phone, mediaID)
	if err != nil {
		return nil, false, err
	}
	if err := checkURL(m.URL); err != nil {
		return nil, false, err
	}
	obj = &archive.Object{
		MediaID: mediaID, BusinessPhone: phone, Bucket: a.cfg.Bucket, Key: key,
		Type: contentType(m.MimeType), FileName: fileName(m.FileName),
		ArchivedAt: a.cfg.Clock().UTC().Truncate(time.Second),
	}

	dlCtx, cancel := downloadContext(ctx)
	defer cancel()
	resp, err := download.Get(dlCtx, a.http, m.URL)
	if err != nil {
		return nil, false, downloadError(dlCtx, err, 0, -1, a.cfg.MaxBytes)
	}
	defer func() { _ = resp.Body.Close() }()
	if err := a.checkResponse(resp); err != nil {
		return nil, false, err
	}

	src := &source{r: resp.Body, want: resp.ContentLength, max: a.cfg.MaxBytes}
	in := &s3.PutObjectInput{
		Bucket:             aws.String(a.cfg.Bucket),
		Key:                aws.String(key),
		Body:               src,
		ContentType:        aws.String(obj.Type),
		ContentDisposition: aws.String(contentDisposition(obj.FileName)),
		Metadata:           metadata(obj),
		IfNoneMatch:        aws.String("*"),
	}
	if resp.ContentLength >= 0 {
		in.ContentLength = aws.Int64(resp.ContentLength)
		var out *s3.PutObjectOutput
		if out, err = a.s3.PutObject(ctx, in); err == nil {
			obj.VersionID = aws.ToString(out.VersionId)
		}
	} else {
		var out *manager.UploadOutput
		// dlCtx: a multipart upload cut by the time budget leaves its abort
		// abortReserve before the invocation's end (abortClient).
		if out, err = a.uploader.Upload(dlCtx, in); err == nil {
			obj.VersionID = aws.ToString(out.VersionID)
		}
	}
	n, readErr := src.result()
	switch {
	case err == nil:
		obj.Size = n
		return obj, true, nil
	case readErr != nil:
		return nil, false, downloadError(dlCtx, readErr, n, resp.ContentLength, a.cfg.MaxBytes)
	case ledger.IsPreconditionFailed(err) || ledger.IsConflict(err):
		// Another archive of this id stored it first, or is storing it.
		obj, err := a.settled(ctx, phone, mediaID, key)
		return obj, false, err
	}
	return nil, false, storageError(ctx, "store the file at "+key, err)
}

// downloadContext bounds the download abortReserve before ctx's deadline.
func downloadContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok {
		return context.WithDeadline(ctx, dl.Add(-abortReserve))
	}
	return context.WithCancel(ctx)
}

// checkURL refuses a getMedia url that is not http(s) with a host.
func checkURL(raw string) error {
	if u, err := url.Parse(raw); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return &nxcloud.ResponseError{Action: nxcloud.ActionGetMedia, HTTPStatus: http.StatusOK, Reason: "data.url is not an http(s) URL"}
	}
	return nil
}

// checkResponse refuses an answer that is not the whole file: a status
// other than 200 (or 203), an empty body, a Content-Length over the limit.
func (a *Archiver) checkResponse(resp *http.Response) error {
	switch {
	case resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNonAuthoritativeInfo:
		hint := "retry later"
		if resp.StatusCode >= 400 && resp.StatusCode < 500 {
			hint = "NXCloud's link may have expired or the media been deleted; archive again, which asks getMedia for a fresh link"
		}
		return &archive.Error{Kind: archive.Download, Message: fmt.Sprintf(
			"the media URL NXCloud answered gave HTTP %d %s instead of the file: nothing was stored; %s", resp.StatusCode, http.StatusText(resp.StatusCode), hint)}
	case resp.ContentLength == 0:
		return &archive.Error{Kind: archive.Download, Message: "the media URL NXCloud answered gave an empty file: nothing was stored; archive again later"}
	case resp.ContentLength > a.cfg.MaxBytes:
		return &archive.Error{Kind: archive.TooLarge, Message: fmt.Sprintf(
			"the media file has %d bytes (its Content-Length), more than MAX_UPLOAD_BYTES (%d): nothing was stored", resp.ContentLength, a.cfg.MaxBytes)}
	}
	return nil
}

// source is the download's body as the S3 write reads it: counted, cut at
// the limit, and its failure kept apart from the write's. The SDK reads it
// from one goroutine at a time, not always the caller's; result does not
// wait for a Read under way.
type source struct {
	r    io.Reader
	want int64 // Content-Length, -1 when unknown
	max  int64

	mu  sync.Mutex
	n   int64
	err error // the download's failure, if any
}

var (
	errTooLarge = errors.New("the download passed the size limit")
	errShort    = errors.New("the download ended before its Content-Length")
	errEmpty    = errors.New("the download was empty")
)

func (s *source) Read(p []byte) (int, error) {
	if _, err := s.result(); err != nil {
		return 0, err
	}
	n, err := s.r.Read(p)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n += int64(n)
	switch {
	case s.n > s.max:
		s.err = errTooLarge
		return n, s.err
	case errors.Is(err, io.EOF) && s.want >= 0 && s.n < s.want, errors.Is(err, io.ErrUnexpectedEOF):
		s.err = errShort
		return n, s.err
	case errors.Is(err, io.EOF) && s.n == 0: // without a Content-Length; an empty archive would answer 200 for ever
		s.err = errEmpty
		return n, s.err
	case err != nil && !errors.Is(err, io.EOF):
		s.err = err
	}
	return n, err
}

// result returns the bytes read and the download's failure, if any.
func (s *source) result() (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n, s.err
}

// downloadError is the archive.Error of a failed download: n bytes came,
// of want (-1: unknown), under limit.
func downloadError(ctx context.Context, err error, n, want, limit int64) error {
	var (
		refused  *download.RefusedError
		redirect *download.RedirectError
		timeout  interface{ Timeout() bool }
		kind     = archive.Download
		msg      string
	)
	switch {
	case errors.Is(err, errTooLarge):
		kind, msg = archive.TooLarge, fmt.Sprintf("the media file passed MAX_UPLOAD_BYTES (%d bytes) while it downloaded", limit)
	case errors.Is(err, errShort) && want >= 0:
		msg = fmt.Sprintf("the media URL NXCloud answered ended the file after %d of its %d bytes (Content-Length)", n, want)
	case errors.Is(err, errShort):
		msg = fmt.Sprintf("the media URL NXCloud answered broke off the file after %d bytes", n)
	case errors.Is(err, errEmpty):
		msg = "the media URL NXCloud answered gave an empty file"
	case errors.Is(ctx.Err(), context.DeadlineExceeded), errors.As(err, &timeout) && timeout.Timeout():
		kind, msg = archive.Timeout, fmt.Sprintf("the media file did not download within the function's time budget (%d bytes came)", n)
	case errors.As(err, &refused):
		return &archive.Error{Kind: kind, Err: err, Message: fmt.Sprintf(
			"the media URL NXCloud answered leads to %s, %s: nothing was stored", refused.Addr, refused.Reason)}
	case errors.As(err, &redirect):
		return &archive.Error{Kind: kind, Err: err, Message: "the media URL NXCloud answered made " + redirect.Reason + ": nothing was stored"}
	default:
		msg = "the media URL NXCloud answered could not be downloaded (the connection failed)"
	}
	if kind != archive.TooLarge {
		msg += ": nothing was stored; retry later"
	} else {
		msg += ": nothing was stored"
	}
	return &archive.Error{Kind: kind, Message: msg, Err: err}
}

// storageError is the archive.Error of a failed S3 request.
func storageError(ctx context.Context, op string, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return &archive.Error{Kind: archive.Timeout, Message: "the archive did not finish within the function's time budget (S3 was slow): nothing was stored; retry", Err: fmt.Errorf("%s: %w", op, err)}
	}
	msg := "the archive's storage (S3) failed: nothing was stored; retry later, and if it persists the operator must check the function's logs"
	return &archive.Error{Kind: archive.Storage, Message: msg, Err: ledger.S3Err(op, "s3:GetObject and s3:PutObject on ARCHIVE_PREFIX (and s3:AbortMultipartUpload)", err)}
}

// existing returns the document of the object at key, nil when there is
// none.
func (a *Archiver) existing(ctx context.Context, phone, mediaID, key string) (*archive.Object, error) {
	out, err := a.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(a.cfg.Bucket), Key: aws.String(key)})
	switch {
	case ledger.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, storageError(ctx, "read the archive "+key, err)
	}
	meta := out.Metadata
	obj := &archive.Object{
		// The key is the phone's and the id's alone: the request's values,
		// not the metadata's (S3 trims the spaces around a header value).
		MediaID: mediaID, BusinessPhone: phone,
		Bucket: a.cfg.Bucket, Key: key, VersionID: aws.ToString(out.VersionId), Size: aws.ToInt64(out.ContentLength),
		Type: aws.ToString(out.ContentType), ArchivedAt: aws.ToTime(out.LastModified).UTC(),
	}
	obj.FileName = decodeMeta(meta[MetaFileName])
	if _, params, err := mime.ParseMediaType(aws.ToString(out.ContentDisposition)); err == nil && params["filename"] != "" {
		obj.FileName = params["filename"] // whole: the metadata copy may be cut to fit S3's 2 KB
	}
	if t, err := time.Parse(time.RFC3339, meta[MetaArchivedAt]); err == nil {
		obj.ArchivedAt = t.UTC()
	}
	return obj, nil
}

// settled waits for the object another archive is storing at key and
// returns its document.
func (a *Archiver) settled(ctx context.Context, phone, mediaID, key string) (*archive.Object, error) {
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		obj, err := a.existing(ctx, phone, mediaID, key)
		if obj != nil || err != nil {
			return obj, err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, storageError(ctx, "wait for the archive another request is storing at "+key, ctx.Err())
		}
	}
}

// contentType is mimeType when it is a valid media type (type/subtype and
// parameters), normalised, else application/octet-stream.
func contentType(mimeType string) string {
	mt, params, err := mime.ParseMediaType(mimeType)
	if typ, sub, ok := strings.Cut(mt, "/"); err == nil && ok && typ != "" && sub != "" && !strings.Contains(sub, "/") {
		if s := mime.FormatMediaType(mt, params); s != "" {
			return s
		}
	}
	return "application/octet-stream"
}

// maxFileNameBytes bounds the file name kept: S3 limits the headers of a
// request, and NXCloud's names are far shorter.
const maxFileNameBytes = 1024

// fileName is NXCloud's file_name, valid UTF-8, without control characters,
// at most maxFileNameBytes.
func fileName(name string) string {
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(name, "\uFFFD"))
	return truncate(name, maxFileNameBytes)
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// contentDisposition is "attachment" with the file name as RFC 6266 wants
// it: filename= with an ASCII stand-in (other characters as _), and, when
// that is not the name, filename*= with the name in UTF-8 (RFC 5987).
func contentDisposition(name string) string {
	if name == "" {
		return "attachment"
	}
	ascii := strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '_'
		}
		return r
	}, name)
	cd := mime.FormatMediaType("attachment", map[string]string{"filename": ascii})
	if ascii == name {
		return cd
	}
	var b strings.Builder
	for _, c := range []byte(name) {
		if c < 0x80 && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$&+-.^_`|~", c) >= 0) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return cd + "; filename*=UTF-8''" + b.String()
}

// maxMetadataBytes is S3's limit on the user metadata of an object (keys and
// values, in bytes).
const maxMetadataBytes = 2048

// metadata is the object's user metadata; the file name is cut to fit S3's
// limit (Content-Disposition keeps it whole).
func metadata(obj *archive.Object) map[string]string {
	m := map[string]string{
		MetaMediaID:       encodeMeta(obj.MediaID),
		MetaBusinessPhone: obj.BusinessPhone,
		MetaArchivedAt:    obj.ArchivedAt.Format(time.RFC3339),
	}
	used := len(MetaFileName)
	for k, v := range m {
		used += len(k) + len(v)
	}
	for name := obj.FileName; name != ""; name = truncate(name, len(name)-1) {
		if v := encodeMeta(name); used+len(v) <= maxMetadataBytes {
			m[MetaFileName] = v
			break
		}
	}
	return m
}

// encodeMeta returns s as RFC 2047 encoded-words (UTF-8, base64) unless it
// is printable ASCII that does not look like one.
func encodeMeta(s string) string {
	// S3 trims the spaces around a header value: those are encoded too.
	plain := !strings.Contains(s, "=?") && strings.TrimSpace(s) == s
	for i := 0; plain && i < len(s); i++ {
		plain = s[i] >= 0x20 && s[i] <= 0x7e
	}
	if plain {
		return s
	}
	// Encoded-words of at most 45 bytes (60 base64 characters, under RFC
	// 2047's 75), each cut on a rune boundary.
	var words []string
	for len(s) > 0 {
		n := truncate(s, 45)
		words = append(words, "=?utf-8?b?"+base64.StdEncoding.EncodeToString([]byte(n))+"?=")
		s = s[len(n):]
	}
	return strings.Join(words, " ")
}

// decodeMeta decodes a metadata value written by encodeMeta (or by S3 for a
// value that was not ASCII).
func decodeMeta(v string) string {
	if d, err := new(mime.WordDecoder).DecodeHeader(v); err == nil {
		return d
	}
	return v
}
