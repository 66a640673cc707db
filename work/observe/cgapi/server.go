package cgapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"clminer/work/connlimit"
	"clminer/work/retry"
)

// Limits on what a peer can make the server hold. A request is one short
// line; cgminer itself reads a single buffer of this order. Rig managers
// send it as soon as they connect, so a connection silent for
// firstByteTimeout is dropped; past maxConns (maxConnsPerPeer from one
// address) the oldest connection that has sent nothing yet is closed to
// make room (package connlimit), so silent sockets cannot keep legitimate
// requests out.
const (
	maxRequest       = 4096
	maxJoined        = 32 // distinct commands in one joined request: every report command fits
	maxConns         = 16
	maxConnsPerPeer  = 4
	firstByteTimeout = 2 * time.Second
	connTimeout      = 5 * time.Second
	// moreGrace is how long a JSON request that is incomplete in its first
	// bytes may take to arrive whole.
	moreGrace = 100 * time.Millisecond
)

// Config is what the server answers from.
type Config struct {
	// Version is clminer's version, for VERSION and the STATUS Description.
	Version string
	// State is called once per request.
	State func() State
	// Allow lists the networks that may connect besides loopback, which
	// always may. Others are disconnected without a reply.
	Allow []netip.Prefix
	// LogInterval is the status line period in seconds, for CONFIG.
	LogInterval int
	// Now is the clock for the STATUS When field [time.Now].
	Now func() time.Time
}

// Server serves the API on one listener.
type Server struct {
	cfg Config
	ln  net.Listener
	wg  sync.WaitGroup
}

// New serves cfg on ln, which the caller binds (so that a busy port fails
// at start-up) and the server owns from here: Run closes it.
func New(ln net.Listener, cfg Config) (*Server, error) {
	if cfg.State == nil {
		return nil, errors.New("cgapi: no State")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg}
	s.ln = connlimit.Wrap(ln, connlimit.Limits{Total: maxConns, PerPeer: maxConnsPerPeer, ActiveOnRead: true, Allow: s.allowed})
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run accepts connections until ctx ends, then stops accepting and returns
// once the requests in progress, each bounded by connTimeout, are answered.
func (s *Server) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = s.ln.Close() })
	defer stop()
	defer s.wg.Wait()
	defer s.ln.Close()
	// Out of descriptors and the like: wait rather than spin.
	wait := retry.Counter{Backoff: retry.Backoff{Initial: 5 * time.Millisecond, Max: time.Second}}
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			if retry.Sleep(ctx, wait.Failed()) != nil {
				return nil
			}
			continue
		}
		wait.Reset()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(c)
		}()
	}
}

func (s *Server) allowed(a net.Addr) bool {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	if ip.IsLoopback() {
		return true
	}
	for _, p := range s.cfg.Allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (s *Server) handle(c net.Conn) {
	defer c.Close()
	start := time.Now()
	_ = c.SetDeadline(start.Add(connTimeout))
	_ = c.SetReadDeadline(start.Add(firstByteTimeout))
	req, ok := readRequest(&firstByte{Conn: c, end: start.Add(connTimeout)})
	if !ok {
		return
	}
	_, _ = c.Write(s.Answer(req))
}

// firstByte lifts the first-byte read deadline to the request's once data
// arrives.
type firstByte struct {
	net.Conn
	end  time.Time
	seen bool
}

func (f *firstByte) Read(b []byte) (int, error) {
	n, err := f.Conn.Read(b)
	if n > 0 && !f.seen {
		f.seen = true
		_ = f.Conn.SetReadDeadline(f.end)
	}
	return n, err
}

// readRequest reads one request: up to a NUL or newline, the end of the
// stream, a complete JSON value, or (text form) the first bytes to arrive,
// which is how cgminer reads and what clients that send without closing
// expect. cgminer answers whatever its one read got; a JSON request that
// is not complete in the first bytes is given moreGrace for the rest (a
// request split across TCP segments), then answered as it stands - a
// truncated request gets cgminer's Invalid JSON at once, not after the
// connection's timeout.
func readRequest(c io.Reader) ([]byte, bool) {
	buf := make([]byte, 0, 256)
	tmp := make([]byte, 512)
	graced := false
	for {
		n, err := c.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if i := bytes.IndexAny(buf, "\x00\n"); i >= 0 {
			return buf[:i], true
		}
		if len(buf) > maxRequest {
			return nil, false
		}
		t := bytes.TrimSpace(buf)
		if len(t) > 0 && (t[0] != '{' || json.Valid(t)) {
			return buf, true
		}
		if err != nil {
			return buf, len(t) > 0
		}
		if d, ok := c.(interface{ SetReadDeadline(time.Time) error }); ok && len(t) > 0 && !graced {
			graced = true
			_ = d.SetReadDeadline(time.Now().Add(moreGrace))
		}
	}
}

// Answer returns the reply to one request, NUL-terminated as cgminer
// sends it (pycgminer drops the last byte before parsing).
func (s *Server) Answer(req []byte) []byte {
	a := &answerer{st: s.cfg.State(), now: s.cfg.Now(), desc: "clminer " + s.cfg.Version, version: s.cfg.Version, logInterval: s.cfg.LogInterval}
	var b bytes.Buffer
	req = bytes.TrimSpace(req)
	isJSON := len(req) > 0 && req[0] == '{'
	write := func(r reply) {
		if isJSON {
			r.jsonObject(&b)
		} else {
			r.textForm(&b)
		}
	}
	var cmd, param string
	if isJSON {
		var top map[string]json.RawMessage
		if json.Unmarshal(req, &top) != nil || top == nil {
			write(a.errorReply(codeInvJSON, "Invalid JSON"))
			return append(b.Bytes(), 0)
		}
		raw, has := top["command"]
		if !has {
			write(a.errorReply(codeMisCmd, "Missing JSON 'command'"))
			return append(b.Bytes(), 0)
		}
		if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &cmd) != nil {
			write(a.errorReply(codeInvCmd, "Invalid command")) // not a string
			return append(b.Bytes(), 0)
		}
		param = paramString(top["parameter"])
	} else {
		cmd, param, _ = strings.Cut(string(req), "|")
	}
	if !strings.Contains(cmd, "+") {
		write(a.answer(cmd, param))
		return append(b.Bytes(), 0)
	}
	// A joined request (API 3.1): each command's reply under its name,
	// {"summary":[{...}],"devs":[{...}],"id":1} or
	// CMD=summary|STATUS=...|CMD=devs|STATUS=...|, in the order asked. As in
	// cgminer, blanks and repeated commands are skipped, the layout is the
	// joined one even when one command is left, parameters are ignored, and
	// a command that cannot be joined (it takes a parameter, or changes the
	// miner) is refused on its own while the others are answered. (cgminer
	// answers a repeated unknown name each time; a JSON object cannot hold
	// a key twice, so here every name is answered once.)
	if isJSON {
		b.WriteByte('{')
	}
	seen := map[string]bool{}
	for _, c := range strings.Split(cmd, "+") {
		if c == "" || seen[c] {
			continue
		}
		if len(seen) == maxJoined {
			break
		}
		seen[c] = true
		var r reply
		if k, ok := commands[c]; ok && k.joinable {
			r = k.fn(a, "")
		} else if ok || privileged[c] {
			r = a.accessDenied(c)
		} else {
			r = a.errorReply(codeInvCmd, "Invalid command")
		}
		if isJSON {
			if len(seen) > 1 {
				b.WriteByte(',')
			}
			_, key := scalar(c)
			b.WriteString(key + ":[")
			r.jsonObject(&b)
			b.WriteByte(']')
		} else {
			b.WriteString("CMD=" + textEscape.Replace(c) + "|")
			r.textForm(&b)
		}
	}
	if isJSON {
		if len(seen) > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"id":1}`)
	}
	return append(b.Bytes(), 0)
}

// paramString accepts the parameter as a JSON string or a number (some
// clients send gpu|0 as {"parameter":0}), printed as cgminer prints it:
// an integer as such, a real with six decimals.
func paramString(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		return ""
	}
	if i, err := n.Int64(); err == nil {
		return strconv.FormatInt(i, 10)
	}
	if f, err := n.Float64(); err == nil {
		return strconv.FormatFloat(f, 'f', 6, 64)
	}
	return ""
}
