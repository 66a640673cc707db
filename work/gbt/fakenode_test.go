package gbt

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"clminer/work/source"
)

// fakeNode answers the four RPCs the source uses, with scripted replies:
// the node variants and the bad inputs a unit test needs. Real consensus
// checks come from btcd in cmd/clminer's solo tests.
type fakeNode struct {
	mu        sync.Mutex
	user      string
	pass      string
	chain     string
	ibd       bool
	template  func() any // the getblocktemplate result
	gbtErr    *RPCError
	requests  []map[string]any // getblocktemplate params
	submitted []string
	submitRes any
	best      string
	// busySubmits: answer this many submitblock calls with HTTP 503 (Bitcoin
	// Core's full work queue) before reading one.
	busySubmits int
	// submitSeen, when set, gets each block as the node reads it; the
	// verdict then waits for submitGate (nil: at once), so a test can hold
	// it back.
	submitSeen chan string
	submitGate chan struct{}
	// acceptMoves: templates build on best (when set), and an accepted
	// block becomes best, as on a real node.
	acceptMoves bool
	// hang: every request is read and never answered (a node process
	// that hangs behind a listener that still accepts).
	hang bool
}

func (f *fakeNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u, p, ok := r.BasicAuth()
	if !ok || u != f.user || p != f.pass {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var req struct {
		ID     any    `json:"id"`
		Method string `json:"method"`
		Params []any  `json:"params"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	if f.hang {
		f.mu.Unlock()
		<-r.Context().Done()
		return
	}
	if req.Method == "submitblock" && f.busySubmits > 0 {
		f.busySubmits--
		f.mu.Unlock()
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var result any
	var rerr *RPCError
	switch req.Method {
	case "getblockchaininfo":
		result = map[string]any{"chain": f.chain, "blocks": 100, "initialblockdownload": f.ibd}
	case "getblocktemplate":
		if len(req.Params) > 0 {
			if m, ok := req.Params[0].(map[string]any); ok {
				f.requests = append(f.requests, m)
				if _, lp := m["longpollid"]; lp {
					f.mu.Unlock()
					<-r.Context().Done() // a longpoll that never fires
					return
				}
			}
		}
		if f.gbtErr != nil {
			rerr = f.gbtErr
		} else {
			result = f.template()
			if m, ok := result.(map[string]any); ok && f.acceptMoves && f.best != "" {
				m["previousblockhash"] = f.best
			}
		}
	case "getbestblockhash":
		result = f.best
	case "submitblock":
		f.submitted = append(f.submitted, req.Params[0].(string))
		result = f.submitRes
		if raw, err := hex.DecodeString(req.Params[0].(string)); err == nil && len(raw) >= 80 && f.acceptMoves && result == nil {
			f.best = blockHash([80]byte(raw[:80]))
		}
		if seen, gate := f.submitSeen, f.submitGate; seen != nil {
			f.mu.Unlock()
			seen <- req.Params[0].(string)
			if gate != nil {
				<-gate
			}
			f.mu.Lock()
		}
	default:
		rerr = &RPCError{Code: codeMethodNotFound, Message: "Method not found"}
	}
	f.mu.Unlock()
	status := http.StatusOK
	if rerr != nil {
		status = http.StatusInternalServerError // Bitcoin Core's legacy convention
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"result": result, "error": rerr, "id": req.ID})
}

func (f *fakeNode) gbtRequests() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]any(nil), f.requests...)
}

// recSink records what a source hands the miner.
type recSink struct {
	jobs   chan *source.Job
	events chan source.Event
	nowork chan string
}

func newRecSink() *recSink {
	return &recSink{jobs: make(chan *source.Job, 64), events: make(chan source.Event, 256), nowork: make(chan string, 64)}
}

func (s *recSink) Job(j *source.Job) { s.jobs <- j }
func (s *recSink) NoWork(r string) {
	select {
	case s.nowork <- r:
	default:
	}
}
func (s *recSink) Event(e source.Event) {
	select {
	case s.events <- e:
	default:
	}
}

// waitEvent returns the first event of kind k.
func (s *recSink) waitEvent(t *testing.T, k source.EventKind) source.Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e := <-s.events:
			if e.Kind == k {
				return e
			}
		case <-timeout:
			t.Fatalf("no %v event", k)
		}
	}
}

func (s *recSink) waitJob(t *testing.T) *source.Job {
	t.Helper()
	select {
	case j := <-s.jobs:
		return j
	case <-time.After(10 * time.Second):
		t.Fatal("no job")
		return nil
	}
}

// startSource runs a source on f until the test ends.
func startSource(t *testing.T, f *fakeNode, addr string, opt Options) (*Source, *recSink) {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	opt.PollInterval = 20 * time.Millisecond
	opt.Retry.Max = 50 * time.Millisecond
	s, err := New(Config{Endpoint: Endpoint{URL: srv.URL, User: "u", Pass: "secret-pass"}, Address: addr, VersionRolling: true}, opt)
	if err != nil {
		t.Fatal(err)
	}
	sink := newRecSink()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Run(ctx, sink)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return s, sink
}

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}
