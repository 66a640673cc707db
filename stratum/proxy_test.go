package stratum

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/stratum/pooltest"
	"clminer/work/source"
)

// socksServer is a minimal SOCKS5 server (RFC 1928 CONNECT, RFC 1929
// username/password), written from the RFCs rather than from the client
// library, so the test checks the wire protocol and not a library against
// itself. It serves names from its own table, as a proxy with its own DNS
// does, and records what each client asked for.
type socksServer struct {
	ln       net.Listener
	user     string
	pass     string
	names    map[string]string // host name -> address it resolves to
	mu       sync.Mutex
	requests []string // "fqdn pool.example:3333", "ipv4 1.2.3.4:5"
	wg       sync.WaitGroup
}

func startSocks(t *testing.T, user, pass string, names map[string]string) *socksServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &socksServer{ln: ln, user: user, pass: pass, names: names}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() { defer s.wg.Done(); s.serve(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *socksServer) log() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

func (s *socksServer) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	hdr := make([]byte, 2)
	if _, err := io.ReadFull(c, hdr); err != nil || hdr[0] != 5 {
		return
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(c, methods); err != nil {
		return
	}
	want := byte(0x00)
	if s.user != "" {
		want = 0x02
	}
	offered := false
	for _, m := range methods {
		offered = offered || m == want
	}
	if !offered {
		_, _ = c.Write([]byte{5, 0xff})
		return
	}
	_, _ = c.Write([]byte{5, want})
	if want == 0x02 {
		var ver [1]byte
		if _, err := io.ReadFull(c, ver[:]); err != nil || ver[0] != 1 {
			return
		}
		user, ok1 := readLenString(c)
		pass, ok2 := readLenString(c)
		if !ok1 || !ok2 || user != s.user || pass != s.pass {
			_, _ = c.Write([]byte{1, 1})
			return
		}
		_, _ = c.Write([]byte{1, 0})
	}
	req := make([]byte, 4)
	if _, err := io.ReadFull(c, req); err != nil || req[0] != 5 || req[1] != 1 {
		return
	}
	var host, kind string
	switch req[3] {
	case 1:
		b := make([]byte, 4)
		if _, err := io.ReadFull(c, b); err != nil {
			return
		}
		host, kind = net.IP(b).String(), "ipv4"
	case 3:
		h, ok := readLenString(c)
		if !ok {
			return
		}
		host, kind = h, "fqdn"
	case 4:
		b := make([]byte, 16)
		if _, err := io.ReadFull(c, b); err != nil {
			return
		}
		host, kind = net.IP(b).String(), "ipv6"
	default:
		return
	}
	var pb [2]byte
	if _, err := io.ReadFull(c, pb[:]); err != nil {
		return
	}
	target := net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(pb[:]))))
	s.mu.Lock()
	s.requests = append(s.requests, kind+" "+target)
	s.mu.Unlock()
	dst := target
	if kind == "fqdn" {
		addr, ok := s.names[target]
		if !ok {
			_, _ = c.Write([]byte{5, 4, 0, 1, 0, 0, 0, 0, 0, 0}) // host unreachable
			return
		}
		dst = addr
	}
	up, err := net.Dial("tcp", dst)
	if err != nil {
		_, _ = c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
		return
	}
	defer up.Close()
	_ = c.SetDeadline(time.Time{})
	_, _ = c.Write([]byte{5, 0, 0, 1, 127, 0, 0, 1, 0, 0})
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
	up.Close()
	c.Close()
	<-done
}

func readLenString(r io.Reader) (string, bool) {
	var n [1]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return "", false
	}
	b := make([]byte, n[0])
	if _, err := io.ReadFull(r, b); err != nil {
		return "", false
	}
	return string(b), true
}

// A pool reached through a SOCKS5 proxy that alone knows the pool's name:
// the client sends the name unresolved (socks5h), authenticates, and mines
// over the tunnel, TLS included, while the direct dialer is never asked
// for the pool.
func TestPoolThroughSOCKS5(t *testing.T) {
	for _, tc := range []struct {
		name, scheme string
		tls          bool
	}{{"socks5h plain", "socks5h", false}, {"socks5 resolves at the proxy too", "socks5", false}, {"socks5h TLS pinned", "socks5h", true}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := pooltest.Start(t, pooltest.Config{Difficulty: 0.00001, TLS: tc.tls})
			sx := startSocks(t, "rig", "pa:ss@w", map[string]string{"pool.invalid:3333": srv.Addr()})
			d := newTestDialer()
			r := newRecorder()
			opts := testOptions(r)
			opts.Dialer = d.dial
			// Finding the share under -race on a loaded machine can take
			// longer than the usual 5 s of pool silence.
			opts.ReadTimeout = 30 * time.Second
			pc := PoolConfig{URL: "stratum+tcp://pool.invalid:3333", User: "worker.1", Pass: "x",
				Proxy: tc.scheme + "://rig:pa%3Ass%40w@" + sx.ln.Addr().String()}
			if tc.tls {
				pc.URL, pc.Fingerprint = "stratum+tls://pool.invalid:3333", srv.Fingerprint()
			}
			c := runClient(t, []PoolConfig{pc}, opts, r)
			j := r.nextJob(t, nil)
			rep := waitReply(t, sendShare(c, mineShare(t, j, 1)))
			assert.Equal(t, source.Accepted, rep.Kind, "reason %q", rep.Reason)
			assert.Equal(t, []string{"fqdn pool.invalid:3333"}, sx.log()[:1], "the name goes to the proxy unresolved")
			assert.Zero(t, d.count("pool.invalid:3333"), "never dialled directly")
			assert.Positive(t, d.count(sx.ln.Addr().String()), "the proxy is reached with the client's dialer")
		})
	}
}

// Proxy failures are errors that say what failed, without the proxy's
// password; bad proxy URLs are one line.
func TestProxyErrors(t *testing.T) {
	sx := startSocks(t, "rig", "right", map[string]string{})
	u, err := ParsePoolURL("stratum+tcp://pool.invalid:3333")
	require.NoError(t, err)
	_, err = dial(context.Background(), defaultDialer(time.Second), 2*time.Second, u, u.Addr(),
		PoolConfig{Proxy: "socks5h://rig:wrong-secret@" + sx.ln.Addr().String()})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "wrong-secret")
	_, err = dial(context.Background(), defaultDialer(time.Second), 2*time.Second, u, u.Addr(),
		PoolConfig{Proxy: "socks5h://rig:right@" + sx.ln.Addr().String()})
	require.Error(t, err, "the proxy cannot resolve the name")
	assert.NotContains(t, err.Error(), "right@")

	for raw, want := range map[string]string{
		"http://proxy:3128":             `scheme "http" is not supported`,
		"socks5h://proxy":               "has no port",
		"socks5h://u:hunter2@proxy":     "has no port",
		"proxy:1080":                    "want socks5h://host:port",
		"socks5h://proxy:1080/x":        "remove the path",
		"socks5h://u:hunter2@proxy:1/x": "remove the path",
	} {
		_, err := ParseProxyURL(raw)
		require.Error(t, err, raw)
		assert.Contains(t, err.Error(), want, raw)
		assert.NotContains(t, err.Error(), "hunter2", raw)
	}
	_, err = ParseProxyURL("socks5h://u:p@127.0.0.1:1080")
	assert.NoError(t, err)
}
