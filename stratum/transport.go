package stratum

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/proxy"

	"clminer/work/safetext"
)

// PoolURL is a parsed pool address.
type PoolURL struct {
	Scheme string // stratum+tcp, stratum+tls or stratum+ssl
	Host   string
	Port   string
	TLS    bool
}

// Addr is host:port for dialing.
func (u PoolURL) Addr() string { return net.JoinHostPort(u.Host, u.Port) }

func (u PoolURL) String() string { return u.Scheme + "://" + u.Addr() }

// ParsePoolURL parses stratum+tcp://host:port, stratum+tls:// or
// stratum+ssl://. Errors are one line saying what to fix.
func ParsePoolURL(s string) (PoolURL, error) {
	var u PoolURL
	s = strings.TrimSpace(s)
	// Every message quotes the URL through safetext.URL: a URL may carry
	// user:password@ in any shape, parsable or not.
	q := safetext.URL(s)
	if s == "" {
		return u, errors.New("pool URL is empty: want stratum+tcp://host:port")
	}
	if !strings.Contains(s, "://") {
		return u, fmt.Errorf("pool URL %q has no scheme: write stratum+tcp://%s (or stratum+tls://)", q, q)
	}
	pu, err := url.Parse(s)
	if err != nil {
		return u, fmt.Errorf("pool URL %q is malformed: want stratum+tcp://host:port", q)
	}
	switch strings.ToLower(pu.Scheme) {
	case "stratum+tcp", "stratum":
		u.Scheme = "stratum+tcp"
	case "stratum+tls", "stratum+ssl":
		u.Scheme = strings.ToLower(pu.Scheme)
		u.TLS = true
	default:
		return u, fmt.Errorf("pool URL %q: unknown scheme %q, use stratum+tcp, stratum+tls or stratum+ssl", q, pu.Scheme)
	}
	if pu.User != nil {
		return u, fmt.Errorf("pool URL %q: put the worker and password in the pool's user/pass settings, not in the URL", q)
	}
	if pu.Path != "" && pu.Path != "/" || pu.RawQuery != "" {
		return u, fmt.Errorf("pool URL %q: remove the path or query, want stratum+tcp://host:port", q)
	}
	u.Host = pu.Hostname()
	u.Port = pu.Port()
	if u.Host == "" {
		return u, fmt.Errorf("pool URL %q has no host: want %s://host:port", q, u.Scheme)
	}
	if u.Port == "" {
		return u, fmt.Errorf("pool URL %q has no port: add one, e.g. %s://%s:3333", q, u.Scheme, u.Host)
	}
	if p, err := strconv.Atoi(u.Port); err != nil || p <= 0 || p > 65535 {
		return u, fmt.Errorf("pool URL %q: port %q must be a number in 1..65535", q, u.Port)
	}
	return u, nil
}

// ParseFingerprint reads a SHA-256 certificate fingerprint, hex with or
// without colons.
func ParseFingerprint(s string) ([]byte, error) {
	h := strings.ReplaceAll(strings.ReplaceAll(strings.TrimSpace(s), ":", ""), " ", "")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("certificate fingerprint %q: want 64 hex chars of SHA-256 (colons allowed)", clip(s))
	}
	return b, nil
}

// CertFingerprint is the SHA-256 of a DER certificate as lower-case hex.
func CertFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// Dialer opens a network connection; it is injected so tests need no network.
type Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

func defaultDialer(timeout time.Duration) Dialer {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return d.DialContext
}

// dial connects to addr (host:port) and wraps TLS when the URL asks for it.
func dial(ctx context.Context, d Dialer, timeout time.Duration, u PoolURL, addr string, p PoolConfig) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if p.Proxy != "" {
		var err error
		if d, err = ViaProxy(d, p.Proxy); err != nil {
			return nil, err
		}
	}
	conn, err := d(dctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetKeepAlive(true)
		_ = tc.SetKeepAlivePeriod(30 * time.Second)
	}
	if !u.TLS {
		return &plainConn{Conn: conn}, nil
	}
	host, _, _ := net.SplitHostPort(addr)
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if p.Fingerprint != "" {
		want, err := ParseFingerprint(p.Fingerprint)
		if err != nil {
			conn.Close()
			return nil, err
		}
		// The pin replaces the CA chain check.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("tls: pool sent no certificate")
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(sum[:], want) != 1 {
				return fmt.Errorf("tls: pool certificate fingerprint %s does not match the pinned one", hex.EncodeToString(sum[:]))
			}
			return nil
		}
	} else if p.TLSInsecure {
		cfg.InsecureSkipVerify = true
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(dctx); err != nil {
		conn.Close()
		return nil, explainTLSError(err, dctx.Err() != nil && ctx.Err() == nil, u)
	}
	return tc, nil
}

// explainTLSError turns a failed handshake into what the operator can act
// on: the fingerprint of a certificate the CA check refused (so it can be
// pinned after checking it out of band), and a hint when the port does not
// speak TLS at all.
func explainTLSError(err error, timedOut bool, u PoolURL) error {
	var cve *tls.CertificateVerificationError
	if errors.As(err, &cve) && len(cve.UnverifiedCertificates) > 0 {
		fp := colonHex(CertFingerprint(cve.UnverifiedCertificates[0].Raw))
		return fmt.Errorf("%w; the pool's certificate has SHA-256 fingerprint %s: if you trust it (check it with the pool), pin it with --tls-fingerprint or the pool's tls-fingerprint: setting", err, fp)
	}
	var rhe tls.RecordHeaderError
	if errors.As(err, &rhe) || timedOut || errors.Is(err, io.EOF) {
		return fmt.Errorf("TLS handshake with %s failed (%v): is this a plain stratum+tcp port? then write stratum+tcp://%s", u.Addr(), err, u.Addr())
	}
	return err
}

func colonHex(h string) string {
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i:min(i+2, len(h))])
	}
	return b.String()
}

// ParseProxyURL reads a pool's SOCKS5 proxy: socks5://[user:pass@]host:port
// or socks5h://. Both resolve the pool's name at the proxy (the socks5h
// meaning): a rig behind a proxy often has no DNS of its own, and a local
// lookup would leak which pool it mines on.
func ParseProxyURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("proxy %q: want socks5h://host:port (or socks5://, optionally user:pass@)", safetext.URL(s))
	}
	switch strings.ToLower(u.Scheme) {
	case "socks5", "socks5h":
	default:
		return nil, fmt.Errorf("proxy %q: scheme %q is not supported: use socks5h://host:port", safetext.URL(u.String()), u.Scheme)
	}
	if u.Port() == "" {
		return nil, fmt.Errorf("proxy %q has no port: add one, e.g. socks5h://%s:1080", safetext.URL(u.String()), u.Hostname())
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return nil, fmt.Errorf("proxy %q: remove the path or query, want socks5h://host:port", safetext.URL(u.String()))
	}
	u.Scheme = strings.ToLower(u.Scheme)
	return u, nil
}

// forward adapts a Dialer to what x/net/proxy dials the proxy itself with.
type forward struct{ d Dialer }

func (f forward) Dial(network, addr string) (net.Conn, error) {
	return f.d(context.Background(), network, addr)
}

func (f forward) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return f.d(ctx, network, addr)
}

// ViaProxy returns a Dialer that reaches addr through the SOCKS5 proxy at
// raw, reaching the proxy itself with d. The pool's host name is sent to
// the proxy unresolved. Every upstream kind (pools, nodes, V2) dials with it.
func ViaProxy(d Dialer, raw string) (Dialer, error) {
	u, err := ParseProxyURL(raw)
	if err != nil {
		return nil, err
	}
	pd, err := proxy.FromURL(u, forward{d})
	if err != nil {
		return nil, fmt.Errorf("proxy %q: %w", safetext.URL(u.String()), err)
	}
	cd, ok := pd.(proxy.ContextDialer)
	if !ok {
		return nil, fmt.Errorf("proxy %q: dialer cannot be cancelled", safetext.URL(u.String()))
	}
	return cd.DialContext, nil
}

// ErrTLSOnPlainURL is returned when a stratum+tcp:// pool answers in TLS.
var ErrTLSOnPlainURL = errors.New("the pool answered in TLS")

// plainConn spots a stratum+tcp:// URL that points at a TLS port: the
// server's first bytes are then a TLS record (an alert or a handshake),
// which would otherwise surface as a garbage line and a timeout.
type plainConn struct {
	net.Conn
	checked bool
}

func (c *plainConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if !c.checked && n == 0 && errors.Is(err, io.EOF) {
		// A TLS server drops a connection whose first bytes are not TLS.
		return 0, fmt.Errorf("%w: the pool closed the connection before sending anything (if this port speaks TLS, write stratum+tls://)", err)
	}
	if !c.checked && n > 0 {
		c.checked = true
		// TLS record types 21 (alert) and 22 (handshake), version 3.x.
		if (b[0] == 21 || b[0] == 22) && (n < 2 || b[1] == 3) {
			return 0, fmt.Errorf("%w: this port wants stratum+tls:// (or stratum+ssl://), not stratum+tcp://", ErrTLSOnPlainURL)
		}
	}
	return n, err
}

// ErrLineTooLong is returned when a pool sends more than the line cap
// without a newline; the connection is then dropped.
var ErrLineTooLong = errors.New("line too long")

// lineReader frames newline-terminated lines with a hard cap, so a pool that
// never sends a newline cannot make memory grow.
type lineReader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 4096), max: max}
}

// ReadLine returns the next line without "\n" or "\r\n". The slice is valid
// until the next call.
func (l *lineReader) ReadLine() ([]byte, error) {
	l.buf = l.buf[:0]
	for {
		frag, err := l.r.ReadSlice('\n')
		if len(l.buf)+len(frag) > l.max+2 {
			return nil, fmt.Errorf("%w: over %d bytes without a newline", ErrLineTooLong, l.max)
		}
		if err == nil {
			var line []byte
			if len(l.buf) == 0 {
				line = frag
			} else {
				l.buf = append(l.buf, frag...)
				line = l.buf
			}
			line = line[:len(line)-1]
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			if len(line) > l.max {
				return nil, fmt.Errorf("%w: over %d bytes without a newline", ErrLineTooLong, l.max)
			}
			return line, nil
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			l.buf = append(l.buf, frag...)
			continue
		}
		return nil, err
	}
}
