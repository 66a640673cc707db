package stratum

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"clminer/stratum/pooltest"
	"clminer/work"
	"clminer/work/retry"
	"clminer/work/source"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder collects callbacks.
type recorder struct {
	jobs   chan *source.Job
	mu     sync.Mutex
	events []source.Event
	noWork int
}

func newRecorder() *recorder { return &recorder{jobs: make(chan *source.Job, 1000)} }

// Job, NoWork and Event make the recorder a source.Sink.
func (r *recorder) Job(j *source.Job) { r.jobs <- j }

func (r *recorder) NoWork(reason string) {
	r.mu.Lock()
	r.noWork++
	r.mu.Unlock()
}

func (r *recorder) Event(e source.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) eventList() []source.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]source.Event(nil), r.events...)
}

func (r *recorder) hasEvent(kind source.EventKind, pool int) bool {
	for _, e := range r.eventList() {
		if e.Kind == kind && e.Pool == pool {
			return true
		}
	}
	return false
}

// nextJob waits for a job matching ok (nil: any).
func (r *recorder) nextJob(t *testing.T, ok func(*source.Job) bool) *source.Job {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case j := <-r.jobs:
			if ok == nil || ok(j) {
				return j
			}
		case <-timeout:
			t.Fatalf("no matching job within 10 s; events: %+v", r.eventList())
			return nil
		}
	}
}

// testDialer can refuse chosen addresses.
type testDialer struct {
	mu      sync.Mutex
	refused map[string]bool
	dials   map[string]int
}

func newTestDialer() *testDialer {
	return &testDialer{refused: map[string]bool{}, dials: map[string]int{}}
}

func (d *testDialer) set(addr string, refused bool) {
	d.mu.Lock()
	d.refused[addr] = refused
	d.mu.Unlock()
}

func (d *testDialer) count(addr string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dials[addr]
}

func (d *testDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.dials[addr]++
	refused := d.refused[addr]
	d.mu.Unlock()
	if refused {
		return nil, errors.New("test dialer: connection refused")
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

func testOptions(r *recorder) Options {
	return Options{
		ReadTimeout:      5 * time.Second,
		DialTimeout:      2 * time.Second,
		CallTimeout:      300 * time.Millisecond,
		HandshakeTimeout: 2 * time.Second,
		SubmitTimeout:    2 * time.Second,
		HoldDown:         time.Second,
		Retry:            retry.Backoff{Initial: 50 * time.Millisecond, Max: 400 * time.Millisecond},
	}
}

// runClient starts Run and stops it (waiting for it) at cleanup.
func runClient(t *testing.T, pools []PoolConfig, opts Options, r *recorder) *Client {
	t.Helper()
	c, err := NewClient(pools, opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, r) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return")
		}
	})
	return c
}

func pool(s *pooltest.Server) PoolConfig {
	return PoolConfig{URL: s.URL(), User: "worker.1", Pass: "x"}
}

// mine finds a nonce meeting the job's share target (tests use tiny
// difficulties) and builds its submit params.
func mine(t *testing.T, j *source.Job, en2 []byte, version uint32) work.Submit {
	t.Helper()
	u, err := j.NewUnit(en2, version, j.NTime)
	require.NoError(t, err)
	for n := uint32(0); n < 1<<24; n++ {
		if u.Check(n).MeetsShare {
			s, err := u.Submit(j.Worker, n, j.RollingMask)
			require.NoError(t, err)
			return s
		}
	}
	t.Fatal("no share found")
	return work.Submit{}
}

func en2(j *source.Job, b byte) []byte {
	e := make([]byte, j.Extranonce2Size)
	e[0] = b
	return e
}

// fakeClock is an Options.Now that moves only when the test advances it, so
// health windows, submit expiry and rate windows are crossed by fiat rather
// than waited out.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	reads  int
	want   int
	waiter chan struct{}
}

func newFakeClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	if c.waiter != nil && c.reads >= c.want {
		close(c.waiter)
		c.waiter = nil
	}
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// waitReads waits until the clock has been read n more times. A session's
// monitor reads it once per check and then decides, so with no other
// traffic two reads after Advance mean a check at the new time finished.
func (c *fakeClock) waitReads(t *testing.T, n int) {
	t.Helper()
	c.mu.Lock()
	ch := make(chan struct{})
	c.want, c.waiter = c.reads+n, ch
	c.mu.Unlock()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("the clock was not read %d more times within 10 s", n)
	}
}
