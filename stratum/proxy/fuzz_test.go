package proxy

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"clminer/stratum"
	"clminer/work"
	"clminer/work/ledger"
	"clminer/work/source"
)

// fakeUpstream accepts every share at once.
type fakeUpstream struct{ workers int }

func (f *fakeUpstream) Run(ctx context.Context, _ source.Sink) error { <-ctx.Done(); return ctx.Err() }
func (f *fakeUpstream) SubmitAsync(_ *stratum.Job, _ work.Submit, _ string, done func(stratum.SubmitResult, error)) {
	done(stratum.SubmitResult{Accepted: true}, nil)
}
func (f *fakeUpstream) AddWorker(string) error { f.workers++; return nil }
func (f *fakeUpstream) RemoveWorker(string)    { f.workers-- }
func (f *fakeUpstream) WaitWorker(k string, _ time.Duration) (string, string) {
	return "up." + k, "authorized"
}
func (f *fakeUpstream) Status() []stratum.PoolStatus    { return nil }
func (f *fakeUpstream) Workers() []stratum.WorkerStatus { return nil }

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

// fuzzUpstream plays the pool side of a fuzz run: a ledger and jobs it
// hands the server as a stratum.Client would.
type fuzzUpstream struct {
	s       *Server
	led     *ledger.Ledger
	session uint64
	en1     string
	size    int
	n       int
	last    *source.Job
}

// job issues a new job (clean or not) of the current session.
func (u *fuzzUpstream) job(t testing.TB, clean bool) {
	u.n++
	p := work.JobParams{JobID: fmt.Sprintf("j%d", u.n), PrevHash: strings.Repeat("00", 31) + fmt.Sprintf("%02x", u.n%256),
		Coinb1: "01000000010000", Coinb2: "ffffffff00", Version: "20000000", NBits: "1d00ffff", NTime: "5f5e1000",
		Extranonce1: u.en1, Extranonce2Size: u.size, Difficulty: 1e-12}
	wj, err := work.NewJob(p)
	if err != nil {
		t.Fatal(err)
	}
	space := u.en1 + "/" + fmt.Sprint(u.size)
	entry, err := u.led.Job(space, p.JobID, u.size, 1e-12)
	if err != nil {
		t.Fatal(err)
	}
	if clean {
		u.led.Retain(p.JobID)
	}
	u.last = &source.Job{Job: wj, Entry: entry, RollingMask: work.BIP320Mask, Clean: clean, Session: u.session}
	u.s.onJob(u.last)
}

// event applies one upstream event line ("!clean", "!job", "!diff",
// "!mask", "!space", "!dead").
func (u *fuzzUpstream) event(t testing.TB, ev string) {
	switch ev {
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
		u.session++
		u.en1, u.size = "aabb", 2
		u.led = ledger.New(0)
		u.job(t, true)
	case "!dead":
		u.led.Reset()
	}
}

// fuzzServer is a server holding one upstream job (job id "1" for miners).
func fuzzServer(t testing.TB) (*Server, *fuzzUpstream) {
	s, err := New(Config{HandshakeTimeout: time.Millisecond, MaxMiners: 4, Rate: 1e9, Burst: 1 << 30}, &fakeUpstream{})
	if err != nil {
		t.Fatal(err)
	}
	u := &fuzzUpstream{s: s, led: ledger.New(0), session: 1, en1: "01020304", size: 4}
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
		s, up := fuzzServer(t)
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
				for len(c.out) > 0 {
					<-c.out
				}
				continue
			}
			err := c.handleLine(l)
			for len(c.out) > 0 {
				<-c.out
			}
			if err != nil {
				c.close(err)
				break
			}
		}
		c.close(errDone)
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n != 0 {
			t.Fatalf("%d connections left after close", n)
		}
		if c.pending != 0 {
			t.Fatalf("%d submits left pending", c.pending)
		}
		if up := s.up.(*fakeUpstream); up.workers != 0 || len(s.keyRefs) != 0 {
			t.Fatalf("%d upstream workers, %d key refs left after the miner left", up.workers, len(s.keyRefs))
		}
	})
}

var errDone = errDoneT{}

type errDoneT struct{}

func (errDoneT) Error() string { return "done" }
