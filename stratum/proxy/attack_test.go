package proxy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/internal/testkit"
	"clminer/stratum"
	"clminer/stratum/pooltest"
	"clminer/stratum/wire"
)

// The attacks of issue 22 against the proxy's front door, each played
// in-process and judged by what it costs (heap, goroutines, upstream
// messages) and by the honest miners' shares, never by time. Attackers
// connect from other loopback addresses (127.0.0.2 and up; Linux routes all
// of 127/8 to lo) so that per-address limits can tell them from the honest
// miners on 127.0.0.1, as they would on a LAN.

// dialFrom connects to addr from the local address ip.
func dialFrom(t testing.TB, addr, ip string) (net.Conn, error) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return d.Dial("tcp", addr)
}

// attackerIP is the i-th attacker address, 127.0.1.0 and up (never the
// honest 127.0.0.1).
func attackerIP(i int) string { return fmt.Sprintf("127.0.%d.%d", 1+i/250, 1+i%250) }

// heapWatch samples the heap's object bytes while an attack runs; the peak
// above the baseline is what the attack made the process hold.
type heapWatch struct {
	base uint64
	peak atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func watchHeap() *heapWatch {
	runtime.GC()
	h := &heapWatch{base: heapObjects(), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			if v := heapObjects(); v > h.peak.Load() {
				h.peak.Store(v)
			}
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

// Stop returns the peak growth in bytes.
func (h *heapWatch) Stop() uint64 {
	close(h.stop)
	<-h.done
	if p := h.peak.Load(); p > h.base {
		return p - h.base
	}
	return 0
}

// liveHeap is the heap in use after a collection: what the process holds.
// goroutinesBack waits until the goroutine count is back to at most n.
func goroutinesBack(t *testing.T, n int) {
	t.Helper()
	testkit.EventuallyWithin(t, 30*time.Second, func() bool { return runtime.NumGoroutine() <= n }, fmt.Sprintf("goroutines back to %d", n))
}

// honestMining waits for the honest worker's first share and returns a
// check that more arrive (shares counted at the pool).
func honestMining(t *testing.T, pool *pooltest.Server, worker string) func(more int, during string) {
	t.Helper()
	testkit.EventuallyWithin(t, 60*time.Second, func() bool { return acceptedBy(pool, worker) > 0 }, "a first share from "+worker)
	return func(more int, during string) {
		t.Helper()
		before := acceptedBy(pool, worker)
		testkit.EventuallyWithin(t, 60*time.Second, func() bool {
			return acceptedBy(pool, worker) >= before+more
		}, fmt.Sprintf("%d more shares from %s %s", more, worker, during))
	}
}

func line(v any) []byte {
	b, _ := json.Marshal(v)
	return append(b, '\n')
}

// Point 3: pings with 15 KB ids, before subscribe, from connections that
// never read. Today each was answered with its id echoed, queued up to 256
// lines (about 4 MB) per miner. Now an id over 64 bytes is garbage, never
// echoed, and what waits for a miner is bounded in bytes.
func TestAttackHugeIDPingsBeforeSubscribe(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{})
	// No write or handshake timeout: what a non-reader costs must be
	// bounded by the queue, not by how soon a timeout ends it (under -race
	// the attack outlasts both).
	px := startProxy(t, Config{WriteTimeout: time.Hour, HandshakeTimeout: time.Hour}, pool)
	addr := px.srv.Addr()
	_ = startDownstream(t, px.url(), "honest", stratum.Options{})
	more := honestMining(t, pool, "farm.honest")
	g0 := runtime.NumGoroutine()

	// One reader first: a huge id is never echoed back.
	c, err := dialFrom(t, addr, attackerIP(0))
	require.NoError(t, err)
	huge := strings.Repeat("7", 15000)
	_, err = c.Write(line(map[string]any{"id": huge, "method": "mining.ping", "params": []any{}}))
	require.NoError(t, err)
	_, _ = c.Write(line(map[string]any{"id": 1, "method": "mining.ping", "params": []any{}}))
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, _ := bufio.NewReader(c).ReadString('\n')
	assert.Less(t, len(got), 200, "the huge id is not echoed: %.80q", got)
	c.Close()

	// 12 connections sending 400 such pings and a subscribe, never reading:
	// Linux takes about 4 MB (270 echoes) into the socket, the rest waited
	// in the proxy (its 256-line queue never filled), 2 MB per connection.
	const attackers, pings = 12, 400
	conns0 := func() int {
		px.srv.mu.Lock()
		defer px.srv.mu.Unlock()
		return len(px.srv.conns)
	}
	testkit.Eventually(t, func() bool { return conns0() == 1 }, "the reader gone")
	heap0 := liveHeap()
	h := watchHeap()
	var wg sync.WaitGroup
	conns := make([]net.Conn, attackers)
	for i := range conns {
		c, err := dialFrom(t, addr, attackerIP(1+i))
		require.NoError(t, err)
		_ = c.(*net.TCPConn).SetReadBuffer(4096)
		conns[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			ping := line(map[string]any{"id": huge, "method": "mining.ping", "params": []any{}})
			for range pings {
				_ = c.SetWriteDeadline(time.Now().Add(60 * time.Second))
				if _, err := c.Write(ping); err != nil {
					return
				}
			}
			_, _ = c.Write(line(map[string]any{"id": 1, "method": "mining.subscribe", "params": []any{"x"}}))
		}()
	}
	wg.Wait()
	// The proxy has read every line once each attacker is either dropped
	// or subscribed.
	testkit.EventuallyWithin(t, 60*time.Second, func() bool {
		return conns0() == len(px.srv.Status().Miners)
	}, "the proxy through the attackers' lines")
	held := int64(liveHeap()) - int64(heap0)
	more(3, "during the ping flood")
	grew := h.Stop()
	t.Logf("under %d x %d pings of 15 KB ids: heap held %.1f MB, peak growth %.1f MB", attackers, pings, float64(held)/1e6, float64(grew)/1e6)
	assert.Less(t, held, int64(16<<20), "the ping flood made the proxy hold %d bytes", held)
	assert.Less(t, grew, uint64(32<<20), "the ping flood made the heap grow %d bytes", grew)
	for _, c := range conns {
		c.Close()
	}
	goroutinesBack(t, g0)
}

// Point 3, with short ids: a miner that pings and never reads is dropped
// once what waits for it passes the byte bound, not after 256 lines.
func TestAttackWriteQueueBoundedInBytes(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{})
	px := startProxy(t, Config{WriteTimeout: time.Hour}, pool) // as above
	honest := startDownstream(t, px.url(), "honest", stratum.Options{})
	more := honestMining(t, pool, "farm.honest")
	// Big jobs (60 KB notify lines) to miners that authorized and never
	// read: 120 lines would be 7 MB queued for each.
	const deafs = 8
	for i := 0; i < deafs; i++ {
		deaf := dialRaw(t, px.srv.Addr())
		_ = deaf.c.(*net.TCPConn).SetReadBuffer(4096)
		deaf.call("mining.subscribe", "deaf")
		deaf.call("mining.authorize", fmt.Sprintf("deaf%d", i), "x")
	}
	testkit.Eventually(t, func() bool { return len(px.srv.Status().Miners) == deafs+1 }, "the deaf miners authorized")
	heap0 := liveHeap()
	h := watchHeap()
	// Clean jobs: the pool remembers only its last 32, and shares for the
	// ones it forgot would make the proxy's pool connection sick.
	big := pooltest.GenerateJob("big", 4, 4, true)
	big.Coinb2 = strings.Repeat("ab", 30000)
	for i := 0; i < 120; i++ {
		big.JobID = fmt.Sprintf("big%d", i)
		pool.PushJobParams(big)
	}
	// Back to small jobs (hashing a 30 KB coinbase is slow under -race);
	// the proxy handles jobs in order, so once this one is current every
	// big one was sent.
	last := pool.PushJob(true)
	testkit.EventuallyWithin(t, 60*time.Second, func() bool {
		pj, _, _ := px.srv.current()
		return pj != nil && px.srv.issue(pj).ID == last
	}, "the proxy through the big jobs")
	held := int64(liveHeap()) - int64(heap0)
	grew := h.Stop()
	more(3, "after big jobs piled up for deaf miners")
	assert.EqualValues(t, 1, honest.client.Status()[0].Connects, "the honest miner, reading, was never dropped")
	t.Logf("120 60 KB jobs for %d deaf miners: heap held %.1f MB, peak growth %.1f MB", deafs, float64(held)/1e6, float64(grew)/1e6)
	assert.Less(t, held, int64(16<<20), "jobs queued for deaf miners: %d bytes held", held)
	assert.Less(t, grew, uint64(32<<20), "jobs queued for deaf miners: heap grew %d bytes", grew)
}

// Point 5: with a pool extranonce2 below 6 bytes there are 256 prefixes.
// Subscribe-and-close sessions, subscribe-never-authorize sessions from
// many addresses and idle TCP connections must not lock a new miner out.
func TestAttackPrefixExhaustion(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{}) // extranonce2_size 4: 1-byte prefixes
	px := startProxy(t, Config{}, pool)
	addr := px.srv.Addr()
	_ = startDownstream(t, px.url(), "honest", stratum.Options{})
	more := honestMining(t, pool, "farm.honest")
	g0 := runtime.NumGoroutine()
	subscribe := line(map[string]any{"id": 1, "method": "mining.subscribe", "params": []any{"x"}})

	// 300 subscribe-and-close sessions, each waiting for its prefix.
	for i := 0; i < 300; i++ {
		c, err := dialFrom(t, addr, attackerIP(i%8))
		require.NoError(t, err)
		_, _ = c.Write(subscribe)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _ = bufio.NewReader(c).ReadString('\n')
		c.Close()
	}
	newcomer := func(name string) {
		t.Helper()
		s := handshake(t, dialRaw(t, addr), name, false)
		assert.NotEmpty(t, s.job.JobID, "%s got a job", name)
		s.c.Close()
	}
	newcomer("after-subscribe-and-close")

	// 300 sessions that subscribe and never authorize, from 40 addresses.
	var held []net.Conn
	for i := 0; i < 300; i++ {
		c, err := dialFrom(t, addr, attackerIP(i%40))
		require.NoError(t, err)
		held = append(held, c)
		_, _ = c.Write(subscribe)
	}
	for _, c := range held {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _ = bufio.NewReader(c).ReadString('\n')
	}
	newcomer("during-subscribe-never-authorize")
	more(2, "while sessions hold prefixes without authorizing")

	// 1,100 idle TCP connections from one address.
	for i := 0; i < 1100; i++ {
		c, err := dialFrom(t, addr, attackerIP(50))
		if err != nil {
			break
		}
		held = append(held, c)
	}
	newcomer("during-idle-flood")
	more(2, "during the idle flood")
	assert.Zero(t, pool.Stats().Rejected)
	for _, c := range held {
		c.Close()
	}
	goroutinesBack(t, g0)
}

// authorizes counts the mining.authorize requests the pool received.
func authorizes(pool *pooltest.Server) int {
	n := 0
	for _, r := range pool.Requests() {
		if r.Method == wire.MethodAuthorize {
			n++
		}
	}
	return n
}

// Point 6: connect/authorize/leave loops must not each cost an upstream
// authorize: a returning name costs nothing, names without a subscribe
// nothing, and new names from one address come at a bounded rate.
func TestAttackAuthorizeLoopsUpstream(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{Extranonce2Size: 8}) // 2-byte prefixes: room for every loop
	px := startProxy(t, Config{}, pool)
	addr := px.srv.Addr()
	_ = startDownstream(t, px.url(), "honest", stratum.Options{})
	more := honestMining(t, pool, "farm.honest")
	g0 := runtime.NumGoroutine()
	loop := func(n int, subscribe bool, name func(i int) string) int {
		before := authorizes(pool)
		for i := 0; i < n; i++ {
			c, err := dialFrom(t, addr, attackerIP(0))
			require.NoError(t, err)
			r := &raw{t: t, c: c, r: bufio.NewReader(c)}
			if subscribe {
				r.until(r.call("mining.subscribe", "loop"))
			}
			r.until(r.call("mining.authorize", name(i), "x"))
			c.Close()
		}
		testkit.Eventually(t, func() bool { return len(px.srv.Status().Miners) == 1 }, "the loops' connections closed")
		return authorizes(pool) - before
	}
	one := loop(200, true, func(int) string { return "same.rig" })
	none := loop(200, false, func(i int) string { return fmt.Sprintf("nosub.rig%d", i) })
	distinct := loop(200, true, func(i int) string { return fmt.Sprintf("x.r%d", i) })
	t.Logf("upstream authorizes from 200 loops: one name %d, no subscribe %d, distinct names %d", one, none, distinct)
	assert.LessOrEqual(t, one, 1, "one name, 200 times: authorized upstream once")
	assert.Zero(t, none, "names never subscribed cost no upstream authorize")
	assert.LessOrEqual(t, distinct, newNamesBurst+2, "new names from one address at a bounded rate")
	more(2, "after the loops")
	goroutinesBack(t, g0)
}

// Point 7: 4,200 junk names must not fill the per-worker table: names of
// miners that left are pruned, and a new honest worker is counted under its
// own name; /metrics stays bounded.
func TestAttackJunkWorkerNames(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{Extranonce2Size: 8}) // 2-byte prefixes: room for every connection
	px := startProxy(t, Config{}, pool)
	addr := px.srv.Addr()
	for i := 0; i < 4200/8; i++ {
		c, err := dialFrom(t, addr, attackerIP(i%4))
		require.NoError(t, err)
		r := &raw{t: t, c: c, r: bufio.NewReader(c)}
		r.until(r.call("mining.subscribe", "junk"))
		var last int
		for k := 0; k < 8; k++ {
			last = r.call("mining.authorize", fmt.Sprintf("junk%d.w%d", i, k), "x")
		}
		r.until(last)
		c.Close()
	}
	testkit.Eventually(t, func() bool { return len(px.srv.Status().Miners) == 0 }, "the junk connections closed")
	_ = startDownstream(t, px.url(), "honest", stratum.Options{})
	honestMining(t, pool, "farm.honest")
	st := px.srv.Status()
	var honest *WorkerStatus
	for i := range st.Workers {
		if st.Workers[i].Name == "honest" {
			honest = &st.Workers[i]
		}
	}
	require.NotNil(t, honest, "the honest worker has its own row among %d", len(st.Workers))
	testkit.EventuallyWithin(t, 30*time.Second, func() bool {
		for _, w := range px.srv.Status().Workers {
			if w.Name == "honest" && w.Shares.Accepted > 0 {
				return true
			}
		}
		return false
	}, "the honest worker's accepted shares counted under its name")
	assert.LessOrEqual(t, len(st.Workers), keptWorkerStats+1, "names of miners that left are pruned")
	reg := prometheus.NewRegistry()
	reg.MustRegister(px.srv.Collector())
	mfs, err := reg.Gather()
	require.NoError(t, err)
	series := 0
	for _, mf := range mfs {
		series += len(mf.GetMetric())
	}
	t.Logf("%d workers in status, %d series in /metrics after 4,200 junk names", len(st.Workers), series)
	assert.Less(t, series, 10*(keptWorkerStats+8), "/metrics bounded")
}

// Point 8: two --miner-users users with the same rig name are two upstream
// workers, and passwords cannot be tried fast from one address.
func TestMinerUsersKeptApartUpstream(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{})
	px := startProxy(t, Config{Users: map[string]string{"alice.rig1": "a", "bob.rig1": "b"}}, pool)
	a := handshakePass(t, dialRaw(t, px.srv.Addr()), "alice.rig1", "a")
	b := handshakePass(t, dialRaw(t, px.srv.Addr()), "bob.rig1", "b")
	defer a.c.Close()
	defer b.c.Close()
	up := map[string]string{}
	for _, w := range px.srv.Status().Workers {
		up[w.Name] = w.Upstream
	}
	t.Logf("upstream names: %v", up)
	require.NotEmpty(t, up["alice.rig1"])
	assert.NotEqual(t, up["alice.rig1"], up["bob.rig1"], "alice and bob are apart upstream")
	assert.Equal(t, 3, pool.Stats().Authorized, "the farm user and one upstream worker each")
}

func handshakePass(t *testing.T, r *raw, user, pass string) *raw {
	t.Helper()
	r.until(r.call("mining.subscribe", "x"))
	rep, _ := r.until(r.call("mining.authorize", user, pass))
	require.Equal(t, "true", string(rep.Result), "%s: %s", user, rep.Error)
	return r
}

func TestAttackPasswordGuessing(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{})
	px := startProxy(t, Config{Users: map[string]string{"rig1": "s3cret", "honest": "h"}}, pool)
	addr := px.srv.Addr()
	checked := 0 // authorizes answered "Unauthorized worker": a password tried
	for i := 0; i < 100; i++ {
		c, err := dialFrom(t, addr, attackerIP(0))
		if err != nil {
			continue
		}
		r := &raw{t: t, c: c, r: bufio.NewReader(c)}
		_, _ = c.Write(line(map[string]any{"id": 1, "method": "mining.subscribe", "params": []any{"x"}}))
		for k := 0; k < maxAuthFailures; k++ {
			_, _ = c.Write(line(map[string]any{"id": 2 + k, "method": "mining.authorize", "params": []any{"rig1", fmt.Sprintf("guess%d-%d", i, k)}}))
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			b, err := r.r.ReadBytes('\n')
			if err != nil {
				break
			}
			var l rline
			if json.Unmarshal(b, &l) == nil && l.ID != nil && *l.ID >= 2 && strings.Contains(string(l.Error), "Unauthorized worker") {
				checked++
			}
		}
		c.Close()
	}
	t.Logf("passwords tried from one address in 100 connections: %d", checked)
	assert.LessOrEqual(t, checked, failedAuthBurst, "failed authorizations from one address are rate-limited")
	// another address is not locked out
	handshakePass(t, dialRaw(t, addr), "honest", "h").c.Close()
}

// Point 5 with authorize added: sessions that subscribe, authorize and
// never send a share hold every prefix. Past SilentGrace the oldest of
// them gives its prefix to a newcomer; a miner that has sent shares keeps
// its own, and none of its shares is lost or doubled.
func TestAttackAuthorizedSilentHolders(t *testing.T) {
	pool := pooltest.Start(t, pooltest.Config{}) // extranonce2_size 4: 1-byte prefixes, 256 of them
	px := startProxy(t, Config{SilentGrace: time.Millisecond}, pool)
	addr := px.srv.Addr()
	_ = startDownstream(t, px.url(), "honest", stratum.Options{})
	more := honestMining(t, pool, "farm.honest")
	var held []*raw
	for i := 0; i < 300; i++ {
		c, err := dialFrom(t, addr, attackerIP(i%8))
		require.NoError(t, err)
		r := &raw{t: t, c: c, r: bufio.NewReader(c)}
		r.call("mining.subscribe", "x")
		r.call("mining.authorize", fmt.Sprintf("squatter%d", i), "x")
		held = append(held, r)
	}
	s := handshake(t, dialRaw(t, addr), "newcomer", false)
	assert.NotEmpty(t, s.job.JobID, "the newcomer got a prefix and a job")
	more(2, "while authorized sessions squat on prefixes")
	assert.Zero(t, pool.Stats().Rejected)
	assert.Zero(t, pool.Stats().Duplicate)
	for _, r := range held {
		r.c.Close()
	}
}
