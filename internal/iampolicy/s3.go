package iampolicy

import (
	"net/http"
	"net/url"
	"strings"
)

// Access is one IAM action on one resource (an ARN) that a request needs.
type Access struct {
	Action, Resource string
}

func (a Access) String() string { return a.Action + " on " + a.Resource }

// Unmapped is the action of a request S3Request does not know: no policy
// grants it, so the request is reported until it is mapped here.
const Unmapped = "s3:<unmapped request>"

// S3Request returns the IAM actions, with their resources, that S3
// authorizes for a path-style request (/bucket/key) whose answer had
// status, following "Amazon S3 API operations and required permissions"
// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html):
//
//   - GetObject and HeadObject: s3:GetObject, or s3:GetObjectVersion with a
//     versionId; a 404 also tells that the caller may s3:ListBucket (without
//     it S3 answers 403 for a key that does not exist).
//   - GetObjectTagging and PutObjectTagging: s3:GetObjectTagging and
//     s3:PutObjectTagging; with a versionId also s3:GetObjectVersionTagging
//     and s3:PutObjectVersionTagging ("To use this operation, you must have
//     permission to perform the s3:PutObjectTagging action. [...] To put tags
//     of any other version, use the versionId query parameter. You also need
//     permission for the s3:PutObjectVersionTagging action."); likewise
//     DeleteObjectTagging.
//   - PutObject, and CreateMultipartUpload, UploadPart and
//     CompleteMultipartUpload: s3:PutObject (and s3:PutObjectTagging with an
//     x-amz-tagging header); CopyObject: s3:PutObject on the copy and
//     s3:GetObject (s3:GetObjectVersion with a source versionId) on its
//     source; AbortMultipartUpload: s3:AbortMultipartUpload; ListParts:
//     s3:ListMultipartUploadParts.
//   - DeleteObject: s3:DeleteObject ("you must always have the
//     s3:DeleteObject permission"), and s3:DeleteObjectVersion with a
//     versionId.
//   - ListObjects(V2) and HeadBucket: s3:ListBucket; ListObjectVersions:
//     s3:ListBucketVersions; GetBucketVersioning, GetBucketLocation,
//     ListMultipartUploads: s3:GetBucketVersioning, s3:GetBucketLocation,
//     s3:ListBucketMultipartUploads on the bucket.
//
// A request of another kind is one Access with the action Unmapped.
func S3Request(method string, u *url.URL, h http.Header, status int) []Access {
	bucket, key, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	q := u.Query()
	bucketARN := "arn:aws:s3:::" + bucket
	objectARN := bucketARN + "/" + key
	versioned := q.Get("versionId") != ""
	pick := func(plain, version string) string {
		if versioned {
			return version
		}
		return plain
	}
	one := func(action, resource string) []Access { return []Access{{action, resource}} }
	// also is plain, and version too with a versionId.
	also := func(plain, version string) []Access {
		if versioned {
			return []Access{{plain, objectARN}, {version, objectARN}}
		}
		return one(plain, objectARN)
	}
	if bucket == "" {
		return one(Unmapped, method+" "+u.RequestURI())
	}
	if key == "" {
		switch {
		case method == http.MethodHead:
			return one("s3:ListBucket", bucketARN)
		case method != http.MethodGet:
		case q.Has("versions"):
			return one("s3:ListBucketVersions", bucketARN)
		case q.Has("versioning"):
			return one("s3:GetBucketVersioning", bucketARN)
		case q.Has("location"):
			return one("s3:GetBucketLocation", bucketARN)
		case q.Has("uploads"):
			return one("s3:ListBucketMultipartUploads", bucketARN)
		case onlyListing(q):
			return one("s3:ListBucket", bucketARN)
		}
		return one(Unmapped, method+" "+u.RequestURI())
	}
	switch {
	case q.Has("tagging"):
		switch method {
		case http.MethodGet:
			return also("s3:GetObjectTagging", "s3:GetObjectVersionTagging")
		case http.MethodPut:
			return also("s3:PutObjectTagging", "s3:PutObjectVersionTagging")
		case http.MethodDelete:
			return also("s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging")
		}
	case q.Has("uploadId"):
		switch method {
		case http.MethodPut, http.MethodPost: // UploadPart, CompleteMultipartUpload
			return one("s3:PutObject", objectARN)
		case http.MethodDelete:
			return one("s3:AbortMultipartUpload", objectARN)
		case http.MethodGet:
			return one("s3:ListMultipartUploadParts", objectARN)
		}
	case q.Has("uploads") && method == http.MethodPost: // CreateMultipartUpload
		return withTagging(one("s3:PutObject", objectARN), h, objectARN)
	case len(q) == 0 || onlyObjectParams(q):
		switch method {
		case http.MethodGet, http.MethodHead:
			out := one(pick("s3:GetObject", "s3:GetObjectVersion"), objectARN)
			if status == http.StatusNotFound {
				out = append(out, Access{"s3:ListBucket", bucketARN})
			}
			return out
		case http.MethodPut:
			out := withTagging(one("s3:PutObject", objectARN), h, objectARN)
			if src := h.Get("X-Amz-Copy-Source"); src != "" {
				out = append(out, copySource(src))
			}
			return out
		case http.MethodDelete:
			return also("s3:DeleteObject", "s3:DeleteObjectVersion")
		}
	}
	return one(Unmapped, method+" "+u.RequestURI())
}

// onlyListing reports whether the query is a ListObjects(V2) request's.
func onlyListing(q url.Values) bool {
	for k := range q {
		switch k {
		case "list-type", "prefix", "delimiter", "encoding-type", "max-keys", "continuation-token", "start-after",
			"fetch-owner", "marker", "x-id":
		default:
			return false
		}
	}
	return true
}

// onlyObjectParams reports whether the query holds only parameters of a
// plain object request (GetObject's versionId, partNumber, response-*
// overrides, and the presigned URL's X-Amz-* and x-id).
func onlyObjectParams(q url.Values) bool {
	for k := range q {
		switch {
		case k == "versionId", k == "partNumber", k == "x-id",
			strings.HasPrefix(k, "response-"), strings.HasPrefix(k, "X-Amz-"), strings.HasPrefix(k, "x-amz-"):
		default:
			return false
		}
	}
	return true
}

// withTagging adds s3:PutObjectTagging when the write carries tags.
func withTagging(out []Access, h http.Header, objectARN string) []Access {
	if h.Get("X-Amz-Tagging") != "" {
		out = append(out, Access{"s3:PutObjectTagging", objectARN})
	}
	return out
}

// copySource is what CopyObject needs of its source ("bucket/key" or
// "/bucket/key", URL-encoded, with an optional ?versionId=).
func copySource(src string) Access {
	path, query, _ := strings.Cut(strings.TrimPrefix(src, "/"), "?")
	if p, err := url.PathUnescape(path); err == nil {
		path = p
	}
	action := "s3:GetObject"
	if v, _ := url.ParseQuery(query); v.Get("versionId") != "" {
		action = "s3:GetObjectVersion"
	}
	return Access{action, "arn:aws:s3:::" + path}
}

// AccessKeyID is the access key id that signed an AWS request (SigV4, in
// the Authorization header or, presigned, in X-Amz-Credential); "" when
// it is not signed.
func AccessKeyID(r *http.Request) string {
	cred := r.URL.Query().Get("X-Amz-Credential")
	if auth := r.Header.Get("Authorization"); cred == "" && strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") {
		for part := range strings.SplitSeq(strings.TrimPrefix(auth, "AWS4-HMAC-SHA256 "), ",") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(part), "Credential="); ok {
				cred = v
			}
		}
	}
	id, _, _ := strings.Cut(cred, "/")
	return id
}
