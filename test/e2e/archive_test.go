package e2e_test

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/lambdart"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/internal/localstack"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
)

// The archive (POST /media/{mediaId}/archive) through the built
// ArchiveMediaFunction: the local NXCloud answers getMedia with the url of a
// file host the test runs on the loopback interface (NXCLOUD_BASE_URL is a
// loopback address, so the download may go there); what is stored is read
// back from MinIO.

// fileHost is a download server on the loopback interface that records the
// headers of every request it gets.
type fileHost struct {
	*httptest.Server
	mu      sync.Mutex
	headers []http.Header
}

func newFileHost(t *testing.T, h http.HandlerFunc) *fileHost {
	t.Helper()
	fh := &fileHost{}
	fh.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fh.mu.Lock()
		fh.headers = append(fh.headers, r.Header.Clone())
		fh.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(fh.Close)
	return fh
}

func (fh *fileHost) requests() []http.Header {
	fh.mu.Lock()
	defer fh.mu.Unlock()
	return append([]http.Header(nil), fh.headers...)
}

// serveBytes answers every request with b, with its Content-Length or
// chunked.
func serveBytes(b []byte, chunked bool) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if !chunked {
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		}
		for rest := b; len(rest) > 0; rest = rest[min(len(rest), 256<<10):] {
			_, _ = w.Write(rest[:min(len(rest), 256<<10)])
			if chunked {
				w.(http.Flusher).Flush()
			}
		}
	}
}

// addInbound makes the local NXCloud know a media file whose getMedia url
// is fileURL.
func addInbound(t *testing.T, mimeType, fileName, fileURL string) string {
	t.Helper()
	return st.NXCloud.AddMedia(nxcloudtest.Media{ID: "e2e-in-" + randomID(12), MimeType: mimeType, FileName: fileName,
		BusinessPhone: phone, URL: fileURL})
}

func archivePath(id string) string {
	return "/media/" + url.PathEscape(id) + "/archive?business_phone=" + phone
}

func archiveKey(id string) string { return st.ArchivePrefix + phone + "/" + url.PathEscape(id) }

// archived is the document of an archive.
type archived struct {
	MediaID       string    `json:"media_id"`
	BusinessPhone string    `json:"business_phone"`
	Bucket        string    `json:"bucket"`
	Key           string    `json:"key"`
	VersionID     string    `json:"version_id"`
	Size          int64     `json:"size"`
	Type          string    `json:"type"`
	FileName      string    `json:"file_name"`
	ArchivedAt    time.Time `json:"archived_at"`
}

// decodeArchived checks an archive's answer: status, application/json and
// exactly the document's members.
func decodeArchived(t *testing.T, r apiResponse, status int) archived {
	t.Helper()
	checkJSON(t, r)
	if r.Status != status {
		t.Fatalf("archive = %s, want %d", r, status)
	}
	var members map[string]json.RawMessage
	_ = json.Unmarshal(r.Body, &members)
	if len(members) != 9 {
		t.Errorf("document %s: want the 9 members of SPEC", r.Body)
	}
	var doc archived
	dec := json.NewDecoder(strings.NewReader(string(r.Body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("document %s: %v", r.Body, err)
	}
	return doc
}

// object reads the current object at key: its bytes' SHA-256 and its head.
func object(t *testing.T, key string) (sum string, out *s3.GetObjectOutput) {
	t.Helper()
	out, err := st.S3Client().GetObject(testContext(t, time.Minute), &s3.GetObjectInput{Bucket: aws.String(st.Bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get s3://%s/%s: %v", st.Bucket, key, err)
	}
	defer func() { _ = out.Body.Close() }()
	h := sha256.New()
	if _, err := io.Copy(h, out.Body); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil)), out
}

// nothingArchived fails unless no version of key exists and no multipart
// upload of it is left.
func nothingArchived(t *testing.T, key string) {
	t.Helper()
	ctx := testContext(t, 30*time.Second)
	v, err := st.S3Client().ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(st.Bucket), Prefix: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Versions) != 0 {
		t.Errorf("%d versions stored at %s, want none", len(v.Versions), key)
	}
	u, err := st.S3Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(st.Bucket), Prefix: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	if len(u.Uploads) != 0 {
		t.Errorf("%d multipart uploads of %s left behind, want none", len(u.Uploads), key)
	}
}

// archiveRuntime starts one more execution environment of the archive with
// its own timeout and environment changes.
func archiveRuntime(t *testing.T, timeout time.Duration, changes ...string) *lambdart.Runtime {
	t.Helper()
	w := st.Output("extra " + localstack.ArchiveMediaFunction)
	env, err := st.FunctionEnv(testContext(t, 30*time.Second), localstack.ArchiveMediaFunction, changes...)
	if err != nil {
		t.Fatalf("the environment of the archive with %v: %v", changes, err)
	}
	rt, err := lambdart.Start(testContext(t, 30*time.Second), lambdart.Function{Name: localstack.ArchiveMediaFunction,
		Path: st.Binary(localstack.ArchiveMediaFunction), Env: env, Timeout: timeout, Stdout: w, Stderr: w})
	if err != nil {
		t.Fatalf("starting the archive with %v: %v", changes, err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	return rt
}

// archiveEvent is the event the HTTP API sends for POST path.
func archiveEvent(path string) []byte {
	req := httptest.NewRequest(http.MethodPost, path, nil)
	id, _ := strings.CutSuffix(strings.TrimPrefix(req.URL.Path, "/media/"), "/archive")
	b, _ := json.Marshal(localstack.NewAPIGatewayEvent(req, "POST /media/{mediaId}/archive", map[string]string{"mediaId": id}, nil))
	return b
}

// TestArchive: the first archive stores the file (201) with its type, name
// and metadata, and no NXCloud header reaches the file's host; again, the
// same document (200) from the object alone, even with NXCloud unreachable.
func TestArchive(t *testing.T) {
	t.Parallel()
	photo := sized(300 << 10)
	host := newFileHost(t, serveBytes(photo, false))
	id := addInbound(t, "image/jpeg", "Foto del cliente ñ.jpg", host.URL+"/oss/photo.jpg?Expires=1768212930&OSSAccessKeyId=LTAI5t&Signature=abc%3D")

	first := decodeArchived(t, apiCall(t, http.MethodPost, archivePath(id)), http.StatusCreated)
	want := archived{MediaID: id, BusinessPhone: phone, Bucket: st.Bucket, Key: archiveKey(id), VersionID: first.VersionID,
		Size: int64(len(photo)), Type: "image/jpeg", FileName: "Foto del cliente ñ.jpg", ArchivedAt: first.ArchivedAt}
	if first != want || first.VersionID == "" || time.Since(first.ArchivedAt) > time.Minute {
		t.Errorf("document %+v\nwant %+v", first, want)
	}
	sum, out := object(t, first.Key)
	if sum != sha256Hex(photo) || aws.ToString(out.VersionId) != first.VersionID {
		t.Errorf("the object at %s is not the file downloaded", first.Key)
	}
	if cd := aws.ToString(out.ContentDisposition); cd != `attachment; filename="Foto del cliente _.jpg"; filename*=UTF-8''Foto%20del%20cliente%20%C3%B1.jpg` {
		t.Errorf("Content-Disposition = %q", cd)
	}
	if out.Metadata["business-phone"] != phone || out.Metadata["media-id"] != id || out.Metadata["file-name"] == "" {
		t.Errorf("metadata %v: want media-id, business-phone and file-name", out.Metadata)
	}
	reqs := host.requests()
	if len(reqs) != 1 {
		t.Fatalf("the file host got %d requests, want 1", len(reqs))
	}
	for name := range reqs[0] {
		switch strings.ToLower(name) {
		case "accesskey", "sign", "ts", "biztype", "action", "algorithm", "authorization", "x-amz-security-token", "cookie":
			t.Errorf("the file host got the header %s: no NXCloud or AWS credential may reach it", name)
		}
	}

	again := decodeArchived(t, apiCall(t, http.MethodPost, archivePath(id)), http.StatusOK)
	if again != first {
		t.Errorf("again: %+v\nwant the first document %+v", again, first)
	}
	// NXCloud unreachable for this execution environment.
	dark := archiveRuntime(t, httpTimeout, "NXCLOUD_BASE_URL=http://127.0.0.1:1")
	if doc := decodeArchived(t, invokeAPI(t, dark.Invoke, archiveEvent(archivePath(id))), http.StatusOK); doc != first {
		t.Errorf("without NXCloud: %+v\nwant %+v", doc, first)
	}
	answered := 0 // (a call refused with the credentials of before a rotation aside)
	for _, c := range callsOf(nxcloud.ActionGetMedia, id) {
		if c.Code == nxcloudtest.CodeOK {
			answered++
		}
	}
	if answered != 1 {
		t.Errorf("NXCloud answered %d getMedia calls for %s, want the first archive's only", answered, id)
	}
	if n := len(host.requests()); n != 1 {
		t.Errorf("the file host got %d requests, want the first archive's only", n)
	}
}

// TestArchiveIDs: an id with / (escaped %2F in the path) and other
// characters is archived under its escaped form, and the local NXCloud's own
// file URL works as well as a file host's.
func TestArchiveIDs(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{"4:e2e/" + randomID(6) + "/a b", "e2e-é?#%" + randomID(6)} {
		body := []byte("%PDF-1.4 " + randomID(20))
		id := st.NXCloud.AddMedia(nxcloudtest.Media{ID: raw, MimeType: "application/pdf", FileName: "menu.pdf", BusinessPhone: phone, Content: body})
		doc := decodeArchived(t, apiCall(t, http.MethodPost, archivePath(id)), http.StatusCreated)
		if doc.MediaID != raw || doc.Key != archiveKey(raw) || strings.Contains(doc.Key, "%2F") != strings.Contains(raw, "/") {
			t.Errorf("id %q: document %+v, want the key %s", raw, doc, archiveKey(raw))
		}
		if sum, _ := object(t, doc.Key); sum != sha256Hex(body) {
			t.Errorf("id %q: the object is not the file", raw)
		}
	}
}

// TestArchiveEventFile: events/archive-media.json, invoked as sam local
// invoke does, archives the seeded inbound photo.
func TestArchiveEventFile(t *testing.T) {
	t.Parallel()
	r := invokeAPI(t, stackFunction(localstack.ArchiveMediaFunction), readEvent(t, "archive-media.json"))
	status := http.StatusCreated
	if r.Status == http.StatusOK {
		status = http.StatusOK // archived before in this stack
	}
	doc := decodeArchived(t, r, status)
	if doc.Key != archiveKey(localstack.SampleInboundMediaID) || doc.Type != "image/jpeg" || doc.Size != int64(len(localstack.SampleJPEG())) {
		t.Errorf("events/archive-media.json: %+v, want the seeded photo", doc)
	}
}

// TestArchiveStoresNothing: a download that does not give the whole file
// stores nothing, and the answer says what the URL did.
func TestArchiveStoresNothing(t *testing.T) {
	t.Parallel()
	big := sized(maxUploadBytes + 1)
	for _, tc := range []struct {
		name   string
		serve  http.HandlerFunc
		url    string // instead of the file host's
		status int
		msg    string
	}{
		{"404", func(w http.ResponseWriter, _ *http.Request) { http.NotFound(w, nil) }, "", http.StatusBadGateway, "gave HTTP 404 Not Found"},
		{"short body", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "200000")
			_, _ = w.Write(make([]byte, 50000))
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}, "", http.StatusBadGateway, "ended the file after 50000 of its 200000 bytes"},
		{"413 by Content-Length", serveBytes(big, false), "", http.StatusRequestEntityTooLarge, fmt.Sprintf("more than MAX_UPLOAD_BYTES (%d)", maxUploadBytes)},
		{"413 counted, no Content-Length", serveBytes(big, true), "", http.StatusRequestEntityTooLarge, "passed MAX_UPLOAD_BYTES"},
		{"a link-local URL", nil, "http://[fe80::1%25lo]:9/latest/meta-data/", http.StatusBadGateway, "leads to fe80::1, a link-local address"},
		{"a redirect to a link-local address", func(w http.ResponseWriter, r *http.Request) {
			// fe80::1 on the loopback interface stands for 169.254.169.254:
			// refused alike, and nothing could leave this machine.
			http.Redirect(w, r, "http://[fe80::1%25lo]:9/latest/meta-data/iam/security-credentials/", http.StatusFound)
		}, "", http.StatusBadGateway, "link-local"},
		{"six redirects", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, r.URL.Path+"x", http.StatusFound) }, "", http.StatusBadGateway, "more than 5 redirects"},
		{"a redirect to file:", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
		},
			"", http.StatusBadGateway, "only http and https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fileURL := tc.url
			if tc.serve != nil {
				fileURL = newFileHost(t, tc.serve).URL + "/f?Signature=s3cr3t-sig"
			}
			id := addInbound(t, "video/mp4", "clip.mp4", fileURL)
			r := apiCall(t, http.MethodPost, archivePath(id))
			if msg := checkError(t, r, tc.status, nil); !strings.Contains(msg, tc.msg) || !strings.Contains(msg, "nothing was stored") || strings.Contains(msg, "s3cr3t-sig") {
				t.Errorf("message %q, want %q and no URL", msg, tc.msg)
			}
			nothingArchived(t, archiveKey(id))
		})
	}
}

// TestArchiveMultipart: a download without a Content-Length goes through
// the SDK's multipart upload; one that passes MAX_UPLOAD_BYTES after the
// first part leaves no multipart upload behind.
func TestArchiveMultipart(t *testing.T) {
	t.Parallel()
	const limit = 6 << 20
	rt := archiveRuntime(t, httpTimeout, "MAX_UPLOAD_BYTES="+strconv.Itoa(limit))
	for _, tc := range []struct {
		size   int
		status int
	}{{limit - 100, http.StatusCreated}, {limit + 2<<20, http.StatusRequestEntityTooLarge}} {
		body := sized(tc.size)
		id := addInbound(t, "video/mp4", "clip.mp4", newFileHost(t, serveBytes(body, true)).URL+"/clip.mp4")
		r := invokeAPI(t, rt.Invoke, archiveEvent(archivePath(id)))
		if tc.status != http.StatusCreated {
			checkError(t, r, tc.status, nil)
			nothingArchived(t, archiveKey(id))
			continue
		}
		doc := decodeArchived(t, r, tc.status)
		if sum, _ := object(t, doc.Key); sum != sha256Hex(body) || doc.Size != int64(tc.size) {
			t.Errorf("%d bytes without a Content-Length: stored %d bytes that are not the file", tc.size, doc.Size)
		}
	}
}

// TestArchiveLargeFile: a file far larger than the memory the function
// uses streams through it.
func TestArchiveLargeFile(t *testing.T) {
	t.Parallel()
	const size = 64 << 20
	rt := archiveRuntime(t, 60*time.Second, "MAX_UPLOAD_BYTES="+strconv.Itoa(size))
	block := sized(1 << 20)
	h := sha256.New()
	for range size / len(block) {
		h.Write(block)
	}
	want := fmt.Sprintf("%x", h.Sum(nil))
	host := newFileHost(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		for range size / len(block) {
			if _, err := w.Write(block); err != nil {
				return
			}
		}
	})
	id := addInbound(t, "video/mp4", "long.mp4", host.URL+"/long.mp4")
	res, err := rt.Invoke(testContext(t, 90*time.Second), archiveEvent(archivePath(id)))
	if err != nil || res.Error != nil {
		t.Fatalf("invoke: %v %v", err, res)
	}
	r, err := localstack.ParseAPIGatewayResponse(res.Payload)
	if err != nil {
		t.Fatal(err)
	}
	doc := decodeArchived(t, r, http.StatusCreated)
	if sum, _ := object(t, doc.Key); sum != want || doc.Size != size {
		t.Fatalf("stored %d bytes that are not the %d MiB file", doc.Size, size>>20)
	}
	peak, err := rt.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	if peak > size/2 {
		t.Errorf("the function's peak RSS was %d MiB for a %d MiB file: it does not stream", peak>>20, size>>20)
	}
	t.Logf("%d MiB archived in %s, peak RSS %.1f MiB", size>>20, res.Duration.Round(time.Millisecond), float64(peak)/(1<<20))
}

// TestArchiveConcurrent: archives of one id at once, in separate execution
// environments, store one version and all answer the same document.
func TestArchiveConcurrent(t *testing.T) {
	t.Parallel()
	body := sized(512 << 10)
	host := newFileHost(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond) // all three downloads under way before any write ends
		serveBytes(body, false)(w, r)
	})
	id := addInbound(t, "application/pdf", "contract.pdf", host.URL+"/contract.pdf")
	const n = 3
	rts := make([]*lambdart.Runtime, n)
	for i := range rts {
		rts[i] = archiveRuntime(t, httpTimeout)
	}
	answers := make([]apiResponse, n)
	var wg sync.WaitGroup
	for i, rt := range rts {
		wg.Go(func() { answers[i] = invokeAPI(t, rt.Invoke, archiveEvent(archivePath(id))) })
	}
	wg.Wait()
	created := 0
	var docs []archived
	for _, r := range answers {
		if r.Status == http.StatusCreated {
			created++
		}
		docs = append(docs, decodeArchived(t, r, r.Status))
		if r.Status != http.StatusCreated && r.Status != http.StatusOK {
			t.Errorf("a concurrent archive answered %s", r)
		}
	}
	if created != 1 {
		t.Errorf("%d archives answered 201, want exactly 1", created)
	}
	for i := range docs {
		if docs[i] != docs[0] {
			t.Errorf("archive %d answered %+v, archive 0 %+v", i, docs[i], docs[0])
		}
	}
	v, err := st.S3Client().ListObjectVersions(testContext(t, 30*time.Second), &s3.ListObjectVersionsInput{Bucket: aws.String(st.Bucket), Prefix: aws.String(archiveKey(id))})
	if err != nil || len(v.Versions) != 1 {
		t.Fatalf("versions at %s: %d (%v), want 1", archiveKey(id), len(v.Versions), err)
	}
}

// TestArchiveTimeBudget: a download that would outlast the function's time
// budget is a 504 before the function's deadline, and stores nothing.
func TestArchiveTimeBudget(t *testing.T) {
	t.Parallel()
	const timeout = 5 * time.Second
	rt := archiveRuntime(t, timeout)
	host := newFileHost(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000000")
		for r.Context().Err() == nil {
			_, _ = w.Write(make([]byte, 100))
			w.(http.Flusher).Flush()
			time.Sleep(50 * time.Millisecond)
		}
	})
	id := addInbound(t, "video/mp4", "slow.mp4", host.URL+"/slow.mp4")
	start := time.Now()
	r := invokeAPI(t, rt.Invoke, archiveEvent(archivePath(id)))
	if msg := checkError(t, r, http.StatusGatewayTimeout, nil); !strings.Contains(msg, "time budget") {
		t.Errorf("message %q, want the time budget named", msg)
	}
	if took := time.Since(start); took > timeout {
		t.Errorf("the 504 came after %s, past the function's timeout %s", took, timeout)
	}
	nothingArchived(t, archiveKey(id))
}

// TestArchiveBadInput: bad input is a 400 before NXCloud is called.
func TestArchiveBadInput(t *testing.T) {
	t.Parallel()
	id := addInbound(t, "image/jpeg", "p.jpg", "http://127.0.0.1:1/never")
	for _, tc := range []struct{ path, msg string }{
		{"/media/" + url.PathEscape(id) + "/archive?business_phone=12", "5 to 20 digits"},
		{"/media/" + url.PathEscape(id) + "/archive?business_phone=%2B" + phone, "not a merchant phone"},
		{"/media/" + url.PathEscape(id) + "/archive", "business_phone is required"},
		{"/media/" + strings.Repeat("a", 257) + "/archive?business_phone=" + phone, "257 characters"},
		{"/media/" + strings.Repeat("%E6%96%87", 200) + "/archive?business_phone=" + phone, "too long to be archived"},
		{"/media/a%01b/archive?business_phone=" + phone, "control characters"},
	} {
		if msg := checkError(t, apiCall(t, http.MethodPost, tc.path), http.StatusBadRequest, nil); !strings.Contains(msg, tc.msg) {
			t.Errorf("POST %s: message %q, want %q", tc.path, msg, tc.msg)
		}
	}
	if n := len(callsOf(nxcloud.ActionGetMedia, id)); n != 0 {
		t.Errorf("bad input reached NXCloud (%d calls)", n)
	}
}

// TestArchiveRoutes: the archive function serves POST on its route only.
func TestArchiveRoutes(t *testing.T) {
	t.Parallel()
	fn := stackFunction(localstack.ArchiveMediaFunction)
	r := invokeAPI(t, fn, localstack.MediaEvent(http.MethodGet, "/media/x/archive?business_phone="+phone))
	if msg := checkError(t, r, http.StatusMethodNotAllowed, nil); r.Header.Get("Allow") != http.MethodPost || !strings.Contains(msg, "use POST") {
		t.Errorf("GET on the archive: Allow %q, message %q", r.Header.Get("Allow"), msg)
	}
	for _, m := range []string{http.MethodGet, http.MethodDelete} {
		checkError(t, invokeAPI(t, fn, localstack.MediaEvent(m, "/media/x?business_phone="+phone)), http.StatusNotFound, nil)
	}
	// The get function does not archive.
	checkError(t, invokeAPI(t, stackFunction(localstack.GetMediaFunction), archiveEvent(archivePath("x"))), http.StatusNotFound, nil)
}

// TestArchiveNXCloudCodes: NXCloud's answers to getMedia map to the status
// table of GET /media/{mediaId}, and nothing is stored (serial: faults).
func TestArchiveNXCloudCodes(t *testing.T) {
	serial(t, nxcloud.ActionGetMedia)
	host := newFileHost(t, serveBytes([]byte("never fetched"), false))
	for _, tc := range []struct {
		name   string
		fault  nxcloudtest.Fault
		status int
		code   *int
	}{
		{"9000", nxcloudtest.Fault{Code: 9000}, http.StatusBadRequest, intp(9000)},
		{"9002", nxcloudtest.Fault{Code: 9002}, http.StatusUnprocessableEntity, intp(9002)},
		{"9006", nxcloudtest.Fault{Code: 9006}, http.StatusUnprocessableEntity, intp(9006)},
		{"-1", nxcloudtest.Fault{Code: -1}, http.StatusBadGateway, intp(-1)},
		{"9001", nxcloudtest.Fault{Code: 9001}, http.StatusBadGateway, intp(9001)},
		{"1001 after the refresh", nxcloudtest.Fault{Code: 1001, Times: 2}, http.StatusBadGateway, intp(1001)},
		{"HTTP 500", nxcloudtest.Fault{HTTPStatus: 500, Times: 10}, http.StatusBadGateway, nil},
		{"not JSON", nxcloudtest.Fault{HTTPStatus: 200, Body: "<html>"}, http.StatusBadGateway, nil},
		{"too slow", nxcloudtest.Fault{Delay: 3 * nxcloudTimeout, Times: 5}, http.StatusGatewayTimeout, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := addInbound(t, "image/jpeg", "p.jpg", host.URL+"/p.jpg")
			st.NXCloud.Inject(nxcloud.ActionGetMedia, tc.fault)
			checkError(t, apiCall(t, http.MethodPost, archivePath(id)), tc.status, tc.code)
			nothingArchived(t, archiveKey(id))
			drainFaults(t, nxcloud.ActionGetMedia)
		})
	}
	if n := len(host.requests()); n != 0 {
		t.Errorf("the file host got %d requests though getMedia never answered a url", n)
	}
}
