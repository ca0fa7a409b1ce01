package nxcloud_test

import (
	"context"
	"io"
	"testing"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud"
	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/nxcloud/nxcloudtest"
)

// patternReader yields n zero bytes without allocating, so that the benchmark
// measures the client, not the source. (It must write the bytes: a buffer
// left as it was may hold the multipart boundary the transport copied there
// before, which would end the file part early.)
type patternReader struct{ n int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.n {
		b = b[:p.n]
	}
	clear(b)
	p.n -= int64(len(b))
	return len(b), nil
}

// BenchmarkUploadTemplateFile streams files to a local NXCloud that discards
// them. Allocated bytes per op must stay flat across sizes (no buffering of
// the file); the counts include the in-process server's.
func BenchmarkUploadTemplateFile(b *testing.B) {
	srv := nxcloudtest.NewTestServer(b, nxcloudtest.WithDiscardUploads(true))
	c := newTestClient(b, srv)
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		size int64
	}{{"1MiB", 1 << 20}, {"100MiB", 100 << 20}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(bc.size)
			for b.Loop() {
				_, err := c.UploadTemplateFile(ctx, nxcloud.UploadInput{
					BusinessPhone: testPhone, Type: "video/mp4", FileName: "clip.mp4",
					Size: bc.size, Body: &patternReader{n: bc.size},
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
