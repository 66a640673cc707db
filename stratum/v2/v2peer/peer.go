// Package v2peer starts the independent Stratum V2 pool (peer.mjs, Node.js
// on @noble/@scure crypto) for tests, and reads what it judged. The pool
// shares no code with clminer, so a test that mines against it checks the
// handshake, framing and share encoding against a second reading of the
// spec, not against clminer's own.
//
// Tests skip when node or the npm packages are missing, unless
// CLMINER_REQUIRE_V2PEER=1 (set in CI, which runs npm ci here). The peer's own
// ElligatorSwift and ECDH are checked against BIP 324's vectors (vectors.mjs).
package v2peer

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Event is one line the peer printed.
type Event struct {
	Event    string  `json:"event"`
	Conn     int     `json:"conn"`
	Port     int     `json:"port"`
	Key      string  `json:"key"`
	Seq      uint32  `json:"seq"`
	Job      uint32  `json:"job"`
	Accepted bool    `json:"accepted"`
	Reason   string  `json:"reason"`
	User     string  `json:"user"`
	Flags    uint32  `json:"flags"`
	Hash     string  `json:"hash"` // an accepted share's, display order
	Cmd      string  `json:"cmd"`
	HashRate float64 `json:"hashrate"`
	Err      string  `json:"err"`
}

// Peer is a running peer.mjs.
type Peer struct {
	Port int
	Key  string // base58check authority key

	cmd    *exec.Cmd
	stdin  io.WriteCloser
	Events chan Event // every event after "listening" (buffered; extra ones dropped)

	stopOnce sync.Once
	mu       sync.Mutex
	accepted int
	rejected int
	shares   []Event
	done     chan struct{}
}

// Dir is the directory of peer.mjs.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// Available reports why the peer cannot run, or "".
func Available() string {
	if _, err := exec.LookPath("node"); err != nil {
		return "node is not installed"
	}
	if _, err := os.Stat(filepath.Join(Dir(), "node_modules", "@scure", "btc-signer")); err != nil {
		return "npm packages missing: run npm ci in stratum/v2/v2peer"
	}
	return ""
}

// Start runs the peer with args (see peer.mjs), or skips the test.
func Start(t testing.TB, args ...string) *Peer {
	t.Helper()
	if why := Available(); why != "" {
		if os.Getenv("CLMINER_REQUIRE_V2PEER") == "1" {
			t.Fatalf("v2peer required: %s", why)
		}
		t.Skipf("v2peer: %s", why)
	}
	cmd := exec.Command("node", append([]string{filepath.Join(Dir(), "peer.mjs")}, args...)...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Peer{cmd: cmd, stdin: stdin, Events: make(chan Event, 4096), done: make(chan struct{})}
	sc := bufio.NewScanner(out)
	first := make(chan Event, 1)
	go func() {
		defer close(p.done)
		gotFirst := false
		for sc.Scan() {
			var e Event
			if json.Unmarshal(sc.Bytes(), &e) != nil {
				continue
			}
			if !gotFirst {
				gotFirst = true
				first <- e
				continue
			}
			if e.Event == "share" {
				p.mu.Lock()
				if e.Accepted {
					p.accepted++
				} else {
					p.rejected++
				}
				p.shares = append(p.shares, e)
				p.mu.Unlock()
			}
			select {
			case p.Events <- e:
			default:
			}
		}
	}()
	t.Cleanup(p.Stop)
	select {
	case e := <-first:
		if e.Event != "listening" {
			t.Fatalf("v2peer: first event %q", e.Event)
		}
		p.Port, p.Key = e.Port, e.Key
	case <-time.After(30 * time.Second):
		t.Fatal("v2peer did not start")
	}
	return p
}

// URL is the peer's stratum2+tcp URL with its authority key.
func (p *Peer) URL() string {
	return "stratum2+tcp://127.0.0.1:" + strconv.Itoa(p.Port) + "/" + p.Key
}

// Command sends a command line to the peer (see peer.mjs: target HEX, job,
// block, down, up) and waits until it has been applied.
func (p *Peer) Command(t testing.TB, cmd string) {
	t.Helper()
	if _, err := io.WriteString(p.stdin, cmd+"\n"); err != nil {
		t.Fatalf("v2peer command %q: %v", cmd, err)
	}
	kind := "command"
	switch cmd {
	case "down", "up":
		kind = cmd
	}
	p.WaitEvent(t, kind, 10*time.Second)
}

// Counts are the shares the peer accepted and rejected.
func (p *Peer) Counts() (accepted, rejected int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted, p.rejected
}

// Shares are the share events so far, in order.
func (p *Peer) Shares() []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Event(nil), p.shares...)
}

// Stop ends the peer (closing its stdin) and waits for it. Safe to call
// more than once and from any goroutine.
func (p *Peer) Stop() {
	p.stopOnce.Do(func() {
		p.stdin.Close()
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		_ = p.cmd.Wait()
	})
}

// WaitEvent waits for an event of the given kind.
func (p *Peer) WaitEvent(t testing.TB, kind string, timeout time.Duration) Event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e := <-p.Events:
			if e.Event == kind {
				return e
			}
		case <-deadline:
			t.Fatalf("v2peer: no %q event within %v", kind, timeout)
			return Event{}
		}
	}
}
