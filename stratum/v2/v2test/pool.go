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
	// Extended serves extended channels (and only them): coinbase-carrying
	// jobs, whose shares are judged by rebuilding the coinbase with the
	// client's extranonce of ExtranonceSize bytes [8].
	Extended       bool
	ExtranonceSize int
}

// Share is one submit the pool judged.
type Share struct {
	Msg        codec.SubmitSharesStandard
	Extranonce []byte // of an extended channel's share
	Accepted   bool
	Reason     string
	Hash       [32]byte // internal byte order, when it was hashed
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
	down   bool // SetDown: connections are closed as they come
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
	// an extended job's coinbase around prefix || extranonce, and the
	// merkle path of the coinbase
	pre, suf []byte
	path     [][32]byte
}

// Prefix is the extranonce prefix every channel is opened with.
var Prefix = []byte{0xaa, 0xbb}

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
	if cfg.ExtranonceSize == 0 {
		cfg.ExtranonceSize = 8
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

// SetDown makes the pool unreachable (every connection dropped, new ones
// closed at once) or reachable again, at the same address and key.
func (p *Pool) SetDown(down bool) {
	p.mu.Lock()
	p.down = down
	var conns []*Conn
	if down {
		conns = p.conns
		p.conns = nil
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.nc.Close()
	}
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
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			nc.Close()
			continue
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
	flags := p.cfg.SetupFlags
	if p.cfg.Extended {
		flags |= codec.FlagRequiresExtendedChannels
	}
	if err := conn.WriteMessage(&codec.SetupConnectionSuccess{UsedVersion: 2, Flags: flags}); err != nil {
		return err
	}
	if p.cfg.SetupFlags&codec.FlagRequiresExtendedChannels != 0 && !p.cfg.Extended {
		_, _, _ = conn.ReadMessage()
		return nil
	}
	m, _, err = conn.ReadMessage()
	if err != nil {
		return err
	}
	var reqID uint32
	switch op := m.(type) {
	case *codec.OpenStandardMiningChannel:
		if p.cfg.Extended {
			return conn.WriteMessage(&codec.OpenMiningChannelError{RequestID: op.RequestID, ErrorCode: "extended-channels-only"})
		}
		c.Open, reqID = *op, op.RequestID
	case *codec.OpenExtendedMiningChannel:
		if !p.cfg.Extended {
			return conn.WriteMessage(&codec.OpenMiningChannelError{RequestID: op.RequestID, ErrorCode: "standard-channels-only"})
		}
		c.Open, reqID = op.OpenStandardMiningChannel, op.RequestID
	default:
		return errors.New("not OpenStandardMiningChannel")
	}
	if p.cfg.RefuseChannel != "" {
		return conn.WriteMessage(&codec.OpenMiningChannelError{RequestID: reqID, ErrorCode: p.cfg.RefuseChannel})
	}
	var open codec.Message = &codec.OpenStandardMiningChannelSuccess{RequestID: reqID, ChannelID: 7, Target: c.target, ExtranoncePrefix: Prefix}
	if p.cfg.Extended {
		open = &codec.OpenExtendedMiningChannelSuccess{RequestID: reqID, ChannelID: 7, Target: c.target, ExtranonceSize: uint16(p.cfg.ExtranonceSize), ExtranoncePrefix: Prefix}
	}
	if err := conn.WriteMessage(open); err != nil {
		return err
	}
	_ = c.nc.SetDeadline(time.Time{})
	if err := c.NewBlock(); err != nil {
		return err
	}
	select {
	case p.newc <- c:
	default: // a test that never calls Next must not stall the pool
	}
	for {
		m, _, err := conn.ReadMessage()
		if err != nil {
			return err
		}
		switch m := m.(type) {
		case *codec.SubmitSharesStandard:
			if err := c.judge(m, nil); err != nil {
				return err
			}
		case *codec.SubmitSharesExtended:
			if err := c.judge(&m.SubmitSharesStandard, m.Extranonce); err != nil {
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

// newJobLocked makes job id: a merkle root, or for an extended channel a
// coinbase (whose script holds the prefix and the client's extranonce)
// and the merkle path of two other transactions.
func (c *Conn) newJobLocked(prev [32]byte) job {
	j := job{root: random32(), ver: 0x20000000, prev: prev}
	if c.p.cfg.Extended {
		n := c.nextJob
		script := 4 + len(Prefix) + c.p.cfg.ExtranonceSize
		j.pre = append([]byte{2, 0, 0, 0, 1}, make([]byte, 32)...)
		j.pre = append(j.pre, 0xff, 0xff, 0xff, 0xff, byte(script), 3, byte(n), byte(n>>8), byte(n>>16))
		j.suf = []byte{0xff, 0xff, 0xff, 0xff, 1, 0, 0xf2, 0x05, 0x2a, 1, 0, 0, 0, 1, 0x51, 0, 0, 0, 0}
		j.path = [][32]byte{random32(), random32()}
	}
	return j
}

func (c *Conn) sendJob(id uint32, j job, minNTime *uint32) error {
	if c.p.cfg.Extended {
		return c.c.WriteMessage(&codec.NewExtendedMiningJob{ChannelID: 7, JobID: id, MinNTime: minNTime, Version: j.ver, VersionRollingAllowed: true,
			MerklePath: j.path, CoinbaseTxPrefix: j.pre, CoinbaseTxSuffix: j.suf})
	}
	return c.c.WriteMessage(&codec.NewMiningJob{ChannelID: 7, JobID: id, MinNTime: minNTime, Version: j.ver, MerkleRoot: j.root})
}

// NewBlock sends a future job and activates it with a new prevhash.
func (c *Conn) NewBlock() error {
	c.mu.Lock()
	id := c.nextJob
	j := c.newJobLocked(random32())
	c.nextJob++
	c.jobs = map[uint32]job{id: j}
	c.prev = j.prev
	c.minNTime = uint32(time.Now().Unix())
	c.mu.Unlock()
	if err := c.sendJob(id, j, nil); err != nil {
		return err
	}
	return c.c.WriteMessage(&codec.SetNewPrevHash{ChannelID: 7, JobID: id, PrevHash: j.prev, MinNTime: c.minNTime, NBits: c.p.cfg.NBits})
}

// NewJob sends an active job on the current prevhash.
func (c *Conn) NewJob() error {
	c.mu.Lock()
	id := c.nextJob
	j := c.newJobLocked(c.prev)
	c.nextJob++
	c.jobs[id] = j
	nt := c.minNTime
	c.mu.Unlock()
	return c.sendJob(id, j, &nt)
}

// Target is the channel's target now.
func (c *Conn) Target() [32]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.target
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

func sha256d(b []byte) [32]byte {
	a := sha256.Sum256(b)
	return sha256.Sum256(a[:])
}

func (c *Conn) judge(m *codec.SubmitSharesStandard, extranonce []byte) error {
	c.mu.Lock()
	j, ok := c.jobs[m.JobID]
	target := c.target
	minNT := c.minNTime
	c.mu.Unlock()
	reason := ""
	var hash [32]byte
	switch {
	case !ok:
		reason = "stale-share"
	case (extranonce != nil) != c.p.cfg.Extended:
		reason = "wrong-channel-kind"
	case extranonce != nil && len(extranonce) != c.p.cfg.ExtranonceSize:
		reason = "invalid-extranonce-size"
	default:
		root := j.root
		if extranonce != nil {
			cb := append(append(append(append([]byte(nil), j.pre...), Prefix...), extranonce...), j.suf...)
			root = sha256d(cb)
			for _, p := range j.path {
				root = sha256d(append(root[:], p[:]...))
			}
		}
		var h [80]byte
		binary.LittleEndian.PutUint32(h[0:], m.Version)
		copy(h[4:36], j.prev[:])
		copy(h[36:68], root[:])
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
	c.p.shares = append(c.p.shares, Share{Msg: *m, Extranonce: append([]byte(nil), extranonce...), Accepted: reason == "", Reason: reason, Hash: hash})
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
