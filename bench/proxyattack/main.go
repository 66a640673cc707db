package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"clminer/stratum/pooltest"
	"clminer/stratum/wire"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: proxyattack pool|ping|subclose|subhold|idle [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:23333", "pool: address to serve")
	diff := fs.Float64("difficulty", 0.001, "pool: share difficulty")
	en2 := fs.Int("en2", 4, "pool: extranonce2_size (below 6: the proxy has 256 prefixes)")
	jobEvery := fs.Duration("job-interval", 10*time.Minute, "pool: how often a clean job comes")
	target := fs.String("target", "127.0.0.1:23334", "attack: the proxy")
	duration := fs.Duration("duration", 60*time.Second, "attack: how long")
	conns := fs.Int("conns", 300, "attack: connections")
	addrs := fs.Int("addrs", 30, "attack: source addresses 127.0.1.1 and up")
	pings := fs.Int("pings", 400, "ping: pings per connection")
	idBytes := fs.Int("id-bytes", 15000, "ping: id size")
	hold := fs.Duration("hold", 35*time.Second, "ping: how long a connection that took every ping is held")
	burst := fs.Int("burst", 260, "subclose: sessions per burst")
	every := fs.Duration("every", 5*time.Second, "subclose: time between bursts")
	_ = fs.Parse(os.Args[2:])
	if *addrs < 1 || *addrs > 250*250 {
		fmt.Fprintln(os.Stderr, "-addrs: 1..62500")
		os.Exit(2)
	}
	if *listen != "" && os.Args[1] == "pool" {
		if h, _, err := net.SplitHostPort(*listen); err != nil || !net.ParseIP(h).IsLoopback() {
			fmt.Fprintln(os.Stderr, "-listen: a loopback host:port")
			os.Exit(2)
		}
	}
	if h, _, err := net.SplitHostPort(*target); err != nil || !net.ParseIP(h).IsLoopback() {
		fmt.Fprintln(os.Stderr, "-target: a loopback host:port (attacks only against this machine)")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a := &attack{target: *target, addrs: *addrs}
	if os.Args[1] != "pool" {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	switch os.Args[1] {
	case "pool":
		servePool(ctx, *listen, *diff, *en2, *jobEvery)
		return
	case "ping":
		a.ping(ctx, *conns, *pings, *idBytes, *hold)
	case "subclose":
		a.subclose(ctx, *burst, *every)
	case "subhold":
		a.subhold(ctx, *conns)
	case "idle":
		a.idle(ctx, *conns)
	default:
		fmt.Fprintln(os.Stderr, "unknown attack", os.Args[1])
		os.Exit(2)
	}
	b, _ := json.Marshal(map[string]any{"attack": os.Args[1], "connections": a.dials.Load(), "dial_errors": a.dialErrs.Load(),
		"dropped_by_proxy": a.dropped.Load(), "replies": a.replies.Load(), "proxy_full_replies": a.full.Load()})
	fmt.Println(string(b))
}

func servePool(ctx context.Context, addr string, diff float64, en2 int, every time.Duration) {
	p := pooltest.New(pooltest.Config{Addr: addr, Difficulty: diff, Extranonce2Size: en2})
	if err := p.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer p.Close()
	fmt.Println(p.URL())
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			st := p.Stats()
			b, _ := json.Marshal(st)
			fmt.Println(string(b))
			return
		case <-t.C:
			p.PushJob(true)
		}
	}
}

type attack struct {
	target                         string
	addrs                          int
	dials, dialErrs, dropped, full atomic.Int64
	replies                        atomic.Int64
}

// dial connects from the i-th attacker address.
func (a *attack) dial(ctx context.Context, i int) (net.Conn, error) {
	k := i % a.addrs
	ip := net.IPv4(127, 0, byte(1+k/250), byte(1+k%250))
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", a.target)
	if err != nil {
		a.dialErrs.Add(1)
		return nil, err
	}
	a.dials.Add(1)
	return c, nil
}

// closeOnDone closes c when ctx ends, so blocked reads and writes return.
func closeOnDone(ctx context.Context, c net.Conn) func() {
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
		}
		c.Close()
	}()
	return func() { close(done) }
}

func pause(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func request(id any, method string, params ...any) []byte {
	if params == nil {
		params = []any{}
	}
	b, _ := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	return append(b, '\n')
}

func workers(n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(i)
		}()
	}
	wg.Wait()
}

// ping: connections that send pings with huge ids before subscribing and
// never read; a connection that took every ping is held, one the proxy
// dropped is opened again a second later.
func (a *attack) ping(ctx context.Context, conns, pings, idBytes int, hold time.Duration) {
	line := request(strings.Repeat("7", idBytes), wire.MethodPing)
	workers(conns, func(i int) {
		for ctx.Err() == nil {
			c, err := a.dial(ctx, i)
			if err != nil {
				pause(ctx, time.Second)
				continue
			}
			stop := closeOnDone(ctx, c)
			_ = c.(*net.TCPConn).SetReadBuffer(4096)
			dropped := false
			for k := 0; k < pings && ctx.Err() == nil; k++ {
				_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Write(line); err != nil {
					dropped = true
					break
				}
			}
			if dropped {
				a.dropped.Add(1)
			} else {
				pause(ctx, hold)
			}
			stop()
			c.Close()
			pause(ctx, time.Second)
		}
	})
}

// subclose: bursts of sessions that subscribe, read their prefix and
// close.
func (a *attack) subclose(ctx context.Context, burst int, every time.Duration) {
	for n := 0; ctx.Err() == nil; n++ {
		workers(burst, func(i int) {
			c, err := a.dial(ctx, n*burst+i)
			if err != nil {
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write(request(1, wire.MethodSubscribe, "subclose")); err != nil {
				return
			}
			a.reply(bufio.NewReader(c))
		})
		pause(ctx, every)
	}
}

func (a *attack) reply(r *bufio.Reader) bool {
	l, err := r.ReadString('\n')
	if err != nil {
		return false
	}
	a.replies.Add(1)
	if strings.Contains(l, "proxy full") {
		a.full.Add(1)
	}
	return true
}

// subhold: sessions that subscribe and never authorize, opened again as
// soon as the proxy drops them.
func (a *attack) subhold(ctx context.Context, conns int) {
	workers(conns, func(i int) {
		for ctx.Err() == nil {
			c, err := a.dial(ctx, i)
			if err != nil {
				pause(ctx, 100*time.Millisecond)
				continue
			}
			stop := closeOnDone(ctx, c)
			r := bufio.NewReader(c)
			if _, err := c.Write(request(1, wire.MethodSubscribe, "subhold")); err == nil && a.reply(r) {
				for {
					if _, err := r.ReadString('\n'); err != nil {
						break
					}
				}
			}
			if ctx.Err() == nil {
				a.dropped.Add(1)
			}
			stop()
			c.Close()
			pause(ctx, 100*time.Millisecond)
		}
	})
}

// idle: TCP connections that send nothing, opened again as soon as the
// proxy drops them.
func (a *attack) idle(ctx context.Context, conns int) {
	workers(conns, func(i int) {
		for ctx.Err() == nil {
			c, err := a.dial(ctx, i)
			if err != nil {
				pause(ctx, 100*time.Millisecond)
				continue
			}
			stop := closeOnDone(ctx, c)
			_, _ = c.Read(make([]byte, 1))
			if ctx.Err() == nil {
				a.dropped.Add(1)
			}
			stop()
			c.Close()
			pause(ctx, 100*time.Millisecond)
		}
	})
}
