package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"clminer/work"
	"clminer/work/ledger"
	"clminer/work/source"
)

// fakeUpstream answers every share at once (with kind, which the fuzz
// event "!verdict" moves on) and keeps the sub-worker set.
type fakeUpstream struct {
	keys map[string]bool
	kind source.ReplyKind
}

func (f *fakeUpstream) Run(ctx context.Context, _ source.Sink) error { <-ctx.Done(); return ctx.Err() }
func (f *fakeUpstream) Send(_ source.Share, done func(source.Reply)) {
	done(source.Reply{Kind: f.kind, Code: 23, Reason: "fuzz"})
}
func (f *fakeUpstream) AddWorker(k string) error {
	if f.keys == nil {
		f.keys = map[string]bool{}
	}
	f.keys[k] = true
	return nil
}
func (f *fakeUpstream) RemoveWorker(k string) { delete(f.keys, k) }
func (f *fakeUpstream) WaitWorker(k string, _ time.Duration) (string, string) {
	return "up." + k, "authorized"
}
func (f *fakeUpstream) Upstreams() []source.UpstreamStatus { return nil }
func (f *fakeUpstream) Workers() []source.WorkerStatus     { return nil }

// nullConn is a connection that swallows writes and has nothing to read.
type nullConn struct{}

func (nullConn) Read([]byte) (int, error)         { return 0, net.ErrClosed }
func (nullConn) Write(b []byte) (int, error)      { return len(b), nil }
func (nullConn) Close() error                     { return nil }
func (nullConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (nullConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (nullConn) SetDeadline(time.Time) error      { return nil }
func (nullConn) SetReadDeadline(time.Time) error  { return nil }
func (nullConn) SetWriteDeadline(time.Time) error { return nil }

// peerConn is a nullConn from a given address.
type peerConn struct {
	nullConn
	addr *net.TCPAddr
}

func (p peerConn) RemoteAddr() net.Addr { return p.addr }

// fuzzUpstream plays the pool side of a fuzz run: a ledger and jobs it
// hands the server as a source would: a Stratum v1 client, a V2 channel
// (targets applied at once) or a node (only blocks go up).
type fuzzUpstream struct {
	s       *Server
	led     *ledger.Ledger
	session uint64
	pool    int
	en1     string
	size    int
	n       int
	mode    string  // "v1", "v2" or "node"
	diff    float64 // the V2 channel's target, as a difficulty
	last    *source.Job
}

// job issues a new job (clean or not) of the current session.
func (u *fuzzUpstream) job(t testing.TB, clean bool) {
	u.n++
	p := work.JobParams{JobID: fmt.Sprintf("j%d", u.n), PrevHash: strings.Repeat("00", 31) + fmt.Sprintf("%02x", u.n%256),
		Coinb1: "01000000010000", Coinb2: "ffffffff00", Version: "20000000", NBits: "1d00ffff", NTime: "5f5e1000",
		Extranonce1: u.en1, Extranonce2Size: u.size, Difficulty: 1e-12}
	space := u.en1 + "/" + fmt.Sprint(u.size)
	var entry *ledger.Entry
	var err error
	switch u.mode {
	case "v2":
		p.Difficulty = u.diff
		tg, terr := work.TargetForDifficulty(u.diff)
		if terr != nil {
			t.Fatal(terr)
		}
		entry, err = u.led.JobAtTarget(space, p.JobID, u.size, tg)
	case "node":
		// regtest's bits: about one hash in two is a block
		p.NBits = "207fffff"
		tg, terr := work.NBitsTarget(0x207fffff)
		if terr != nil {
			t.Fatal(terr)
		}
		p.Difficulty = work.TargetDifficulty(tg)
		entry, err = u.led.JobAtTarget(space, p.JobID, u.size, tg)
	default:
		entry, err = u.led.Job(space, p.JobID, u.size, 1e-12)
	}
	if err != nil {
		t.Fatal(err)
	}
	wj, err := work.NewJob(p)
	if err != nil {
		t.Fatal(err)
	}
	if clean {
		u.led.Retain(p.JobID)
	}
	u.last = &source.Job{Job: wj, Entry: entry, RollingMask: work.BIP320Mask, Clean: clean, Session: u.session, Pool: u.pool,
		TargetAtOnce: u.mode == "v2", BlocksOnly: u.mode == "node"}
	u.s.onJob(u.last)
}

// failover moves to another upstream of kind mode.
func (u *fuzzUpstream) failover(t testing.TB, mode, en1 string, size int) {
	u.session++
	u.pool = (u.pool + 1) % 3
	u.mode, u.en1, u.size, u.diff = mode, en1, size, 1e-12
	u.led = ledger.New(0)
	u.job(t, true)
}

// event applies one upstream event line ("!clean", "!job", "!diff",
// "!mask", "!space", "!dead", "!v2", "!node", "!target+", "!target-",
// "!verdict").
func (u *fuzzUpstream) event(t testing.TB, ev string) {
	switch ev {
	case "!v2":
		u.failover(t, "v2", "0a0b0c0d", 8)
	case "!node":
		u.failover(t, "node", "01010101", 8)
	case "!target+", "!target-":
		// a V2 SetTarget: every live job judged at it at once, the last
		// one re-issued
		if u.mode != "v2" {
			return
		}
		if ev == "!target+" {
			u.diff *= 4
		} else {
			u.diff /= 4
		}
		tg, err := work.TargetForDifficulty(u.diff)
		if err != nil {
			t.Fatal(err)
		}
		u.led.SetTarget(tg)
		j := *u.last
		wj := *j.Job
		wj.Difficulty, wj.ShareTarget = u.diff, tg
		j.Job, j.Clean = &wj, false
		u.last = &j
		u.s.onJob(&j)
	case "!verdict":
		f := u.s.up.(*fakeUpstream)
		f.kind = (f.kind + 1) % 5
	case "!clean":
		u.job(t, true)
	case "!job":
		u.job(t, false)
	case "!diff", "!mask":
		// a re-issue of the last job under the same entry
		j := *u.last
		wj := *j.Job
		if ev == "!diff" {
			wj.Difficulty *= 2
			wj.ShareTarget, _ = work.TargetForDifficulty(wj.Difficulty)
			u.led.RaiseDifficulty(wj.Difficulty)
		} else {
			j.RollingMask = 0x0000e000
		}
		j.Job, j.Clean = &wj, false
		u.last = &j
		u.s.onJob(&j)
	case "!space":
		// failover to a pool with another extranonce1 and a smaller size
		u.failover(t, "v1", "aabb", 2)
	case "!dead":
		u.led.Reset()
	}
}

// fuzzServer is a server holding one upstream job (job id "1" for miners).
func fuzzServer(t testing.TB, users map[string]string) (*Server, *fuzzUpstream) {
	s, err := New(nil, Config{HandshakeTimeout: time.Millisecond, MaxMiners: 4, Rate: 1e9, Burst: 1 << 30, Users: users,
		StartDifficulty: 1e-12, MinDifficulty: 1e-12, RetargetInterval: time.Nanosecond}, &fakeUpstream{})
	if err != nil {
		t.Fatal(err)
	}
	u := &fuzzUpstream{s: s, led: ledger.New(0), session: 1, en1: "01020304", size: 4, mode: "v1"}
	u.job(t, true)
	return s, u
}

var fuzzSeeds = []string{
	// A share for the failover pool's first job, sized for the old space
	// (the miner has not been told yet): it crashed the proxy once.
	`{"id":2,"method":"mining.subscribe","params":["x"]}
{"id":3,"method":"mining.authorize","params":["w","x"]}
!space
{"id":4,"method":"mining.submit","params":["w","2","000001","%NTIME%","00000000"]}`,
	`{"id":1,"method":"mining.configure","params":[["version-rolling","minimum-difficulty"],{"version-rolling.mask":"ffffffff"}]}
{"id":2,"method":"mining.subscribe","params":["cgminer/4.11"]}
{"id":3,"method":"mining.authorize","params":["wallet.rig1","x"]}
{"id":4,"method":"mining.submit","params":["wallet.rig1","1","000001","` + "%NTIME%" + `","00000000","00002000"]}
{"id":5,"method":"mining.submit","params":["wallet.rig1","1","000001","` + "%NTIME%" + `","00000000","00002000"]}`,
	`{"id":1,"method":"mining.submit","params":["a","1","00","00000000","00000000"]}`,
	`{"id":2,"method":"mining.subscribe","params":[]}
{"id":2,"method":"mining.subscribe","params":[]}
{"id":3,"method":"mining.authorize","params":[null]}
{"id":3,"method":"mining.authorize","params":["` + string(bytes.Repeat([]byte("w"), 200)) + `"]}
{"id":4,"method":"mining.extranonce.subscribe","params":[]}
{"id":5,"method":"mining.suggest_difficulty","params":[1e300]}
{"id":6,"method":"mining.submit","params":[1,2,3,4,5,6,7]}
{"id":7,"method":"mining.submit","params":"x"}`,
	"garbage\n{}\n[1,2]\n{\"id\":null,\"method\":\"x\"}\n{\"result\":true,\"id\":9}",
	`{"id":1,"method":"mining.extranonce.subscribe","params":[]}
{"id":2,"method":"mining.subscribe","params":["x"]}
{"id":3,"method":"mining.authorize","params":["w","x"]}
!diff
{"id":4,"method":"mining.submit","params":["w","1","000001","%NTIME%","00000000"]}
!clean
{"id":5,"method":"mining.submit","params":["w","1","000002","%NTIME%","00000000"]}
{"id":6,"method":"mining.submit","params":["w","2","000002","%NTIME%","00000000"]}
!mask
!space
{"id":7,"method":"mining.submit","params":["w","3","01","%NTIME%","00000000"]}
!dead
{"id":8,"method":"mining.submit","params":["w","3","02","%NTIME%","00000000"]}`,
	// A V2 channel: SetTarget up and down, a failover to a node whose
	// shares are judged at the miner's own difficulty (suggested, then
	// re-targeted), blocks and their verdicts, and back to v1.
	`{"id":1,"method":"mining.suggest_difficulty","params":[0.5]}
{"id":2,"method":"mining.subscribe","params":["x"]}
{"id":3,"method":"mining.authorize","params":["w","x"]}
!v2
{"id":4,"method":"mining.submit","params":["w","2","000001","%NTIME%","00000000"]}
!target+
{"id":5,"method":"mining.submit","params":["w","2","000002","%NTIME%","00000000"]}
!target-
!job
{"id":6,"method":"mining.submit","params":["w","3","000003","%NTIME%","00000000"]}
!node
{"id":7,"method":"mining.suggest_target","params":["00000000ffff0000000000000000000000000000000000000000000000000000"]}
{"id":8,"method":"mining.submit","params":["w","4","000004","%NTIME%","00000001"]}
!verdict
{"id":9,"method":"mining.submit","params":["w","4","000005","%NTIME%","00000002"]}
!verdict
!verdict
{"id":10,"method":"mining.submit","params":["w","4","000006","%NTIME%","00000003"]}
{"id":11,"method":"mining.suggest_difficulty","params":["x"]}
!job
!space
{"id":12,"method":"mining.submit","params":["w","5","01","%NTIME%","00000000"]}`,
}

// FuzzServerLines feeds one miner connection arbitrary lines, interleaved
// with upstream events (lines starting with '!': new and clean jobs,
// difficulty and mask re-issues, a failover to a smaller extranonce2, the
// pool dropping its jobs): no panic, every line handled or the miner
// dropped, nothing blocks or leaks.
func FuzzServerLines(f *testing.F) {
	for _, seed := range fuzzSeeds {
		f.Add([]byte(bytes.ReplaceAll([]byte(seed), []byte("%NTIME%"), []byte("5f5e1000"))))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, up := fuzzServer(t, nil)
		lines := bytes.Split(data, []byte("\n"))
		if len(lines) > 64 {
			lines = lines[:64]
		}
		s.mu.Lock()
		s.nextConn++
		c := newConn(s, s.nextConn, nullConn{})
		s.conns[c.id] = c
		s.mu.Unlock()
		for _, l := range lines {
			if len(l) > s.cfg.MaxLineSize {
				continue
			}
			if len(l) > 0 && l[0] == '!' {
				up.event(t, string(l))
				checkQueue(t, s, c)
				continue
			}
			err := c.handleLine(l)
			checkQueue(t, s, c)
			if err != nil {
				c.close(err)
				break
			}
		}
		c.close(errDone)
		checkLeft(t, s)
	})
}

// checkQueue takes what waits for c, checking the byte bound and that no
// reply echoes an id over maxIDLen.
func checkQueue(t *testing.T, s *Server, c *conn) {
	t.Helper()
	c.q.mu.Lock()
	queued := c.q.bytes
	c.q.mu.Unlock()
	if queued > s.cfg.WriteQueueBytes+64<<10 {
		t.Fatalf("%d bytes queued for a miner", queued)
	}
	lines, _ := c.q.take(nil)
	for _, l := range lines {
		var m struct {
			ID json.RawMessage `json:"id"`
		}
		if json.Unmarshal(l.b, &m) == nil && len(m.ID) > maxIDLen {
			t.Fatalf("a reply echoes a %d byte id", len(m.ID))
		}
	}
}

// checkLeft checks what the server keeps once every miner left: nothing of
// theirs but bounded, unused upstream keys and worker counters.
func checkLeft(t *testing.T, s *Server) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.conns); n != 0 {
		t.Fatalf("%d connections left after close", n)
	}
	if s.holders.Len() != 0 {
		t.Fatalf("%d unauthenticated prefix holders left", s.holders.Len())
	}
	for i, sl := range s.slots {
		if sl.holder != nil {
			t.Fatalf("prefix %d still held", i)
		}
	}
	for n, w := range s.workers {
		if w.refs != 0 {
			t.Fatalf("worker %q still referenced %d times", n, w.refs)
		}
	}
	if len(s.workers) > keptWorkerStats {
		t.Fatalf("%d worker names kept", len(s.workers))
	}
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	up := s.up.(*fakeUpstream)
	if len(up.keys) != len(s.keys) || len(s.keys) > keptUpstreamWorkers || s.idleKeys.Len() != len(s.keys) {
		t.Fatalf("upstream has %d workers, the proxy %d keys, %d of them idle", len(up.keys), len(s.keys), s.idleKeys.Len())
	}
	for k, r := range s.keys {
		if r.refs != 0 || !up.keys[k] {
			t.Fatalf("key %q: %d refs, upstream %v", k, r.refs, up.keys[k])
		}
	}
}

var sessionSeeds = []string{
	// subscribe-and-close on every connection, then a miner that mines
	"0{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"x\"]}\n~0\n" +
		"1{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"x\"]}\n~1\n" +
		"2{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"x\"]}\n" +
		"3{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"x\"]}\n" +
		"0{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"x\"]}\n" +
		"1{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"x\"]}\n" +
		"1{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"a.r\",\"p\"]}\n" +
		"1{\"id\":3,\"method\":\"mining.submit\",\"params\":[\"a.r\",\"1\",\"000001\",\"%NTIME%\",\"00000000\"]}\n~1\n!clean",
	// two users of one rig name, an authorize before subscribe, a huge id
	"0{\"id\":1,\"method\":\"mining.authorize\",\"params\":[\"a.r\",\"p\"]}\n" +
		"0{\"id\":2,\"method\":\"mining.subscribe\",\"params\":[\"x\"]}\n" +
		"0{\"id\":3,\"method\":\"mining.submit\",\"params\":[\"a.r\",\"1\",\"000001\",\"%NTIME%\",\"00000000\"]}\n" +
		"1{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"x\"]}\n" +
		"1{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"b.r\",\"p\"]}\n" +
		"2{\"id\":\"" + strings.Repeat("7", 300) + "\",\"method\":\"mining.ping\",\"params\":[]}\n" +
		"3{\"id\":1,\"method\":\"mining.authorize\",\"params\":[\"a.r\",\"wrong\"]}\n~0\n~1",
	// two miners on a node upstream (their own difficulty, blocks), one
	// leaving, a V2 channel after it
	"0{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"x\"]}\n" +
		"0{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"a.r\",\"p\"]}\n" +
		"1{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"x\"]}\n" +
		"1{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"b.r\",\"p\"]}\n!node\n" +
		"0{\"id\":3,\"method\":\"mining.submit\",\"params\":[\"a.r\",\"2\",\"000001\",\"%NTIME%\",\"00000000\"]}\n" +
		"1{\"id\":3,\"method\":\"mining.submit\",\"params\":[\"b.r\",\"2\",\"000001\",\"%NTIME%\",\"00000001\"]}\n!verdict\n" +
		"1{\"id\":4,\"method\":\"mining.suggest_difficulty\",\"params\":[2]}\n~0\n!v2\n!target-\n" +
		"1{\"id\":5,\"method\":\"mining.submit\",\"params\":[\"b.r\",\"3\",\"000002\",\"%NTIME%\",\"00000000\"]}\n~1",
}

// FuzzServerSessions plays session sequences over four connections from
// two addresses (a line "N..." is connection N's, "~N" closes it, "!..."
// is an upstream event as in FuzzServerLines; the first byte's low bit
// turns a user list on): prefixes taken, given up and taken from sessions
// that never authorized, names authorized before and after subscribe,
// refused and kept upstream. Every reply stays within the byte bound and
// echoes no long id; once everyone left, no prefix, name or key is held
// and what is kept is bounded.
func FuzzServerSessions(f *testing.F) {
	for i, seed := range sessionSeeds {
		f.Add([]byte(string(rune('0'+i%2)) + strings.ReplaceAll(seed, "%NTIME%", "5f5e1000")))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		var users map[string]string
		if data[0]&1 == 1 {
			users = map[string]string{"a.r": "p", "b.r": "p"}
		}
		s, up := fuzzServer(t, users)
		var conns [4]*conn
		get := func(i int) *conn {
			if c := conns[i]; c != nil {
				c.mu.Lock()
				closed := c.closed
				c.mu.Unlock()
				if !closed {
					return c
				}
			}
			s.mu.Lock()
			s.nextConn++
			c := newConn(s, s.nextConn, peerConn{addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%2)), Port: 1000 + i}})
			s.conns[c.id] = c
			s.mu.Unlock()
			conns[i] = c
			return c
		}
		lines := bytes.Split(data[1:], []byte("\n"))
		if len(lines) > 96 {
			lines = lines[:96]
		}
		for _, l := range lines {
			if len(l) == 0 || len(l) > s.cfg.MaxLineSize {
				continue
			}
			switch {
			case l[0] == '!':
				up.event(t, string(l))
			case l[0] == '~' && len(l) > 1 && l[1] >= '0' && l[1] <= '3':
				if c := conns[l[1]-'0']; c != nil {
					c.close(errDone)
				}
			case l[0] >= '0' && l[0] <= '3':
				c := get(int(l[0] - '0'))
				if err := c.handleLine(l[1:]); err != nil {
					c.close(err)
				}
			default:
				continue
			}
			for _, c := range conns {
				if c != nil {
					checkQueue(t, s, c)
				}
			}
		}
		for _, c := range conns {
			if c != nil {
				c.close(errDone)
			}
		}
		checkLeft(t, s)
	})
}

var errDone = errDoneT{}

type errDoneT struct{}

func (errDoneT) Error() string { return "done" }
