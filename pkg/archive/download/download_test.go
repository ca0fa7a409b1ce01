package download_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nxcloud-media-lambda/nxcloud-media-lambda/pkg/archive/download"
)

// None of these tests connects anywhere but to the loopback servers they
// start: the refused addresses are checked by calling the policy, or by
// dialing with it, which refuses before the connect system call.

func TestPolicyCheck(t *testing.T) {
	t.Parallel()
	public, loopback, private := download.Policy{}, download.Policy{Loopback: true}, download.Policy{Private: true}
	all := []download.Policy{public, loopback, private, {Loopback: true, Private: true}}
	tests := []struct {
		addr    string
		allowed []download.Policy // the policies that allow it
		reason  string            // part of the refusal's reason
	}{
		{"93.184.215.14", all, ""},
		{"2606:2800:21f:cb07:6820:80da:af6b:8b2c", all, ""},
		// Link-local, in every spelling: never.
		{"169.254.169.254", nil, "link-local"},
		{"169.254.170.2", nil, "link-local"}, // the ECS task metadata endpoint
		{"::ffff:169.254.169.254", nil, "link-local"},
		{"64:ff9b::a9fe:a9fe", nil, "link-local"}, // 169.254.169.254 through NAT64
		{"fe80::1", nil, "link-local"},
		{"fe80::1%eth0", nil, "link-local"},
		{"fd00:ec2::254", nil, "link-local"}, // the instance metadata service over IPv6
		{"fd00:ec2::253", nil, "link-local"},
		// Loopback, and what reaches the host itself.
		{"127.0.0.1", []download.Policy{loopback, {Loopback: true, Private: true}}, "loopback"},
		{"127.1.2.3", []download.Policy{loopback, {Loopback: true, Private: true}}, "loopback"},
		{"::1", []download.Policy{loopback, {Loopback: true, Private: true}}, "loopback"},
		{"::ffff:127.0.0.1", []download.Policy{loopback, {Loopback: true, Private: true}}, "loopback"},
		{"0.0.0.0", []download.Policy{loopback, {Loopback: true, Private: true}}, "loopback"},
		{"::", []download.Policy{loopback, {Loopback: true, Private: true}}, "loopback"},
		// Private networks.
		{"10.0.0.1", []download.Policy{private, {Loopback: true, Private: true}}, "private"},
		{"172.16.5.4", []download.Policy{private, {Loopback: true, Private: true}}, "private"},
		{"192.168.1.1", []download.Policy{private, {Loopback: true, Private: true}}, "private"},
		{"100.64.0.1", []download.Policy{private, {Loopback: true, Private: true}}, "private"},
		{"fd12:3456::1", []download.Policy{private, {Loopback: true, Private: true}}, "private"},
		{"64:ff9b::a00:1", []download.Policy{private, {Loopback: true, Private: true}}, "private"}, // 10.0.0.1 through NAT64
		// No one to download from.
		{"239.1.2.3", nil, "not a unicast"},
		{"224.0.0.251", nil, "link-local"}, // mDNS
		{"255.255.255.255", nil, "not a unicast"},
		{"ff02::1", nil, "link-local"},
	}
	for _, tc := range tests {
		a := netip.MustParseAddr(tc.addr)
		for _, p := range all {
			err := p.Check(a)
			want := false
			for _, ok := range tc.allowed {
				want = want || ok == p
			}
			if (err == nil) != want {
				t.Errorf("%+v.Check(%s) = %v, want allowed %v", p, tc.addr, err, want)
			}
			var re *download.RefusedError
			if err != nil && (!errors.As(err, &re) || !strings.Contains(re.Reason, tc.reason)) {
				t.Errorf("%+v.Check(%s) = %v, want a refusal naming %q", p, tc.addr, err, tc.reason)
			}
		}
	}
}

func TestPolicyFor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		base string
		want download.Policy
	}{
		{"https://api2.nxcloud.com", download.Policy{}},
		{"http://127.0.0.1:8081", download.Policy{Loopback: true}},
		{"http://[::1]:8081/", download.Policy{Loopback: true}},
		{"http://localhost:8081", download.Policy{Loopback: true}},
		{"http://nxcloud.localhost", download.Policy{Loopback: true}},
		{"http://10.1.2.3", download.Policy{Private: true}},
		{"https://[fd12::7]", download.Policy{Private: true}},
		{"http://169.254.169.254", download.Policy{}}, // never: link-local
		{"http://localhost.example.com", download.Policy{}},
		{"::not a url", download.Policy{}},
	} {
		if got := download.PolicyFor(tc.base); got != tc.want {
			t.Errorf("PolicyFor(%q) = %+v, want %+v", tc.base, got, tc.want)
		}
	}
}

// TestControl calls the dialer hook as the dialer does, with the resolved
// address: nothing is dialed.
func TestControl(t *testing.T) {
	t.Parallel()
	p := download.Policy{Loopback: true, Private: true}
	for _, addr := range []string{"169.254.169.254:80", "[::ffff:169.254.169.254]:80", "[fe80::1%lo]:443", "[fd00:ec2::254]:80"} {
		if err := p.Control("tcp", addr, nil); err == nil {
			t.Errorf("Control(%s) allowed a link-local address", addr)
		}
	}
	if err := p.Control("tcp4", "127.0.0.1:8080", nil); err != nil {
		t.Errorf("Control(127.0.0.1) under a loopback policy: %v", err)
	}
	if err := (download.Policy{}).Control("tcp4", "127.0.0.1:8080", nil); err == nil {
		t.Error("Control(127.0.0.1) under a public policy allowed it")
	}
	if err := p.Control("tcp", "files.example:80", nil); err == nil {
		t.Error("Control accepted an address that is not an IP address")
	}
}

// fileServer serves "file" at every path and counts the connections it
// accepted.
func fileServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var conns atomic.Int32
	if h == nil {
		h = func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "file") }
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func get(t *testing.T, cfg download.Config, url string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := download.Get(ctx, download.NewClient(cfg), url)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestClientChecksTheDialedAddress: the same loopback server is refused
// under a public policy (before any connection) and served under a loopback
// one.
func TestClientChecksTheDialedAddress(t *testing.T) {
	t.Parallel()
	srv, conns := fileServer(t, nil)
	var re *download.RefusedError
	if _, err := get(t, download.Config{}, srv.URL); !errors.As(err, &re) || !re.Addr.IsLoopback() {
		t.Fatalf("a public policy downloaded from %s: %v", srv.URL, err)
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("the server accepted %d connections from a refused download", n)
	}
	if body, err := get(t, download.Config{Policy: download.Policy{Loopback: true}}, srv.URL); err != nil || body != "file" {
		t.Fatalf("a loopback policy: %q, %v", body, err)
	}
}

// TestClientChecksResolvedNames: a DNS name is checked by the address it
// resolves to, with a resolver the test runs on the loopback interface.
func TestClientChecksResolvedNames(t *testing.T) {
	t.Parallel()
	srv, conns := fileServer(t, nil)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	resolver := fakeDNS(t, netip.MustParseAddr("127.0.0.1"))
	target := "http://files.public.example:" + port + "/m.jpg"

	var re *download.RefusedError
	if _, err := get(t, download.Config{Resolver: resolver}, target); !errors.As(err, &re) || re.Addr != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("a name resolving to 127.0.0.1 under a public policy: %v, want a refusal of 127.0.0.1", err)
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("the server accepted %d connections", n)
	}
	if body, err := get(t, download.Config{Resolver: resolver, Policy: download.Policy{Loopback: true}}, target); err != nil || body != "file" {
		t.Fatalf("the same name under a loopback policy: %q, %v", body, err)
	}
}

func TestClientRedirects(t *testing.T) {
	t.Parallel()
	loopback := download.Config{Policy: download.Policy{Loopback: true}}
	// /hop/N redirects to /hop/N-1; /hop/0 is the file.
	var srv *httptest.Server
	srv, _ = fileServer(t, func(w http.ResponseWriter, r *http.Request) {
		var n int
		switch r.URL.Path {
		case "/to-link-local":
			// fe80::1 on the loopback interface: even a broken policy
			// could not leave this machine.
			http.Redirect(w, r, "http://[fe80::1%25lo]:"+strings.TrimPrefix(srv.URL, "http://127.0.0.1:")+"/x", http.StatusFound)
		case "/to-ftp":
			http.Redirect(w, r, "ftp://files.example/m.jpg", http.StatusMovedPermanently)
		case "/to-file":
			http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
		default:
			if _, err := fmt.Sscanf(r.URL.Path, "/hop/%d", &n); err == nil && n > 0 {
				http.Redirect(w, r, fmt.Sprintf("/hop/%d", n-1), http.StatusFound)
				return
			}
			_, _ = io.WriteString(w, "file")
		}
	})
	if body, err := get(t, loopback, srv.URL+"/hop/5"); err != nil || body != "file" {
		t.Errorf("5 redirects: %q, %v; want the file", body, err)
	}
	var rd *download.RedirectError
	if _, err := get(t, loopback, srv.URL+"/hop/6"); !errors.As(err, &rd) || !strings.Contains(rd.Reason, "more than 5 redirects") {
		t.Errorf("6 redirects: %v, want a RedirectError", err)
	}
	for _, p := range []string{"/to-ftp", "/to-file"} {
		if _, err := get(t, loopback, srv.URL+p); !errors.As(err, &rd) || !strings.Contains(rd.Reason, "only http and https") {
			t.Errorf("%s: %v, want a RedirectError", p, err)
		}
	}
	var re *download.RefusedError
	if _, err := get(t, loopback, srv.URL+"/to-link-local"); !errors.As(err, &re) || !re.Addr.IsLinkLocalUnicast() {
		t.Errorf("a redirect to link-local: %v, want a refusal", err)
	}
}

// TestRedirectSendsNoReferer: the host a signed link redirects to is not
// told the link (net/http would name it in a Referer).
func TestRedirectSendsNoReferer(t *testing.T) {
	t.Parallel()
	var referer atomic.Value
	srv, _ := fileServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/signed" {
			http.Redirect(w, r, "/file", http.StatusFound)
			return
		}
		referer.Store(r.Header.Get("Referer"))
		_, _ = io.WriteString(w, "file")
	})
	if body, err := get(t, download.Config{Policy: download.Policy{Loopback: true}}, srv.URL+"/signed?Signature=sig"); err != nil || body != "file" {
		t.Fatalf("download: %q, %v", body, err)
	}
	if ref := referer.Load(); ref != "" {
		t.Errorf("the redirect's target was sent Referer %q", ref)
	}
}

// TestGetKeepsSignaturesOutOfErrors: the error of a failed download names
// the URL without its query, where a signed link keeps its signature.
func TestGetKeepsSignaturesOutOfErrors(t *testing.T) {
	t.Parallel()
	_, err := get(t, download.Config{}, "http://127.0.0.1:1/m.jpg?OSSAccessKeyId=LTAI5t&Signature=secret-sig")
	if err == nil || strings.Contains(err.Error(), "secret-sig") || strings.Contains(err.Error(), "OSSAccessKeyId") || !strings.Contains(err.Error(), "/m.jpg") {
		t.Errorf("error %v: want the URL without its query", err)
	}
}

// fakeDNS runs a DNS server on the loopback interface that answers every A
// question with addr and every other question with no record, and returns a
// resolver that asks it.
func fakeDNS(t *testing.T, addr netip.Addr) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if reply := dnsReply(buf[:n], addr); reply != nil {
				_, _ = pc.WriteTo(reply, from)
			}
		}
	}()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp4", pc.LocalAddr().String())
	}}
}

// dnsReply answers a one-question DNS query (RFC 1035 §4.1).
func dnsReply(q []byte, addr netip.Addr) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil
	}
	end := 12
	for end < len(q) && q[end] != 0 {
		end += int(q[end]) + 1
	}
	end += 5 // the root label, QTYPE, QCLASS
	if end > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[end-4:])
	r := append([]byte{}, q[:end]...)
	r[2], r[3] = 0x81, 0x80 // a response, recursion desired and available, no error
	binary.BigEndian.PutUint16(r[8:], 0)
	binary.BigEndian.PutUint16(r[10:], 0)
	if qtype != 1 { // AAAA and the rest: no record
		binary.BigEndian.PutUint16(r[6:], 0)
		return r
	}
	binary.BigEndian.PutUint16(r[6:], 1)
	a := addr.As4()
	r = append(r, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4)
	return append(r, a[:]...)
}
