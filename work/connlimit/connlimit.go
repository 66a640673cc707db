package connlimit

import (
	"container/list"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
)

// PeerKey is the peer a limit counts a remote address against: the IPv4
// address, or the /64 of an IPv6 one (an IPv4-mapped address is IPv4). An
// address that is not IP counts as itself.
func PeerKey(a net.Addr) string {
	var ip netip.Addr
	switch t := a.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(t.IP)
	default:
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			ip = ap.Addr()
		}
	}
	if !ip.IsValid() {
		return a.String()
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// Limits are what a Listener admits. Zero values get the defaults in
// brackets.
type Limits struct {
	Total       int // open connections [256]
	PerPeer     int // open connections of one peer [16]
	IdlePerPeer int // idle connections of one peer [PerPeer]
	// ActiveOnRead makes a connection active when a read returns data (a
	// request arrived); otherwise only Activate does.
	ActiveOnRead bool
	// Allow, when set, admits only the addresses it accepts; the others are
	// closed at once and count against nothing.
	Allow func(net.Addr) bool
	// OnDrop is told of each connection refused or closed to make room,
	// without the listener's lock held.
	OnDrop func(remote net.Addr, why string)
}

// Listener wraps a net.Listener with Limits; its Accept returns *Conn.
type Listener struct {
	net.Listener
	lim Limits

	mu    sync.Mutex
	peers map[string]*peer
	idle  *list.List // *Conn, oldest idle first
	total int

	refused, evicted atomic.Uint64
}

type peer struct {
	key  string
	n    int
	idle *list.List // *Conn
}

// Conn is an admitted connection. Close releases its place.
type Conn struct {
	net.Conn
	l        *Listener
	p        *peer
	idleNow  atomic.Bool
	released bool          // guarded by l.mu
	gElem    *list.Element // in l.idle while idle
	pElem    *list.Element // in p.idle while idle
}

// Wrap applies lim to ln.
func Wrap(ln net.Listener, lim Limits) *Listener {
	if lim.Total <= 0 {
		lim.Total = 256
	}
	if lim.PerPeer <= 0 {
		lim.PerPeer = 16
	}
	if lim.IdlePerPeer <= 0 || lim.IdlePerPeer > lim.PerPeer {
		lim.IdlePerPeer = lim.PerPeer
	}
	return &Listener{Listener: ln, lim: lim, peers: map[string]*peer{}, idle: list.New()}
}

// Stats are the connections refused and those closed to make room.
func (l *Listener) Stats() (refused, evicted uint64) { return l.refused.Load(), l.evicted.Load() }

// Open is the number of connections admitted and not yet closed.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// Accept returns the next admitted connection, idle.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.lim.Allow != nil && !l.lim.Allow(nc.RemoteAddr()) {
			_ = nc.Close()
			continue
		}
		if c := l.admit(nc); c != nil {
			return c, nil
		}
	}
}

// admit places nc, closing the idle connections in its way; nil when it
// was refused.
func (l *Listener) admit(nc net.Conn) *Conn {
	key := PeerKey(nc.RemoteAddr())
	l.mu.Lock()
	p := l.peers[key]
	if p == nil {
		p = &peer{key: key, idle: list.New()}
		l.peers[key] = p
	}
	var victim *Conn
	why := ""
	switch {
	case p.n >= l.lim.PerPeer || p.idle.Len() >= l.lim.IdlePerPeer:
		if e := p.idle.Front(); e != nil {
			victim, why = e.Value.(*Conn), "its address opened another connection"
		}
	case l.total >= l.lim.Total:
		if e := l.idle.Front(); e != nil {
			victim, why = e.Value.(*Conn), "the server is at its connection limit"
		}
	}
	if victim == nil && (p.n >= l.lim.PerPeer || l.total >= l.lim.Total) {
		if p.n == 0 {
			delete(l.peers, key)
		}
		l.mu.Unlock()
		l.refused.Add(1)
		_ = nc.Close()
		if l.lim.OnDrop != nil {
			l.lim.OnDrop(nc.RemoteAddr(), "refused: connection limit reached and every connection in the way is active")
		}
		return nil
	}
	// Count the newcomer before releasing the victim: when the victim is
	// its address's last connection, the address's entry must not be
	// dropped (and rebuilt empty by the next connection) while in use.
	c := &Conn{Conn: nc, l: l, p: p}
	p.n++
	l.total++
	if victim != nil {
		l.releaseLocked(victim)
	}
	c.idleNow.Store(true)
	c.gElem = l.idle.PushBack(c)
	c.pElem = p.idle.PushBack(c)
	l.mu.Unlock()
	if victim != nil {
		l.evicted.Add(1)
		_ = victim.Conn.Close()
		if l.lim.OnDrop != nil {
			l.lim.OnDrop(victim.RemoteAddr(), "closed while idle to make room: "+why)
		}
	}
	return c
}

func (l *Listener) releaseLocked(c *Conn) {
	if c.released {
		return
	}
	c.released = true
	c.unlistLocked()
	c.p.n--
	l.total--
	if c.p.n == 0 && l.peers[c.p.key] == c.p {
		delete(l.peers, c.p.key)
	}
}

func (c *Conn) unlistLocked() {
	if c.gElem != nil {
		c.l.idle.Remove(c.gElem)
		c.p.idle.Remove(c.pElem)
		c.gElem, c.pElem = nil, nil
	}
	c.idleNow.Store(false)
}

// Activate marks the connection as doing work: it is no longer closed to
// make room.
func (c *Conn) Activate() {
	if !c.idleNow.Load() {
		return
	}
	c.l.mu.Lock()
	if !c.released {
		c.unlistLocked()
	}
	c.l.mu.Unlock()
}

// Idle marks the connection as waiting (an HTTP keep-alive connection
// between requests): the newest idle, closed last to make room.
func (c *Conn) Idle() {
	c.l.mu.Lock()
	if !c.released && c.gElem == nil {
		c.gElem = c.l.idle.PushBack(c)
		c.pElem = c.p.idle.PushBack(c)
		c.idleNow.Store(true)
	}
	c.l.mu.Unlock()
}

// Read activates the connection on data when the listener says so.
func (c *Conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && c.l.lim.ActiveOnRead && c.idleNow.Load() {
		c.Activate()
	}
	return n, err
}

// Close releases the connection's place and closes it.
func (c *Conn) Close() error {
	c.l.mu.Lock()
	c.l.releaseLocked(c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// ConnState is an http.Server ConnState hook: a keep-alive connection
// waiting for its next request is idle, a hijacked or closed one gone.
func (l *Listener) ConnState(nc net.Conn, st http.ConnState) {
	c, ok := nc.(*Conn)
	if !ok || c.l != l {
		return
	}
	switch st {
	case http.StateIdle:
		c.Idle()
	case http.StateHijacked, http.StateClosed:
		l.mu.Lock()
		l.releaseLocked(c)
		l.mu.Unlock()
	}
}
