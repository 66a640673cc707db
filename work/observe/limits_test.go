package observe_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
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

	"clminer/work/observe"
)

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// Issue 22 point 4: connections sending headers that never end, and idle
// connections, from other addresses (127.0.1.x; Linux routes 127/8 to lo)
// cost the API bounded memory and goroutines, and requests from
// 127.0.0.1 keep being answered. Judged by heap and goroutines, not time.
func TestAPIHostileConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := observe.NewServer(ln, "", observe.Handlers{
		Metrics: prometheus.NewRegistry(),
		Status:  func() any { return map[string]int{"ok": 1} },
		Healthy: func() (bool, string) { return true, "ok" },
	})
	ctx, stopServing := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Run(ctx) }()
	defer func() { stopServing(); <-served }()
	addr := srv.Addr()
	dial := func(ip string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
		return d.Dial("tcp", addr)
	}
	get := func() bool {
		c := http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := c.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode == http.StatusOK
	}
	require.True(t, get())
	g0 := runtime.NumGoroutine()

	// 40 connections each sending 1 MB of a header line that never ends.
	runtime.GC()
	base := heapObjects()
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if v := heapObjects(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	var wg sync.WaitGroup
	var conns []net.Conn
	for i := 0; i < 40; i++ {
		c, err := dial(fmt.Sprintf("127.0.1.%d", 1+i))
		require.NoError(t, err)
		conns = append(conns, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := bufio.NewWriter(c)
			_, _ = w.WriteString("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Junk: ")
			chunk := strings.Repeat("a", 64<<10)
			for k := 0; k < 16; k++ {
				_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if _, err := w.WriteString(chunk); err != nil {
					return
				}
			}
			_ = w.Flush()
		}()
	}
	wg.Wait()
	assert.True(t, get(), "answered during the header flood")
	close(stop)
	<-sampled
	grew := uint64(0)
	if p := peak.Load(); p > base {
		grew = p - base
	}
	t.Logf("heap peak growth under 40 x 1 MB unfinished headers: %.1f MB", float64(grew)/1e6)
	assert.Less(t, grew, uint64(10<<20), "unfinished headers held %d bytes", grew)
	for _, c := range conns {
		c.Close()
	}

	// 300 idle connections from one address: a bounded number is kept.
	conns = conns[:0]
	for i := 0; i < 300; i++ {
		c, err := dial("127.0.1.200")
		require.NoError(t, err)
		conns = append(conns, c)
	}
	answered := 0
	for i := 0; i < 20; i++ {
		if get() {
			answered++
		}
	}
	assert.Equal(t, 20, answered, "requests from another address answered during the idle flood")
	held := runtime.NumGoroutine() - g0
	t.Logf("goroutines with 300 idle connections open: %d more than before", held)
	assert.Less(t, held, 100, "idle connections hold a bounded number of goroutines")
	for _, c := range conns {
		c.Close()
	}
}
