package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/log"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"clminer/gpu/gputest"
	"clminer/stratum"
	"clminer/stratum/pooltest"
	"clminer/work/device"
	"clminer/work/miner"
	"clminer/work/retry"
	"clminer/work/source"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fastOpts make failover and backoff quick enough for tests.
func fastOpts() stratum.Options {
	return stratum.Options{Retry: retry.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond}, HoldDown: time.Hour}
}

type proxyRun struct {
	srv    *Server
	client *stratum.Client
	stop   context.CancelFunc
	done   chan error
}

// startProxy runs a proxy in front of pools (in priority order).
func startProxy(t testing.TB, cfg Config, pools ...*pooltest.Server) *proxyRun {
	t.Helper()
	var pcs []stratum.PoolConfig
	for _, p := range pools {
		pcs = append(pcs, stratum.PoolConfig{URL: p.URL(), User: "farm", Pass: "x", VersionRolling: true})
	}
	client, err := stratum.NewClient(pcs, fastOpts())
	require.NoError(t, err)
	r := startProxyOn(t, cfg, client)
	r.client = client
	return r
}

// startProxyOn runs a proxy in front of any upstream.
func startProxyOn(t testing.TB, cfg Config, up source.Source) *proxyRun {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv, err := New(ln, cfg, up)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &proxyRun{srv: srv, stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-r.done:
			require.NoError(t, err)
		case <-time.After(15 * time.Second):
			t.Fatal("proxy did not stop")
		}
	})
	return r
}

// feeding is the upstream index of the job miners are sent now (-1:
// none).
func (r *proxyRun) feeding() int {
	pj, _, _ := r.srv.current()
	if pj == nil {
		return -1
	}
	return r.srv.issue(pj).Pool
}

func (r *proxyRun) url() string { return "stratum+tcp://" + r.srv.Addr() }

// downstream is a clminer (client + miner + reference device) mining on
// the proxy.
type downstream struct {
	m      *miner.Miner
	client *stratum.Client
	stop   context.CancelFunc
	done   chan error
	once   sync.Once
}

func startDownstream(t testing.TB, url, user string, opts stratum.Options, devs ...device.Device) *downstream {
	t.Helper()
	return startDownstreamWith(t, stratum.PoolConfig{URL: url, User: user, Pass: "x", VersionRolling: true}, opts, devs...)
}

func startDownstreamWith(t testing.TB, pc stratum.PoolConfig, opts stratum.Options, devs ...device.Device) *downstream {
	t.Helper()
	if len(devs) == 0 {
		devs = []device.Device{&gputest.Device{ID: "test0"}}
	}
	if opts.Retry == (retry.Backoff{}) {
		opts.Retry = retry.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond}
	}
	client, err := stratum.NewClient([]stratum.PoolConfig{pc}, opts)
	require.NoError(t, err)
	m, err := miner.New(miner.Config{Source: client, Devices: devs, Logger: log.New(io.Discard), DrainTimeout: 3 * time.Second})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	d := &downstream{m: m, client: client, stop: cancel, done: make(chan error, 1)}
	go func() { d.done <- m.Run(ctx) }()
	t.Cleanup(d.shutdown)
	return d
}

func (d *downstream) shutdown() {
	d.once.Do(func() {
		d.stop()
		<-d.done
	})
}

func acceptedBy(p *pooltest.Server, worker string) int {
	n := 0
	for _, s := range p.Shares() {
		if s.Worker == worker {
			n++
		}
	}
	return n
}

// raw is a hand-driven downstream connection.
type raw struct {
	t  testing.TB
	c  net.Conn
	r  *bufio.Reader
	id int
}

func dialRaw(t testing.TB, addr string) *raw {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return &raw{t: t, c: c, r: bufio.NewReaderSize(c, 1<<16)}
}

func (r *raw) call(method string, params ...any) int {
	r.id++
	if params == nil {
		params = []any{}
	}
	b, _ := json.Marshal(map[string]any{"id": r.id, "method": method, "params": params})
	_, err := r.c.Write(append(b, '\n'))
	require.NoError(r.t, err)
	return r.id
}

type rline struct {
	ID     *int            `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

func (r *raw) read() (rline, error) {
	_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := r.r.ReadBytes('\n')
	if err != nil {
		return rline{}, err
	}
	var l rline
	require.NoError(r.t, json.Unmarshal(b, &l), "line %q", b)
	return l, nil
}

// until reads lines up to the reply to id, returning it and the
// notifications before it.
func (r *raw) until(id int) (rline, []rline) {
	r.t.Helper()
	var notes []rline
	for {
		l, err := r.read()
		require.NoError(r.t, err)
		if l.ID != nil && *l.ID == id && l.Method == "" {
			return l, notes
		}
		notes = append(notes, l)
	}
}

type sourceJob = source.Job
