package stratum

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/charmbracelet/log"
	"go.uber.org/goleak"

	"clminer/stratum/wire"
	"clminer/work"
	"clminer/work/retry"
	"clminer/work/source"
)

// FuzzDecodeLine feeds arbitrary lines through the codec and every typed
// parser; none may panic, and a decoded message must be classified.
func FuzzDecodeLine(f *testing.F) {
	f.Add([]byte(`{"id":1,"result":[[["mining.notify","ae68"]],"08000002",4],"error":null}`))
	f.Add([]byte(`{"id":4,"result":false,"error":null,"reject-reason":"Stale"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := wire.Decode(line)
		if err != nil {
			return
		}
		switch m.Kind {
		case wire.KindNotification, wire.KindRequest:
			if m.Method == "" {
				t.Fatal("request without method")
			}
		case wire.KindResponse:
			if m.ID == nil {
				t.Fatal("response without id")
			}
		default:
			t.Fatalf("kind %v", m.Kind)
		}
		_, _ = m.NumID()
		if e := ParseError(m.Error, m.RejectReason); e != nil && e.Error() == "" {
			t.Fatal("empty error text")
		}
		_ = IsTrue(m.Result)
		_, _ = ParseSubscribeResult(m.Result)
		_, _, _ = ParseConfigureResult(m.Result)
		_, _ = ParseNotify(m.Params)
		_, _ = ParseDifficulty(m.Params)
		_, _, _ = ParseSetExtranonce(m.Params)
		_, _ = ParseVersionMask(m.Params)
		_, _ = ParseReconnect(m.Params)
		_ = ParseShowMessage(m.Params)
	})
}

// FuzzNotifyToJob runs notify params through work.NewJob and, for a valid
// job, builds a unit and submit params; nothing may panic.
func FuzzNotifyToJob(f *testing.F) {
	f.Add([]byte(slushNotify), "08000002", 4, 1.0)
	f.Fuzz(func(t *testing.T, params []byte, en1 string, en2size int, diff float64) {
		p, err := ParseNotify(json.RawMessage(params))
		if err != nil {
			return
		}
		p.Extranonce1, p.Extranonce2Size, p.Difficulty = en1, en2size, diff
		j, err := work.NewJob(p)
		if err != nil {
			return
		}
		if j.ID != p.JobID || j.Extranonce2Size != en2size {
			t.Fatal("job does not match its params")
		}
		u, err := j.NewUnit(make([]byte, j.Extranonce2Size), j.Version, j.NTime)
		if err != nil {
			t.Fatalf("valid job, bad unit: %v", err)
		}
		_ = u.Check(0)
		s, err := u.Submit("w", 0, 0)
		if err != nil || len(s.Params()) != 5 {
			t.Fatalf("submit: %v", err)
		}
	})
}

// FuzzSessionSequence plays a pool whose messages after the handshake are
// the fuzz input, one line each, against a real client session over
// net.Pipe. Lines are sent as they are (set_difficulty, notify,
// set_extranonce, set_version_mask, client.reconnect, show_message, replies
// to any id, garbage...), except a few harness macros:
//
//	@notify ID [c]   a valid mining.notify with job id ID (c: clean, new prevhash)
//	@share           sync, then the consumer sends a share of its latest job
//	@accept @reject @silent   how the pool answers mining.submit from now on
//	@sync            ping/pong barrier, then the invariants are checked
//	@drop            the pool closes the connection
//	@wait            let 25 ms pass (submit timeouts, health rules), once per input
//	@repeat N LINE   LINE N times (N <= 500)
//
// A reconnect or a drop moves the rest of the lines to the next connection.
// Checked: no panic; every job is well formed; at each barrier the latest
// job of the live session was notified on its connection, has a difficulty
// at least the one the pool judges it at (stratum/PROTOCOL.md#difficulty: the highest in
// force from the notify before it until now) and at least its ledger
// entry's; every Send gets exactly one reply; every submit reaches only the
// connection whose session issued its job; Run returns and no goroutine
// outlives the iteration.
func FuzzSessionSequence(f *testing.F) {
	f.Add([]byte("@notify a\n@share\n{\"id\":null,\"method\":\"mining.set_difficulty\",\"params\":[2]}\n@sync"))
	f.Fuzz(func(t *testing.T, data []byte) {
		runSessionSequence(t, data)
	})
}

const (
	seqMaxLines  = 256
	seqMaxRepeat = 500
	seqMaxWrites = 1000 // lines written per input, repeats included: keeps an input in milliseconds
	seqSyncWait  = 5 * time.Second
	seqConnWait  = 2 * time.Second
)

// seqTemplate is the slush documentation's job (work/vectors/builtin/
// stratum_sessions.json), the base of @notify and the handshake's job.
var seqTemplate = work.JobParams{
	PrevHash: "4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000",
	Coinb1:   "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20020862062f503253482f04b8864e5008",
	Coinb2:   "072f736c7573682f000000000100f2052a010000001976a914d23fcdf86f7e756a64a7a9688ef9903327048ed988ac00000000",
	Version:  "00000002", NBits: "1c2ac4af", NTime: "504e86b9",
}

func seqNotifyLine(id, prevhash string, clean bool) []byte {
	p := seqTemplate
	b, _ := json.Marshal(map[string]any{"id": nil, "method": wire.MethodNotify,
		"params": []any{id, prevhash, p.Coinb1, p.Coinb2, []string{}, p.Version, p.NBits, p.NTime, clean}})
	return b
}

type seqItem struct {
	line []byte
	done chan error // nil: nobody waits (replies)
}

// seqConn is the pool's end of one connection: a reader that answers the
// client (never blocking on a write) and a writer that sends queued lines
// in order.
type seqConn struct {
	h       *seqHarness
	idx     int
	c       net.Conn
	session uint64

	mu   sync.Mutex
	q    []seqItem
	sig  chan struct{}
	dead chan struct{}
	kill sync.Once

	ready     chan struct{}
	readyOnce sync.Once
	pong      chan string
}

func (sc *seqConn) die() {
	sc.kill.Do(func() {
		close(sc.dead)
		sc.c.Close()
	})
}

func (sc *seqConn) isDead() bool {
	select {
	case <-sc.dead:
		return true
	default:
		return false
	}
}

func (sc *seqConn) enqueue(line []byte, done chan error) {
	sc.mu.Lock()
	sc.q = append(sc.q, seqItem{line: append(append([]byte(nil), line...), '\n'), done: done})
	sc.mu.Unlock()
	select {
	case sc.sig <- struct{}{}:
	default:
	}
}

// write sends line and waits until the client's reader took it, or the
// connection died.
func (sc *seqConn) write(line []byte) error {
	done := make(chan error, 1)
	sc.enqueue(line, done)
	select {
	case err := <-done:
		return err
	case <-sc.dead:
		return io.ErrClosedPipe
	}
}

func (sc *seqConn) writer() {
	for {
		sc.mu.Lock()
		var it seqItem
		ok := len(sc.q) > 0
		if ok {
			it, sc.q = sc.q[0], sc.q[1:]
		}
		sc.mu.Unlock()
		if !ok {
			select {
			case <-sc.sig:
				continue
			case <-sc.dead:
				return
			}
		}
		_, err := sc.c.Write(it.line)
		if it.done != nil {
			it.done <- err
		}
		if err != nil {
			sc.die()
			return
		}
	}
}

func (sc *seqConn) reader() {
	defer sc.die()
	br := bufio.NewReader(sc.c)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return
		}
		sc.h.onClientLine(sc, line)
	}
}

type seqSubmit struct {
	conn  int
	jobID string
}

type seqHarness struct {
	t      *testing.T
	c      *Client
	accept chan net.Conn
	stop   chan struct{}
	mode   atomic.Int32 // 0 accept, 1 reject, 2 silent
	syncN  int

	mu        sync.Mutex
	jobs      []*source.Job
	authed    []uint64 // sessions in EventAuthorized order
	submits   []seqSubmit
	conns     []*seqConn
	sessionOf map[int]uint64

	sends, replies atomic.Int64
	checks         int
	wg             sync.WaitGroup
}

// Job, NoWork and Event make the harness the client's sink.
func (h *seqHarness) Job(j *source.Job) {
	switch {
	case j == nil || j.Job == nil || j.Entry == nil:
		h.t.Errorf("job without work or ledger entry: %+v", j)
		return
	case !(j.Difficulty > 0) || math.IsInf(j.Difficulty, 0):
		h.t.Errorf("job %q with difficulty %v", j.ID, j.Difficulty)
	case !jobIDRoundTrips(j.ID) || len(j.ID) > work.MaxJobIDLen:
		h.t.Errorf("job id %q cannot be sent back", j.ID)
	case j.Entry.ID() != j.ID:
		h.t.Errorf("job %q carries the entry of %q", j.ID, j.Entry.ID())
	case j.RollingMask&^work.BIP320Mask != 0:
		h.t.Errorf("job %q rolls outside BIP 320: %08x", j.ID, j.RollingMask)
	}
	h.mu.Lock()
	h.jobs = append(h.jobs, j)
	h.mu.Unlock()
}

func (h *seqHarness) NoWork(string) {}

func (h *seqHarness) Event(e source.Event) {
	if e.Kind == source.EventAuthorized {
		h.mu.Lock()
		h.authed = append(h.authed, e.Session)
		h.mu.Unlock()
	}
}

func (h *seqHarness) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	cli, srv := net.Pipe()
	select {
	case h.accept <- srv:
		return cli, nil
	case <-ctx.Done():
	case <-h.stop:
	}
	cli.Close()
	srv.Close()
	return nil, errors.New("harness: not accepting")
}

func seqReply(id json.RawMessage, result string) []byte {
	return []byte(fmt.Sprintf(`{"id":%s,"result":%s,"error":null}`, id, result))
}

func (h *seqHarness) onClientLine(sc *seqConn, line []byte) {
	var m struct {
		ID     json.RawMessage   `json:"id"`
		Method string            `json:"method"`
		Params []json.RawMessage `json:"params"`
		Result json.RawMessage   `json:"result"`
	}
	if err := json.Unmarshal(line, &m); err != nil {
		h.t.Errorf("client sent a line that is not JSON: %q", line)
		return
	}
	switch m.Method {
	case wire.MethodConfigure:
		sc.enqueue(seqReply(m.ID, `{"version-rolling":true,"version-rolling.mask":"1fffe000"}`), nil)
	case wire.MethodSubscribe:
		sc.enqueue(seqReply(m.ID, `[[["mining.set_difficulty","s"],["mining.notify","s"]],"08000002",4]`), nil)
		// What pools send next: the difficulty and a job (before the
		// authorize reply; the model starts from here).
		sc.enqueue([]byte(`{"id":null,"method":"mining.set_difficulty","params":[1]}`), nil)
		sc.enqueue(seqNotifyLine(fmt.Sprintf("h%d", sc.idx), seqTemplate.PrevHash, true), nil)
	case wire.MethodAuthorize:
		sc.enqueue(seqReply(m.ID, "true"), nil)
	case wire.MethodExtranonceSubscribe:
		// sent by ready(): the session is live from here
		sc.enqueue(seqReply(m.ID, "true"), nil)
		sc.readyOnce.Do(func() { close(sc.ready) })
	case wire.MethodSuggestDifficulty:
		sc.enqueue(seqReply(m.ID, "true"), nil)
	case wire.MethodSubmit:
		var job string
		if len(m.Params) > 1 {
			_ = json.Unmarshal(m.Params[1], &job)
		}
		h.mu.Lock()
		h.submits = append(h.submits, seqSubmit{conn: sc.idx, jobID: job})
		h.mu.Unlock()
		switch h.mode.Load() {
		case 0:
			sc.enqueue(seqReply(m.ID, "true"), nil)
		case 1:
			sc.enqueue([]byte(fmt.Sprintf(`{"id":%s,"result":false,"error":[23,"Low difficulty share",null]}`, m.ID)), nil)
		}
	case "":
		var s string
		if json.Unmarshal(m.ID, &s) == nil && strings.HasPrefix(s, "zz-sync-") {
			select {
			case sc.pong <- s:
			default:
			}
		}
	default:
		h.t.Errorf("client sent unexpected method %q", m.Method)
	}
}

// connect waits for the client's next connection and its handshake.
func (h *seqHarness) connect() *seqConn {
	t := h.t
	var nc net.Conn
	select {
	case nc = <-h.accept:
	case <-time.After(seqConnWait):
		t.Fatalf("client did not connect within %v", seqConnWait)
	}
	h.mu.Lock()
	sc := &seqConn{h: h, idx: len(h.conns), c: nc, sig: make(chan struct{}, 1), dead: make(chan struct{}),
		ready: make(chan struct{}), pong: make(chan string, 4)}
	h.conns = append(h.conns, sc)
	h.mu.Unlock()
	h.wg.Add(2)
	go func() { defer h.wg.Done(); sc.reader() }()
	go func() { defer h.wg.Done(); sc.writer() }()
	select {
	case <-sc.ready:
	case <-sc.dead:
		t.Fatalf("connection %d died in the handshake", sc.idx)
	case <-time.After(seqSyncWait):
		t.Fatalf("handshake on connection %d did not complete", sc.idx)
	}
	h.drain()
	h.mu.Lock()
	sc.session = h.authed[len(h.authed)-1]
	h.sessionOf[sc.idx] = sc.session
	h.mu.Unlock()
	return sc
}

// drain waits until the client's dispatcher has delivered everything
// queued so far.
func (h *seqHarness) drain() {
	ch := make(chan struct{})
	h.c.enqueue(evOther, func(source.Sink) { close(ch) })
	select {
	case <-ch:
	case <-time.After(seqSyncWait):
		h.t.Fatal("client dispatcher stalled")
	}
}

// sync is a ping/pong barrier: when it returns true the client has handled
// every line written before it and delivered every job.
func (h *seqHarness) sync(sc *seqConn) bool {
	h.syncN++
	id := fmt.Sprintf("zz-sync-%d", h.syncN)
	if sc.write([]byte(`{"id":"`+id+`","method":"mining.ping","params":[]}`)) != nil {
		return false
	}
	timeout := time.After(seqSyncWait)
	for {
		select {
		case got := <-sc.pong:
			if got != id {
				continue
			}
			h.drain()
			return true
		case <-sc.dead:
			return false
		case <-timeout:
			h.t.Fatalf("no pong from a live connection within %v", seqSyncWait)
		}
	}
}

func (h *seqHarness) latest(session uint64) *source.Job {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := len(h.jobs) - 1; i >= 0; i-- {
		if h.jobs[i].Session == session {
			return h.jobs[i]
		}
	}
	return nil
}

// seqModel is what the pool judges jobs at: a job is judged at the highest
// difficulty in force from the notify before it until now. It counts every
// notify the parser accepts; the client may refuse some (bad hex), which
// only makes the model's windows shorter and its demands lower.
type seqModel struct {
	cur, acc float64
	req      map[string]float64
}

func newSeqModel(handshakeJob string) *seqModel {
	return &seqModel{cur: 1, acc: 1, req: map[string]float64{handshakeJob: 1}}
}

func (m *seqModel) observe(line []byte) {
	msg, err := wire.Decode(line)
	if err != nil || msg.Kind == wire.KindResponse {
		return
	}
	switch msg.Method {
	case wire.MethodSetDifficulty:
		d, err := ParseDifficulty(msg.Params)
		if err != nil {
			return
		}
		m.cur, m.acc = d, math.Max(m.acc, d)
		for id, r := range m.req {
			m.req[id] = math.Max(r, d)
		}
	case wire.MethodNotify:
		p, err := ParseNotify(msg.Params)
		if err != nil {
			return
		}
		m.req[p.JobID] = math.Max(m.acc, m.cur)
		m.acc = m.cur
	}
}

func (h *seqHarness) check(sc *seqConn, m *seqModel) {
	j := h.latest(sc.session)
	if j == nil || !j.Entry.Live() {
		return
	}
	h.checks++
	req, ok := m.req[j.ID]
	if !ok {
		h.t.Errorf("session %d: job %q was never notified on its connection", sc.session, j.ID)
		return
	}
	if j.Difficulty < req {
		h.t.Errorf("job %q has difficulty %v; the pool judges it at %v", j.ID, j.Difficulty, req)
	}
	if ed := j.Entry.Difficulty(); j.Difficulty < ed {
		h.t.Errorf("job %q has difficulty %v below its ledger entry's %v", j.ID, j.Difficulty, ed)
	}
}

func (h *seqHarness) share(sc *seqConn) {
	j := h.latest(sc.session)
	if j == nil {
		return
	}
	u, err := j.Entry.Next(j.Job, j.RollingMask)
	if err != nil {
		return
	}
	h.sends.Add(1)
	var once atomic.Bool
	h.c.Send(source.Share{Job: j, Unit: u, Nonce: 0}, func(r source.Reply) {
		if once.Swap(true) {
			h.t.Errorf("share of job %q answered twice", j.ID)
		}
		if r.Kind < source.Accepted || r.Kind > source.NoReply {
			h.t.Errorf("reply kind %v", r.Kind)
		}
		h.replies.Add(1)
	})
}

func runSessionSequence(t *testing.T, data []byte) {
	leaks := goleak.IgnoreCurrent()
	h := &seqHarness{t: t, accept: make(chan net.Conn), stop: make(chan struct{}), sessionOf: map[int]uint64{}}
	opts := Options{
		Dialer: h.dial, Logger: log.New(io.Discard),
		ReadTimeout: 10 * time.Second, DialTimeout: 5 * time.Second, CallTimeout: time.Second, HandshakeTimeout: 5 * time.Second,
		SubmitTimeout: 20 * time.Millisecond, UnansweredAfter: 20 * time.Millisecond, UnansweredStreak: 3, RejectStreak: 3,
		HoldDown: 20 * time.Millisecond, SickHoldDown: 2 * time.Millisecond,
		Retry:       retry.Backoff{Initial: time.Millisecond, Max: 2 * time.Millisecond},
		MaxLineSize: 16 << 10, MaxInFlight: 4,
	}
	c, err := NewClient([]PoolConfig{{URL: "stratum+tcp://pool.example.com:3333", User: "fuzz.worker", Pass: "x",
		VersionRolling: true, ExtranonceSubscribe: true}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	h.c = c
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- c.Run(ctx, h) }()
	stopped := false
	finish := func() {
		if stopped {
			return
		}
		stopped = true
		close(h.stop)
		cancel()
		select {
		case err := <-runDone:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(seqSyncWait):
			t.Errorf("Run did not return after cancel")
		}
		h.mu.Lock()
		conns := append([]*seqConn(nil), h.conns...)
		h.mu.Unlock()
		for _, sc := range conns {
			sc.die()
		}
		h.wg.Wait()
	}
	defer finish()

	lines := bytes.Split(data, []byte("\n"))
	if len(lines) > seqMaxLines {
		lines = lines[:seqMaxLines]
	}
	sc := h.connect()
	model := newSeqModel(fmt.Sprintf("h%d", sc.idx))
	prev, prevN, waits, writes := seqTemplate.PrevHash, 0, 0, 0
	for _, ln := range lines {
		if sc.isDead() {
			sc = h.connect()
			model = newSeqModel(fmt.Sprintf("h%d", sc.idx))
		}
		// send writes one line and, once the client took it, feeds the model.
		send := func(b []byte) {
			if writes >= seqMaxWrites {
				return
			}
			writes++
			if sc.write(b) == nil {
				model.observe(b)
			}
		}
		cmd, arg, _ := strings.Cut(strings.TrimRight(string(ln), "\r"), " ")
		switch {
		case cmd == "@sync":
			if h.sync(sc) {
				h.check(sc, model)
			}
		case cmd == "@share":
			if h.sync(sc) {
				h.check(sc, model)
				h.share(sc)
			}
		case cmd == "@accept":
			h.mode.Store(0)
		case cmd == "@reject":
			h.mode.Store(1)
		case cmd == "@silent":
			h.mode.Store(2)
		case cmd == "@drop":
			sc.die()
		case cmd == "@wait":
			if waits < 1 {
				waits++
				time.Sleep(25 * time.Millisecond) // the script's pause: elapsed time is what it models
			}
		case cmd == "@notify":
			id, flag, _ := strings.Cut(arg, " ")
			clean := flag == "c"
			if clean {
				prevN++
				prev = fmt.Sprintf("%056x%08x", 0, prevN)
			}
			send(seqNotifyLine(id, prev, clean))
		case cmd == "@repeat":
			ns, rest, _ := strings.Cut(arg, " ")
			n, err := strconv.Atoi(ns)
			if err != nil || n < 0 {
				break
			}
			for i := 0; i < min(n, seqMaxRepeat) && !sc.isDead() && writes < seqMaxWrites; i++ {
				send([]byte(rest))
			}
		default:
			send(ln)
		}
	}
	if !sc.isDead() && h.sync(sc) {
		h.check(sc, model)
	}
	finish()

	if s, r := h.sends.Load(), h.replies.Load(); s != r {
		t.Errorf("%d shares sent, %d replies", s, r)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, sub := range h.submits {
		session, ok := h.sessionOf[sub.conn]
		found := false
		for _, j := range h.jobs {
			if j.ID == sub.jobID && j.Session == session {
				found = true
				break
			}
		}
		if !ok || !found {
			t.Errorf("connection %d got a submit for job %q that its session (%d) never issued", sub.conn, sub.jobID, session)
		}
	}
	for _, j := range h.jobs {
		if !slices.Contains(h.authed, j.Session) {
			t.Errorf("job %q from session %d that was never authorized", j.ID, j.Session)
		}
	}
	t.Logf("%d lines, %d connections, %d jobs, %d checks, %d shares, %d submits", len(lines), len(h.conns), len(h.jobs), h.checks, h.sends.Load(), len(h.submits))
	goleak.VerifyNone(t, leaks)
}
