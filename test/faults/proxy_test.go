package faults_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// proxyMode is what the TCP proxy does to a connection.
type proxyMode int

const (
	// modePass forwards both directions untouched.
	modePass proxyMode = iota
	// modeResetResponse forwards the answer's header and n bytes of its
	// body, then resets the connection (RST): a reset mid-body.
	modeResetResponse
	// modeTruncateResponse forwards the answer's header and n bytes of its
	// body, then closes the connection cleanly (FIN): the body is shorter
	// than its Content-Length.
	modeTruncateResponse
	// modeDripResponse forwards the answer chunk bytes every interval.
	modeDripResponse
	// modeDripRequest forwards the request chunk bytes every interval.
	modeDripRequest
	// modeBlackHole accepts and reads the request and never answers.
	modeBlackHole
)

func (m proxyMode) String() string {
	return [...]string{"pass", "reset-mid-body", "truncate", "drip-response", "drip-request", "black-hole"}[m]
}

// proxyFault is the fault applied to the next connections.
type proxyFault struct {
	mode     proxyMode
	n        int           // body bytes forwarded before a reset or truncation
	chunk    int           // drip: bytes per interval
	interval time.Duration // drip: pause between chunks
	conns    int           // connections the fault applies to; 0 means all
}

// tcpProxy is a loopback TCP proxy in front of one upstream address, with
// faults below HTTP. The fault is chosen when a connection is accepted.
type tcpProxy struct {
	ln       net.Listener
	upstream string

	mu    sync.Mutex
	fault proxyFault
	left  int // connections the fault still applies to (when fault.conns > 0)

	accepted atomic.Int64
	faulted  atomic.Int64
	wg       sync.WaitGroup
	done     chan struct{}
}

// newTCPProxy starts a proxy to the host:port of upstreamURL and stops it
// when the test ends.
func newTCPProxy(t *testing.T, upstreamURL string) *tcpProxy {
	t.Helper()
	u, err := url.Parse(upstreamURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, upstream: u.Host, done: make(chan struct{})}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

// URL is the proxy's base URL.
func (p *tcpProxy) URL() string { return "http://" + p.ln.Addr().String() }

// set makes the next connections (f.conns of them, or all) misbehave.
func (p *tcpProxy) set(f proxyFault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault, p.left = f, f.conns
}

func (p *tcpProxy) next() proxyFault {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.fault
	if f.conns > 0 {
		if p.left <= 0 {
			return proxyFault{}
		}
		p.left--
	}
	return f
}

func (p *tcpProxy) close() {
	close(p.done)
	_ = p.ln.Close()
	p.wg.Wait()
}

func (p *tcpProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		f := p.next()
		if f.mode != modePass {
			p.faulted.Add(1)
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(c.(*net.TCPConn), f)
		}()
	}
}

func (p *tcpProxy) handle(client *net.TCPConn, f proxyFault) {
	defer client.Close()
	up, err := net.DialTimeout("tcp", p.upstream, 2*time.Second)
	if err != nil {
		_ = client.SetLinger(0)
		return
	}
	defer up.Close()
	// Unblock both copies when the test ends.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-p.done:
			_ = client.Close()
			_ = up.Close()
		case <-stop:
		}
	}()

	if f.mode == modeBlackHole {
		_, _ = io.Copy(io.Discard, client)
		return
	}
	// Request direction.
	if f.mode == modeDripRequest {
		// A small, fixed receive buffer: what the client has sent is not
		// all sitting in the proxy's kernel buffer, ready to flow on after
		// the client died.
		_ = client.SetReadBuffer(16 << 10)
	}
	go func() {
		if f.mode == modeDripRequest {
			_ = drip(up, client, f.chunk, f.interval, p.done)
		} else {
			_, _ = io.Copy(up, client)
		}
		if tc, ok := up.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	// Answer direction.
	switch f.mode {
	case modeResetResponse, modeTruncateResponse:
		_ = copyHeaderAndBody(client, up, f.n)
		if f.mode == modeResetResponse {
			_ = client.SetLinger(0) // Close now sends RST
		}
	case modeDripResponse:
		_ = drip(client, up, f.chunk, f.interval, p.done)
	default:
		_, _ = io.Copy(client, up)
	}
}

// copyHeaderAndBody forwards an HTTP answer's header and then n bytes of its
// body, and stops.
func copyHeaderAndBody(dst io.Writer, src io.Reader, n int) error {
	var seen []byte
	buf := make([]byte, 1)
	for !bytes.HasSuffix(seen, []byte("\r\n\r\n")) {
		if _, err := io.ReadFull(src, buf); err != nil {
			return err
		}
		seen = append(seen, buf[0])
	}
	if _, err := dst.Write(seen); err != nil {
		return err
	}
	_, err := io.CopyN(dst, src, int64(n))
	return err
}

// drip copies src to dst chunk bytes at a time, pausing interval between
// chunks.
func drip(dst io.Writer, src io.Reader, chunk int, interval time.Duration, done <-chan struct{}) error {
	buf := make([]byte, max(chunk, 1))
	for {
		k, err := src.Read(buf)
		if k > 0 {
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return werr
			}
			select {
			case <-time.After(interval):
			case <-done:
				return errors.New("proxy closed")
			}
		}
		if err != nil {
			return err
		}
	}
}

// slowDownProxy is an HTTP reverse proxy in front of S3 (MinIO) that answers
// the first n requests with 503 SlowDown, as S3 does when it throttles, and
// forwards the rest; a rule, when set, decides first for every request. It
// counts the body bytes of the answers to GETs, by path. The Host header is
// kept so that SigV4 signatures made for the proxy's address still verify.
type slowDownProxy struct {
	srv       *http.Server
	url       string
	throttled atomic.Int64
	forwarded atomic.Int64
	left      atomic.Int64
	delay     atomic.Int64 // nanoseconds to wait before forwarding
	rule      atomic.Pointer[func(r *http.Request) s3Fault]

	mu     sync.Mutex
	served map[string]int64 // GET answer body bytes by URL path
}

// s3Fault is what a slowDownProxy rule does to one request.
type s3Fault struct {
	throttle bool          // answer 503 SlowDown
	hold     time.Duration // wait this long (or until the client gives up) first
}

// setRule makes rule decide for every request from now on; nil forwards.
func (p *slowDownProxy) setRule(rule func(r *http.Request) s3Fault) {
	if rule == nil {
		p.rule.Store(nil)
		return
	}
	p.rule.Store(&rule)
}

// bytesServed is the body bytes GET answers carried for the object key of
// bucket.
func (p *slowDownProxy) bytesServed(bucket, key string) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.served["/"+bucket+"/"+key]
}

func newSlowDownProxy(t *testing.T, upstreamURL string, n int) *slowDownProxy {
	t.Helper()
	u, err := url.Parse(upstreamURL)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &slowDownProxy{served: map[string]int64{}}
	p.left.Store(int64(n))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.url = "http://" + ln.Addr().String()
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var f s3Fault
		if rule := p.rule.Load(); rule != nil {
			f = (*rule)(r)
		}
		if d := max(time.Duration(p.delay.Load()), f.hold); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		if f.throttle || p.left.Add(-1) >= 0 {
			p.throttled.Add(1)
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/xml")
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>FAULTS</RequestId></Error>`)
			return
		}
		p.forwarded.Add(1)
		if r.Method != http.MethodGet {
			rp.ServeHTTP(w, r)
			return
		}
		cw := &countingWriter{ResponseWriter: w}
		rp.ServeHTTP(cw, r)
		p.mu.Lock()
		p.served[r.URL.Path] += cw.n
		p.mu.Unlock()
	})}
	go func() { _ = p.srv.Serve(ln) }()
	t.Cleanup(func() { _ = p.srv.Close() })
	return p
}

// countingWriter counts the body bytes written through it.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}
