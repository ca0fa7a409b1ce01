package lambdart

import (
	"io"
	"strings"
	"sync"
)

// tailBytes bounds the output kept per process for InitError.Output.
const tailBytes = 16 << 10

// tailLines is how many trailing lines InitError.Output keeps.
const tailLines = 20

// tailBuffer keeps the last tailBytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

// Write implements io.Writer; it never fails.
func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - tailBytes; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// lastLines returns up to n trailing non-empty lines.
func (t *tailBuffer) lastLines(n int) string {
	t.mu.Lock()
	s := string(t.buf)
	t.mu.Unlock()
	lines := strings.Split(strings.TrimRight(s, "\r\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// outWriter copies a process stream into its tail buffer and to the
// caller's writer. Writes to the caller's writers are serialised by a mutex
// shared by stdout and stderr of every process of a Runtime, so one
// non-thread-safe writer may serve both. Errors from the caller's writer are
// ignored so that they can never stall the function.
type outWriter struct {
	mu   *sync.Mutex
	dst  io.Writer
	tail *tailBuffer
}

// Write implements io.Writer.
func (w outWriter) Write(p []byte) (int, error) {
	_, _ = w.tail.Write(p)
	if w.dst != nil {
		w.mu.Lock()
		_, _ = w.dst.Write(p)
		w.mu.Unlock()
	}
	return len(p), nil
}
