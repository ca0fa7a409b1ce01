package nxcloud

import "strings"

// Kinds of file, as NXCloud's uploadMedia table names them. A template file's
// kind is the format of the template HEADER it illustrates (IMAGE, VIDEO or
// DOCUMENT in createTemplate).
const (
	KindImage    = "image"
	KindAudio    = "audio"
	KindVideo    = "video"
	KindDocument = "document"
	KindSticker  = "sticker"
)

// Byte units of NXCloud's size limits: MB is 1,048,576 bytes, KB 1,024.
const (
	kb = 1 << 10
	mb = 1 << 20
)

// FileType is one file type a destination accepts: one row of its table.
type FileType struct {
	// MediaType is the type field exactly as NXCloud spells it, e.g.
	// "image/jpeg".
	MediaType string
	// Aliases are other spellings read as MediaType, lower-case (video/3gpp
	// for video/3gp); they are never sent.
	Aliases []string
	// Kind is one of the Kind constants.
	Kind string
	// Extensions are the file extensions that carry the type, lower-case
	// with the dot (".jpg"); none when another row owns them.
	Extensions []string
	// MaxBytes is the largest file of the type; 0 means no limit of its own
	// (the deployment's MAX_UPLOAD_BYTES is the only one).
	MaxBytes int64
}

// Limit returns the largest size allowed for the type when the deployment
// allows at most maxUpload bytes (0: no such limit): the smaller of the two.
func (f FileType) Limit(maxUpload int64) int64 {
	if f.MaxBytes > 0 && (maxUpload <= 0 || f.MaxBytes < maxUpload) {
		return f.MaxBytes
	}
	return maxUpload
}

// FileTypes is the table of the file types one destination accepts.
type FileTypes []FileType

// ByMediaType finds the row of t, a media type without parameters (as
// mime.ParseMediaType returns it), matched without regard to case; an alias
// finds the row it stands for, whose MediaType is the one to send.
func (ts FileTypes) ByMediaType(t string) (FileType, bool) {
	for _, f := range ts {
		if strings.EqualFold(f.MediaType, t) {
			return f, true
		}
		for _, a := range f.Aliases {
			if strings.EqualFold(a, t) {
				return f, true
			}
		}
	}
	return FileType{}, false
}

// ByExtension finds the row of ext, a file extension with its dot as
// path.Ext returns it, matched without regard to case (".PDF" finds
// application/pdf).
func (ts FileTypes) ByExtension(ext string) (FileType, bool) {
	for _, f := range ts {
		for _, e := range f.Extensions {
			if strings.EqualFold(e, ext) {
				return f, true
			}
		}
	}
	return FileType{}, false
}

// MediaTypes lists the media types of the table in its order, for messages
// that tell a user what to send.
func (ts FileTypes) MediaTypes() []string {
	out := make([]string, len(ts))
	for i, f := range ts {
		out[i] = f.MediaType
	}
	return out
}

// TemplateFileTypes are the files uploadTemplateFile accepts
// (nxcloud-docs/uploadTemplateFile.md): no size limit of their own.
// image/jpg is a type NXCloud takes as such; .jpg and .jpeg files are sent
// as image/jpeg.
var TemplateFileTypes = FileTypes{
	{MediaType: "application/pdf", Kind: KindDocument, Extensions: []string{".pdf"}},
	{MediaType: "video/mp4", Kind: KindVideo, Extensions: []string{".mp4"}},
	{MediaType: "image/jpeg", Kind: KindImage, Extensions: []string{".jpg", ".jpeg"}},
	{MediaType: "image/png", Kind: KindImage, Extensions: []string{".png"}},
	{MediaType: "image/jpg", Kind: KindImage},
}

// MessageMediaTypes are the files uploadMedia accepts, with the largest file
// of each kind (nxcloud-docs/uploadMedia.md, "Supported types and sizes").
var MessageMediaTypes = FileTypes{
	{MediaType: "image/jpeg", Kind: KindImage, Extensions: []string{".jpg", ".jpeg"}, MaxBytes: 5 * mb},
	{MediaType: "image/png", Kind: KindImage, Extensions: []string{".png"}, MaxBytes: 5 * mb},
	{MediaType: "audio/aac", Kind: KindAudio, Extensions: []string{".aac"}, MaxBytes: 16 * mb},
	{MediaType: "audio/mp4", Kind: KindAudio, Extensions: []string{".m4a"}, MaxBytes: 16 * mb},
	{MediaType: "audio/mpeg", Kind: KindAudio, Extensions: []string{".mp3"}, MaxBytes: 16 * mb},
	{MediaType: "audio/amr", Kind: KindAudio, Extensions: []string{".amr"}, MaxBytes: 16 * mb},
	{MediaType: "audio/ogg", Kind: KindAudio, Extensions: []string{".ogg", ".opus"}, MaxBytes: 16 * mb},
	{MediaType: "video/mp4", Kind: KindVideo, Extensions: []string{".mp4"}, MaxBytes: 16 * mb},
	{MediaType: "video/3gp", Aliases: []string{"video/3gpp"}, Kind: KindVideo, Extensions: []string{".3gp"}, MaxBytes: 16 * mb},
	{MediaType: "text/plain", Kind: KindDocument, Extensions: []string{".txt"}, MaxBytes: 100 * mb},
	{MediaType: "application/pdf", Kind: KindDocument, Extensions: []string{".pdf"}, MaxBytes: 100 * mb},
	{MediaType: "application/vnd.ms-powerpoint", Kind: KindDocument, Extensions: []string{".ppt"}, MaxBytes: 100 * mb},
	{MediaType: "application/msword", Kind: KindDocument, Extensions: []string{".doc"}, MaxBytes: 100 * mb},
	{MediaType: "application/vnd.ms-excel", Kind: KindDocument, Extensions: []string{".xls"}, MaxBytes: 100 * mb},
	{MediaType: "application/vnd.openxmlformats-officedocument.wordprocessingml.document", Kind: KindDocument, Extensions: []string{".docx"}, MaxBytes: 100 * mb},
	{MediaType: "application/vnd.openxmlformats-officedocument.presentationml.presentation", Kind: KindDocument, Extensions: []string{".pptx"}, MaxBytes: 100 * mb},
	{MediaType: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", Kind: KindDocument, Extensions: []string{".xlsx"}, MaxBytes: 100 * mb},
	{MediaType: "image/webp", Kind: KindSticker, Extensions: []string{".webp"}, MaxBytes: 100 * kb},
}

// AcceptedTypes are the media types of TemplateFileTypes, in its order.
var AcceptedTypes = TemplateFileTypes.MediaTypes()

// IsAcceptedType reports whether t is a media type of TemplateFileTypes
// spelled exactly as NXCloud spells it (lower-case, no parameters, no
// alias); TemplateFileTypes.ByMediaType is the lenient lookup.
func IsAcceptedType(t string) bool {
	for _, a := range AcceptedTypes {
		if t == a {
			return true
		}
	}
	return false
}
