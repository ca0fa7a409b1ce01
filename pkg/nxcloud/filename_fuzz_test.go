package nxcloud

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"strings"
	"testing"
)

// FuzzMultipartFileName builds the multipart body of an upload for an
// arbitrary file name (quotes, backslashes, CR/LF, NUL, non-ASCII, invalid
// UTF-8), phone and content, and re-parses it with mime/multipart, as a
// server does: the three fields, the file part's name, type and bytes come
// back exactly, the header stays one printable ASCII line, and the body has
// exactly the Content-Length the client announces.
func FuzzMultipartFileName(f *testing.F) {
	for _, name := range []string{"menu.pdf", `a"b.pdf`, `a\b.pdf`, "a\r\nb.pdf", "a\x00b.pdf", "menú.pdf", "菜单.pdf",
		"\xff.pdf", "100%.pdf", "it's.pdf", "x\r\nContent-Type: text/html\r\n\r\n.pdf", "a;b=c.pdf", "name*=UTF-8''x.pdf",
		" lead and trail ", "--boundary", "\t"} {
		f.Add(name, "8615812341795", byte(0), []byte("%PDF-1.7"))
	}
	f.Add("clip.mp4", "12345", byte(1), []byte{})
	f.Add("x.png", "1\x002", byte(3), []byte("\r\n--\r\n"))

	types := append(TemplateFileTypes.MediaTypes(), MessageMediaTypes.MediaTypes()...)
	f.Fuzz(func(t *testing.T, name, phone string, typ byte, content []byte) {
		in := UploadInput{
			BusinessPhone: phone,
			Type:          types[int(typ)%len(types)],
			FileName:      name,
			Size:          int64(len(content)),
			Body:          bytes.NewReader(content),
		}
		if err := in.validate(MessageMediaTypes); err != nil {
			if name != "" && phone != "" && !strings.ContainsAny(phone, "\r\n") {
				t.Fatalf("a non-empty name and a one-line phone refused: %v", err)
			}
			return
		}
		frame, err := newMultipartFrame(in)
		if err != nil {
			t.Fatalf("newMultipartFrame: %v", err)
		}
		body := append(append(bytes.Clone(frame.prefix), content...), frame.suffix...)
		if int64(len(body)) != frame.contentLength(in.Size) {
			t.Fatalf("body has %d bytes, Content-Length says %d", len(body), frame.contentLength(in.Size))
		}
		mt, params, err := mime.ParseMediaType(frame.contentType)
		if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
			t.Fatalf("Content-Type %q: %v", frame.contentType, err)
		}

		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		want := [][2]string{{"messaging_product", MessagingProduct}, {"business_phone", phone}, {"type", in.Type}}
		for _, w := range want {
			p, err := mr.NextPart()
			if err != nil {
				t.Fatalf("part %s: %v", w[0], err)
			}
			if p.FormName() != w[0] {
				t.Fatalf("part %q, want %q", p.FormName(), w[0])
			}
			v, _ := io.ReadAll(p)
			if string(v) != w[1] {
				t.Fatalf("field %s = %q, want %q", w[0], v, w[1])
			}
		}
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("file part: %v", err)
		}
		cd := p.Header.Get("Content-Disposition")
		if strings.ContainsFunc(cd, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
			t.Fatalf("Content-Disposition %q is not printable ASCII", cd)
		}
		dt, dp, err := mime.ParseMediaType(cd)
		if err != nil {
			t.Fatalf("Content-Disposition %q does not parse: %v", cd, err)
		}
		if dt != "form-data" || dp["name"] != "file" || dp["filename"] != name {
			t.Fatalf("Content-Disposition %q parses as %s %q, want form-data, file, filename %q", cd, dt, dp, name)
		}
		if ct := p.Header.Get("Content-Type"); ct != in.Type {
			t.Fatalf("file part Content-Type %q, want %q", ct, in.Type)
		}
		got, err := io.ReadAll(p)
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("file content %q (%v), want %q", got, err, content)
		}
		if _, err := mr.NextPart(); !errors.Is(err, io.EOF) {
			t.Fatalf("after the file part: %v, want io.EOF", err)
		}
	})
}
