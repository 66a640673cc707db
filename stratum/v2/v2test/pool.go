package v2test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/stretchr/testify/require"

	"clminer/stratum/v2/codec"
	"clminer/stratum/v2/noise"
)

// Behaviour switches a test sets before clients connect.
type Config struct {
	// CertFrom/CertUntil: the certificate's window [now-1h, now+1h].
	CertFrom, CertUntil time.Time
	SetupFlags          uint32 // SetupConnection.Success flags
	RefuseChannel       string // OpenMiningChannel.Error code, when set
	Target              [32]byte
	BatchSize           int // shares per SubmitShares.Success [1]
	NBits               uint32
}

// Share is one submit the pool judged.
type Share struct {
	Msg      codec.SubmitSharesStandard
	Accepted bool
	Reason   string
}

// Pool serves one channel per connection.
type Pool struct {
	t         testing.TB
	cfg       Config
	ln        net.Listener
	Authority noise.AuthorityKey
	resp      noise.Responder

	mu     sync.Mutex
	conns  []*Conn
	shares []Share
	seen   map[[32]byte]bool
	newc   chan *Conn
	wg     sync.WaitGroup
}

// Conn is the pool's side of one client.
type Conn struct {
	p        *Pool
	nc       net.Conn
	c        *noise.Conn
	Setup    codec.SetupConnection
	Open     codec.OpenStandardMiningChannel
	Updates  chan codec.UpdateChannel
	mu       sync.Mutex
	jobs     map[uint32]job
	prev     [32]byte
	minNTime uint32
	target   [32]byte
	unacked  uint32
	lastSeq  uint32
	nextJob  uint32
}

type job struct {
	root [32]byte
	ver  uint32
	prev [32]byte
}

// EasyTarget is met by about one hash in 16.
func EasyTarget() (t [32]byte) {
	for i := range t {
		t[i] = 0xff
	}
	t[31] = 0x0f
	return t
}

// Start listens on loopback; everything stops at test cleanup.
func Start(t testing.TB, cfg Config) *Pool {
	auth, err := btcec.NewPrivateKey()
	require.NoError(t, err)
	return StartWith(t, cfg, auth)
}

// StartWith is Start with a given authority (two servers of one pool).
func StartWith(t testing.TB, cfg Config, auth *btcec.PrivateKey) *Pool {
	now := time.Now()
	if cfg.CertFrom.IsZero() {
		cfg.CertFrom = now.Add(-time.Hour)
	}
	if cfg.CertUntil.IsZero() {
		cfg.CertUntil = now.Add(time.Hour)
	}
	if cfg.Target == ([32]byte{}) {
		cfg.Target = EasyTarget()
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 1
	}
	if cfg.NBits == 0 {
		cfg.NBits = 0x207fffff
	}
	static, err := noise.NewKey()
	require.NoError(t, err)
	x, err := noise.XOnly(static.Pub)
	require.NoError(t, err)
	cert, err := noise.SignCertificate(auth, x, cfg.CertFrom, cfg.CertUntil)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &Pool{t: t, cfg: cfg, ln: ln, Authority: noise.AuthorityOf(auth), resp: noise.Responder{Static: static, Cert: cert},
		seen: map[[32]byte]bool{}, newc: make(chan *Conn, 16)}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// URL is the stratum2+tcp URL of the pool.
func (p *Pool) URL() string {
	return "stratum2+tcp://" + p.ln.Addr().String() + "/" + p.Authority.String()
}

// Addr is host:port.
func (p *Pool) Addr() string { return p.ln.Addr().String() }

// Close stops the pool and every connection.
func (p *Pool) Close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.nc.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// Next waits for the next client to open its channel.
func (p *Pool) Next(timeout time.Duration) *Conn {
	select {
	case c := <-p.newc:
		return c
	case <-time.After(timeout):
		p.t.Errorf("v2test: no client opened a channel within %v", timeout)
		return nil
	}
}

// Shares returns every share judged so far.
func (p *Pool) Shares() []Share {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Share(nil), p.shares...)
}

func (p *Pool) accept() {
	defer p.wg.Done()
	for {
		nc, err := p.ln.Accept()
		if err != nil {
			return
		}
		c := &Conn{p: p, nc: nc, jobs: map[uint32]job{}, target: p.cfg.Target, Updates: make(chan codec.UpdateChannel, 16), nextJob: 1}
		p.mu.Lock()
		p.conns = append(p.conns, c)
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer nc.Close()
			_ = c.serve()
		}()
	}
}

func (c *Conn) serve() error {
	p := c.p
	_ = c.nc.SetDeadline(time.Now().Add(10 * time.Second))
	conn, err := p.resp.Accept(c.nc, 0)
	if err != nil {
		return err
	}
	c.c = conn
	m, _, err := conn.ReadMessage()
	if err != nil {
		return err
	}
	sc, ok := m.(*codec.SetupConnection)
	if !ok {
		return errors.New("not SetupConnection")
	}
	c.Setup = *sc
	if err := conn.WriteMessage(&codec.SetupConnectionSuccess{UsedVersion: 2, Flags: p.cfg.SetupFlags}); err != nil {
		return err
	}
	if p.cfg.SetupFlags&codec.FlagRequiresExtendedChannels != 0 {
		_, _, _ = conn.ReadMessage()
		return nil
	}
	m, _, err = conn.ReadMessage()
	if err != nil {
		return err
	}
	op, ok := m.(*codec.OpenStandardMiningChannel)
	if !ok {
		return errors.New("not OpenStandardMiningChannel")
	}
	c.Open = *op
	if p.cfg.RefuseChannel != "" {
		return conn.WriteMessage(&codec.OpenMiningChannelError{RequestID: op.RequestID, ErrorCode: p.cfg.RefuseChannel})
	}
	if err := conn.WriteMessage(&codec.OpenStandardMiningChannelSuccess{RequestID: op.RequestID, ChannelID: 7, Target: c.target, ExtranoncePrefix: []byte{0xaa, 0xbb}}); err != nil {
		return err
	}
	_ = c.nc.SetDeadline(time.Time{})
	if err := c.NewBlock(); err != nil {
		return err
	}
	p.newc <- c
	for {
		m, _, err := conn.ReadMessage()
		if err != nil {
			return err
		}
		switch m := m.(type) {
		case *codec.SubmitSharesStandard:
			if err := c.judge(m); err != nil {
				return err
			}
		case *codec.UpdateChannel:
			select {
			case c.Updates <- *m:
			default:
			}
		}
	}
}

func random32() (b [32]byte) {
	_, _ = rand.Read(b[:])
	return b
}

// NewBlock sends a future job and activates it with a new prevhash.
func (c *Conn) NewBlock() error {
	c.mu.Lock()
	id := c.nextJob
	c.nextJob++
	j := job{root: random32(), ver: 0x20000000, prev: random32()}
	c.jobs = map[uint32]job{id: j}
	c.prev = j.prev
	c.minNTime = uint32(time.Now().Unix())
	c.mu.Unlock()
	if err := c.c.WriteMessage(&codec.NewMiningJob{ChannelID: 7, JobID: id, Version: j.ver, MerkleRoot: j.root}); err != nil {
		return err
	}
	return c.c.WriteMessage(&codec.SetNewPrevHash{ChannelID: 7, JobID: id, PrevHash: j.prev, MinNTime: c.minNTime, NBits: c.p.cfg.NBits})
}

// NewJob sends an active job on the current prevhash.
func (c *Conn) NewJob() error {
	c.mu.Lock()
	id := c.nextJob
	c.nextJob++
	j := job{root: random32(), ver: 0x20000000, prev: c.prev}
	c.jobs[id] = j
	nt := c.minNTime
	c.mu.Unlock()
	return c.c.WriteMessage(&codec.NewMiningJob{ChannelID: 7, JobID: id, MinNTime: &nt, Version: j.ver, MerkleRoot: j.root})
}

// SetTarget changes the channel's target at once.
func (c *Conn) SetTarget(t [32]byte) error {
	c.mu.Lock()
	c.target = t
	c.mu.Unlock()
	return c.c.WriteMessage(&codec.SetTarget{ChannelID: 7, MaximumTarget: t})
}

// Send writes any message (Reconnect, CloseChannel, ...).
func (c *Conn) Send(m codec.Message) error { return c.c.WriteMessage(m) }

// Drop closes the connection.
func (c *Conn) Drop() { c.nc.Close() }

// meets reports whether hash (internal order) is at most target, both
// little-endian 256-bit numbers.
func meets(hash, target [32]byte) bool {
	for i := 31; i >= 0; i-- {
		if hash[i] != target[i] {
			return hash[i] < target[i]
		}
	}
	return true
}

func (c *Conn) judge(m *codec.SubmitSharesStandard) error {
	c.mu.Lock()
	j, ok := c.jobs[m.JobID]
	target := c.target
	minNT := c.minNTime
	c.mu.Unlock()
	reason := ""
	var hash [32]byte
	if !ok {
		reason = "stale-share"
	} else {
		var h [80]byte
		binary.LittleEndian.PutUint32(h[0:], m.Version)
		copy(h[4:36], j.prev[:])
		copy(h[36:68], j.root[:])
		binary.LittleEndian.PutUint32(h[68:], m.NTime)
		binary.LittleEndian.PutUint32(h[72:], c.p.cfg.NBits)
		binary.LittleEndian.PutUint32(h[76:], m.Nonce)
		a := sha256.Sum256(h[:])
		hash = sha256.Sum256(a[:])
		switch {
		case m.ChannelID != 7:
			reason = "invalid-channel-id"
		case (m.Version^j.ver)&^0x1fffe000 != 0:
			reason = "invalid-version"
		case m.NTime < minNT:
			reason = "invalid-timestamp"
		case !meets(hash, target):
			reason = "difficulty-too-low"
		}
	}
	c.p.mu.Lock()
	if reason == "" && c.p.seen[hash] {
		reason = "duplicate-share"
	}
	if reason == "" {
		c.p.seen[hash] = true
	}
	c.p.shares = append(c.p.shares, Share{Msg: *m, Accepted: reason == "", Reason: reason})
	c.p.mu.Unlock()
	if reason != "" {
		return c.c.WriteMessage(&codec.SubmitSharesError{ChannelID: m.ChannelID, SequenceNumber: m.SequenceNumber, ErrorCode: reason})
	}
	c.mu.Lock()
	c.unacked++
	c.lastSeq = m.SequenceNumber
	n := c.unacked
	flush := int(n) >= c.p.cfg.BatchSize
	if flush {
		c.unacked = 0
	}
	c.mu.Unlock()
	if !flush {
		return nil
	}
	return c.c.WriteMessage(&codec.SubmitSharesSuccess{ChannelID: 7, LastSequenceNumber: m.SequenceNumber, NewSubmitsAcceptedCount: n, NewSharesSum: uint64(n)})
}
