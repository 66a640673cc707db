package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/log"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"clminer/internal/testkit"
	"clminer/work/miner"
	"clminer/work/retry"
	"clminer/work/source"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type hook struct {
	mu     sync.Mutex
	fail   int // answer 503 this many times first
	got    []Event
	status int
	posted chan struct{}
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	defer func() {
		select {
		case h.posted <- struct{}{}:
		default:
		}
	}()
	if h.fail > 0 {
		h.fail--
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	if h.status != 0 {
		http.Error(w, "no", h.status)
		return
	}
	var e Event
	b, _ := io.ReadAll(r.Body)
	if r.Header.Get("Content-Type") == "application/json" && json.Unmarshal(b, &e) == nil {
		h.got = append(h.got, e)
	}
}

func (h *hook) events() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Event(nil), h.got...)
}

func start(t *testing.T, n *Notifier) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func waitPosts(t *testing.T, h *hook, n int) {
	t.Helper()
	for len(h.events()) < n {
		select {
		case <-h.posted:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d events delivered", len(h.events()), n)
		}
	}
}

// A failing webhook is retried with backoff until it takes the event; a
// flapping pool gives one pool_down per interval; the body carries the
// event's fields.
func TestDeliveryWithRetries(t *testing.T) {
	h := &hook{fail: 2, posted: make(chan struct{}, 1)}
	srv := httptest.NewServer(h)
	defer srv.Close()
	n, err := New(srv.URL+"/hook/s3cr3t-token", Options{Rig: "rig7", Retry: retry.Backoff{Initial: time.Millisecond, Max: 4 * time.Millisecond}})
	require.NoError(t, err)
	assert.Equal(t, srv.URL, n.Host(), "the loggable form drops the path and its token")
	start(t, n)
	n.Notify(BlockFound(miner.ShareEvent{Device: "opencl:0:0", PoolURL: "stratum+tcp://p:1", ShareDiff: 1e14, Hash: "0000abc"}))
	o := Observer{N: n}
	now := time.Now()
	o.PoolEvent(source.Event{Kind: source.EventDisconnected, Pool: 0, URL: "stratum+tcp://p:1", Err: errors.New("EOF"), Time: now})
	o.PoolEvent(source.Event{Kind: source.EventDisconnected, Pool: 0, URL: "stratum+tcp://p:1", Time: now.Add(time.Minute)})
	o.PoolEvent(source.Event{Kind: source.EventConnected, Pool: 1, Time: now})
	o.PoolEvent(source.Event{Kind: source.EventSick, Pool: 0, URL: "stratum+tcp://p:1", Time: now.Add(6 * time.Minute)})
	waitPosts(t, h, 3)
	ev := h.events()
	assert.Equal(t, "block_found", ev[0].Event)
	assert.Equal(t, "rig7", ev[0].Rig)
	assert.Equal(t, 1e14, ev[0].Difficulty)
	assert.Equal(t, "opencl:0:0", ev[0].Device)
	assert.Equal(t, "pool_down", ev[1].Event)
	assert.Equal(t, "disconnected: EOF", ev[1].Reason)
	assert.Equal(t, "pool_down", ev[2].Event)
	assert.Equal(t, "sick", ev[2].Reason)
	testkit.Eventually(t, func() bool { sent, _, _ := n.Stats(); return sent == 3 }, "three posts sent")
	_, failed, dropped := n.Stats()
	assert.Zero(t, failed+dropped)
}

// A webhook that hangs never blocks Notify: the queue fills and further
// events are dropped and counted; a 4xx is not retried; the log names the
// host, never the token.
func TestNeverBlocks(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer hang.Close()
	defer close(release)
	n, err := New(hang.URL+"/t0ken", Options{Queue: 4, Timeout: time.Hour})
	require.NoError(t, err)
	start(t, n)
	done := make(chan struct{})
	go func() {
		for range 100 {
			n.Notify(Event{Event: "best_share"})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Notify blocked")
	}
	_, _, dropped := n.Stats()
	assert.GreaterOrEqual(t, dropped, uint64(95))

	var logs strings.Builder
	h := &hook{status: http.StatusForbidden, posted: make(chan struct{}, 1)}
	srv := httptest.NewServer(h)
	defer srv.Close()
	n2, err := New(srv.URL+"/t0ken", Options{Retry: retry.Backoff{Initial: time.Millisecond}, Logger: log.New(&logs)})
	require.NoError(t, err)
	start(t, n2)
	n2.Notify(Event{Event: "best_share"})
	<-h.posted
	testkit.Eventually(t, func() bool { _, failed, _ := n2.Stats(); return failed == 1 }, "the refused post counted as failed")
	assert.Contains(t, logs.String(), "403")
	assert.NotContains(t, logs.String(), "t0ken")

	for _, bad := range []string{"ftp://x/y", "hooks.example/x", "http://", ""} {
		_, err := New(bad, Options{})
		assert.Error(t, err, bad)
	}
}
