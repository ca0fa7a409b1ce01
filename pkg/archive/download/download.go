// Package download is the HTTP client that fetches the file behind a media
// URL NXCloud answered, for the archive. The URL comes from outside (NXCloud,
// and through it whoever uploaded the media), so the client is built as an
// attack surface:
//
//   - it connects only where its [Policy] allows, checked on the address the
//     dialer is about to connect to (net.Dialer.Control, after DNS
//     resolution), so that neither a DNS name nor a redirect can lead it to a
//     refused address: never a link-local address (169.254.0.0/16,
//     fe80::/10: the cloud's instance metadata service) nor AWS's fd00:ec2::/32,
//     and loopback or private addresses only when NXCLOUD_BASE_URL itself is
//     one ([PolicyFor]);
//   - it follows at most [MaxRedirects] redirects, to http and https URLs
//     only;
//   - it uses no proxy from the environment (the proxy's address would be
//     checked instead of the file's), asks for no compression (the bytes
//     stored are the file's own, with their Content-Length) and sends no
//     header of the caller's: nothing of NXCloud's credentials or signature
//     reaches the file's host;
//   - a connection, its TLS handshake and the response's headers each have
//     a timeout; the body is bounded by the request's context.
package download

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// MaxRedirects is the most redirects a download follows.
const MaxRedirects = 5

// Policy says which addresses a download may connect to. The zero value
// allows public unicast addresses only.
type Policy struct {
	// Loopback allows 127.0.0.0/8, ::1, and 0.0.0.0/8 and :: (which reach
	// the host itself).
	Loopback bool
	// Private allows 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16,
	// 100.64.0.0/10 (shared address space) and fc00::/7 (fd00:ec2::/32
	// aside).
	Private bool
}

// PolicyFor returns the policy of a function whose NXCLOUD_BASE_URL is
// baseURL: loopback addresses are allowed when its host is a loopback
// address or localhost (local runs and tests), private addresses when its
// host is a private address (an NXCloud reached inside a private network);
// otherwise neither.
func PolicyFor(baseURL string) Policy {
	u, err := url.Parse(baseURL)
	if err != nil {
		return Policy{}
	}
	host := strings.ToLower(u.Hostname())
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return Policy{Loopback: true}
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return Policy{} // a DNS name: public
	}
	switch class(a) {
	case classLoopback:
		return Policy{Loopback: true}
	case classPrivate:
		return Policy{Private: true}
	}
	return Policy{}
}

// addrClass is the kind of an address, as far as the policy cares.
type addrClass int

const (
	classPublic addrClass = iota
	classLinkLocal
	classLoopback
	classPrivate
	classOther // multicast, broadcast: no one to download from
)

var (
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")     // 0.0.0.0 reaches the host itself
	sharedSpace = netip.MustParsePrefix("100.64.0.0/10") // carrier-grade NAT (RFC 6598)
	awsServices = netip.MustParsePrefix("fd00:ec2::/32") // the instance metadata service, DNS and time over IPv6
	nat64       = netip.MustParsePrefix("64:ff9b::/96")  // an IPv4 address behind a NAT64 gateway
)

// class classifies a, an IPv4-mapped or NAT64 address as its IPv4 address.
func class(a netip.Addr) addrClass {
	a = a.WithZone("").Unmap()
	if nat64.Contains(a) {
		b := a.As16()
		a = netip.AddrFrom4([4]byte(b[12:]))
	}
	switch {
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast(), awsServices.Contains(a):
		return classLinkLocal
	case a.IsLoopback(), a.IsUnspecified(), thisNetwork.Contains(a):
		return classLoopback
	case a.IsPrivate(), sharedSpace.Contains(a):
		return classPrivate
	case a.IsGlobalUnicast():
		return classPublic
	}
	return classOther
}

// RefusedError is a connection the policy refused.
type RefusedError struct {
	Addr   netip.Addr
	Reason string // "a link-local address (instance metadata)", ...
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("download: refused to connect to %s: %s", e.Addr, e.Reason)
}

// Check returns a *RefusedError when the policy refuses a connection to a,
// else nil.
func (p Policy) Check(a netip.Addr) error {
	a = a.WithZone("")
	switch class(a) {
	case classLinkLocal:
		return &RefusedError{a, "a link-local address (the cloud's instance metadata and host services), never connected to"}
	case classLoopback:
		if !p.Loopback {
			return &RefusedError{a, "a loopback address, connected to only when NXCLOUD_BASE_URL is one"}
		}
	case classPrivate:
		if !p.Private {
			return &RefusedError{a, "a private address, connected to only when NXCLOUD_BASE_URL is one"}
		}
	case classOther:
		return &RefusedError{a, "not a unicast address"}
	}
	return nil
}

// Control is the net.Dialer.Control of the policy: it checks the address the
// dialer is about to connect to, after DNS resolution, before the connect
// system call.
func (p Policy) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("download: %s address %q is not an IP address and port", network, address)
	}
	return p.Check(ap.Addr())
}

// Config configures the client of NewClient.
type Config struct {
	// Policy says where the client may connect.
	Policy Policy
	// Timeout bounds the connection, the TLS handshake and the wait for the
	// response's headers, each (default 10s). The body is bounded by the
	// request's context.
	Timeout time.Duration
	// Resolver resolves host names; nil is net.DefaultResolver. Tests give
	// one that answers what they need.
	Resolver *net.Resolver
}

// NewClient returns the download client of cfg.
func NewClient(cfg Config) *http.Client {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	dialer := &net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second, Resolver: cfg.Resolver, Control: cfg.Policy.Control}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   cfg.Timeout,
			ResponseHeaderTimeout: cfg.Timeout,
			DisableCompression:    true,
			MaxIdleConns:          4,
			IdleConnTimeout:       90 * time.Second,
		},
		CheckRedirect: checkRedirect,
	}
}

// RedirectError is a redirect the client does not follow.
type RedirectError struct{ Reason string }

func (e *RedirectError) Error() string { return "download: " + e.Reason }

// checkRedirect follows at most MaxRedirects redirects, to http(s) URLs.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > MaxRedirects {
		return &RedirectError{fmt.Sprintf("more than %d redirects", MaxRedirects)}
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return &RedirectError{fmt.Sprintf("a redirect to a %s: URL (only http and https are followed)", req.URL.Scheme)}
	}
	// net/http names the previous URL in a Referer: a signed link's query
	// must not reach the host it redirects to.
	req.Header.Del("Referer")
	return nil
}

// Get starts the download of rawURL with no header but the client's own.
// The URL in an error has no query: a signed link's signature stays out of
// the logs.
func Get(ctx context.Context, hc *http.Client, rawURL string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if ue := (*url.Error)(nil); errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			u.RawQuery, u.Fragment, u.User = "", "", nil
			ue.URL = u.String()
		}
	}
	return resp, err
}
