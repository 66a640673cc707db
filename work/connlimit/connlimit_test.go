package connlimit

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPeerKey(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.168.1.7"), Port: 5}, "192.168.1.7"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:10.0.0.1"), Port: 5}, "10.0.0.1"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:aaaa::1"), Port: 5}, "2001:db8:1:2::/64"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:bbbb::9"), Port: 6}, "2001:db8:1:2::/64"},
		{&net.UnixAddr{Name: "/run/x", Net: "unix"}, "/run/x"},
	} {
		assert.Equal(t, tc.want, PeerKey(tc.addr), "%v", tc.addr)
	}
}

type harness struct {
	t       *testing.T
	l       *Listener
	got     chan *Conn
	refused chan struct{}
	done    chan struct{}
}

func listen(t *testing.T, lim Limits) *harness {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	h := &harness{t: t, got: make(chan *Conn, 64), refused: make(chan struct{}, 64), done: make(chan struct{})}
	lim.OnDrop = func(_ net.Addr, why string) {
		if strings.HasPrefix(why, "refused") {
			h.refused <- struct{}{}
		}
	}
	if allow := lim.Allow; allow != nil {
		lim.Allow = func(a net.Addr) bool {
			ok := allow(a)
			if !ok {
				h.refused <- struct{}{}
			}
			return ok
		}
	}
	h.l = Wrap(ln, lim)
	go func() {
		defer close(h.done)
		for {
			c, err := h.l.Accept()
			if err != nil {
				return
			}
			h.got <- c.(*Conn)
		}
	}()
	t.Cleanup(func() {
		h.l.Close()
		<-h.done
		close(h.got)
		for c := range h.got {
			c.Close()
		}
	})
	return h
}

// dial connects from ip and returns the client side and, once admitted,
// the server side (nil when refused: the client then reads EOF).
func (h *harness) dial(ip string) (net.Conn, *Conn) {
	h.t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", h.l.Addr().String())
	require.NoError(h.t, err)
	h.t.Cleanup(func() { c.Close() })
	select {
	case s := <-h.got:
		return c, s
	case <-h.refused:
		return c, nil
	}
}

// closedByServer reads until the server closes c.
func closedByServer(t *testing.T, c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 1))
	return err == io.EOF || err != nil && !isTimeout(err)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// A peer's idle connections past its limit close its own oldest; an
// active one is never closed, and a peer with only active connections is
// refused.
func TestPerPeerClosesOldestIdle(t *testing.T) {
	h := listen(t, Limits{Total: 100, PerPeer: 3})
	c1, s1 := h.dial("127.0.2.1")
	require.NotNil(t, s1)
	_, s2 := h.dial("127.0.2.1")
	_, s3 := h.dial("127.0.2.1")
	require.NotNil(t, s2)
	require.NotNil(t, s3)
	s2.Activate()
	_, s4 := h.dial("127.0.2.1")
	require.NotNil(t, s4, "the fourth is admitted in place of the oldest idle")
	assert.True(t, closedByServer(t, c1), "the oldest idle connection was closed")
	_, ev := h.l.Stats()
	assert.EqualValues(t, 1, ev)
	s3.Activate()
	s4.Activate()
	c5, s5 := h.dial("127.0.2.1")
	assert.Nil(t, s5, "every connection of the peer is active: refused")
	assert.True(t, closedByServer(t, c5))
	_, other := h.dial("127.0.2.2")
	assert.NotNil(t, other, "another peer is not affected")
	assert.Equal(t, 4, h.l.Open())
	s2.Close()
	s2.Close() // twice is harmless
	_, s6 := h.dial("127.0.2.1")
	assert.NotNil(t, s6, "a closed connection frees its place")
}

// At the total limit the oldest idle connection of any peer makes room;
// a connection turns active with its first byte when ActiveOnRead.
func TestTotalClosesOldestIdleAnywhere(t *testing.T) {
	h := listen(t, Limits{Total: 2, PerPeer: 2, ActiveOnRead: true})
	c1, s1 := h.dial("127.0.3.1")
	require.NotNil(t, s1)
	c2, s2 := h.dial("127.0.3.2")
	require.NotNil(t, s2)
	_, err := c1.Write([]byte("x"))
	require.NoError(t, err)
	_, err = io.ReadFull(s1, make([]byte, 1))
	require.NoError(t, err)
	_, s3 := h.dial("127.0.3.3")
	require.NotNil(t, s3)
	assert.True(t, closedByServer(t, c2), "the idle one made room, not the one that sent a byte")
	s1.Idle() // back to idle (a keep-alive connection between requests)
	s3.Activate()
	_, s4 := h.dial("127.0.3.4")
	require.NotNil(t, s4)
	assert.True(t, closedByServer(t, c1))
	assert.Equal(t, 2, h.l.Open())
}

func TestIdlePerPeer(t *testing.T) {
	h := listen(t, Limits{Total: 100, PerPeer: 10, IdlePerPeer: 2})
	var clients []net.Conn
	for i := 0; i < 5; i++ {
		c, s := h.dial("127.0.4.1")
		require.NotNil(t, s)
		clients = append(clients, c)
	}
	for _, c := range clients[:3] {
		assert.True(t, closedByServer(t, c))
	}
	assert.Equal(t, 2, h.l.Open())
}

func TestAllow(t *testing.T) {
	h := listen(t, Limits{Allow: func(a net.Addr) bool { return PeerKey(a) == "127.0.5.1" }})
	_, s := h.dial("127.0.5.1")
	assert.NotNil(t, s)
	c, s := h.dial("127.0.5.2")
	assert.Nil(t, s)
	assert.True(t, closedByServer(t, c))
	r, _ := h.l.Stats()
	assert.Zero(t, r, "not allowed is not counted as refused")
}

func TestBuckets(t *testing.T) {
	now := time.Unix(1000, 0)
	b := NewBuckets(0.5, 3, 4)
	b.now = func() time.Time { return now }
	for i := 0; i < 3; i++ {
		assert.True(t, b.Take("a"))
	}
	assert.False(t, b.Allow("a"))
	assert.False(t, b.Take("a"))
	assert.True(t, b.Allow("b"), "another peer has its own")
	now = now.Add(2 * time.Second)
	assert.True(t, b.Take("a"), "refilled at 0.5/s")
	assert.False(t, b.Take("a"))
	now = now.Add(time.Minute)
	assert.True(t, b.Allow("a"))
	assert.Zero(t, b.Len(), "a full bucket is forgotten")
	for i := 0; i < 100; i++ {
		b.Take(fmt.Sprint(i))
	}
	assert.Equal(t, 4, b.Len(), "the table is bounded")
	// A table full of peers in debt refuses newcomers rather than forget
	// one: cycling through more addresses than it holds buys no tries.
	for i := 0; i < 4; i++ {
		for b.Take(fmt.Sprint(i)) {
		}
	}
	assert.False(t, b.Take("new"), "full of peers in debt")
	assert.False(t, b.Take("0"), "and the forgotten-first is still in debt")
	now = now.Add(time.Minute)
	assert.True(t, b.Take("new"), "once the oldest has refilled it makes room")
	assert.LessOrEqual(t, b.Len(), 4)
}

// A newcomer that takes the place of its own address's last idle
// connection keeps that address's count: the address never gets a fresh
// budget, however often it repeats the trick, and its connections put to
// work stay within PerPeer (the peer's entry was once dropped while in use).
func TestReplacingOwnLastConnectionKeepsTheCount(t *testing.T) {
	h := listen(t, Limits{Total: 100, PerPeer: 1})
	var active int
	for range 10 {
		_, idle := h.dial("127.0.5.1")
		if idle == nil {
			continue
		}
		_, s := h.dial("127.0.5.1")
		if s != nil {
			s.Activate()
			active++
		}
	}
	assert.LessOrEqual(t, active, 1, "one address holds at most PerPeer connections")
	assert.LessOrEqual(t, h.l.Open(), 1)
}

// The same through the total limit: the oldest idle connection anywhere is
// the newcomer's own address's only one.
func TestTotalVictimOfOwnAddressKeepsTheCount(t *testing.T) {
	h := listen(t, Limits{Total: 3, PerPeer: 2})
	_, a1 := h.dial("127.0.6.1")
	require.NotNil(t, a1)
	_, b1 := h.dial("127.0.6.2")
	_, b2 := h.dial("127.0.6.2")
	require.NotNil(t, b1)
	require.NotNil(t, b2)
	active := 0
	for range 4 {
		if _, s := h.dial("127.0.6.1"); s != nil {
			s.Activate()
			active++
		}
	}
	assert.LessOrEqual(t, active, 2, "the address stays within PerPeer")
	assert.LessOrEqual(t, h.l.Open(), 3)
}
