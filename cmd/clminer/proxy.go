package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/charmbracelet/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"clminer/stratum"
	"clminer/stratum/proxy"
	"clminer/work/miner"
	"clminer/work/observe"
)

func proxyFlags() []cli.Flag {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "listen", Value: "127.0.0.1:3334", Usage: "address miners connect to (loopback unless told otherwise, e.g. 0.0.0.0:3334)", EnvVars: []string{"CLMINER_PROXY_LISTEN"}},
		&cli.StringFlag{Name: "miner-users", Usage: "file of user:password lines; only those miners may authorize (default: any name)", EnvVars: []string{"CLMINER_PROXY_MINER_USERS"}},
		&cli.IntFlag{Name: "max-miners", Value: 1024, Usage: "miners served at once (also capped by 256^prefix bytes)", EnvVars: []string{"CLMINER_PROXY_MAX_MINERS"}},
		&cli.IntFlag{Name: "extranonce-prefix-size", Usage: "bytes of the pool's extranonce2 each miner's unique prefix takes (1..4; 0: 1 below 6 bytes, else 2)", EnvVars: []string{"CLMINER_PROXY_EXTRANONCE_PREFIX_SIZE"}},
		&cli.Float64Flag{Name: "miner-rate", Value: 200, Usage: "messages per second one miner may send (bursts of twice that); beyond it the proxy reads it slower", EnvVars: []string{"CLMINER_PROXY_MINER_RATE"}},
		&cli.IntFlag{Name: "max-conns-per-ip", Value: 64, Usage: "connections one address (an IPv6 /64) may hold open; raise it for many miners behind one NAT", EnvVars: []string{"CLMINER_PROXY_MAX_CONNS_PER_IP"}},
		&cli.IntFlag{Name: "max-unauthenticated-per-ip", Value: 16, Usage: "connections of one address not yet authorized; past it the oldest is closed", EnvVars: []string{"CLMINER_PROXY_MAX_UNAUTHENTICATED_PER_IP"}},
	}
	flags = append(flags, poolFlags(proxyURLUsage)...)
	flags = append(flags, soloFlags()...)
	flags = append(flags,
		&cli.Float64Flag{Name: "vardiff-start", Value: 1, Usage: "node upstream: a new miner's share difficulty (the proxy sets each miner's; a pool sets its own)", EnvVars: []string{"CLMINER_PROXY_VARDIFF_START"}},
		&cli.Float64Flag{Name: "vardiff-min", Value: 0.001, Usage: "node upstream: the lowest share difficulty vardiff or a miner's mining.suggest_difficulty may set", EnvVars: []string{"CLMINER_PROXY_VARDIFF_MIN"}},
		&cli.Float64Flag{Name: "vardiff-max", Usage: "node upstream: the highest share difficulty (0: none; never above the network's)", EnvVars: []string{"CLMINER_PROXY_VARDIFF_MAX"}},
		&cli.Float64Flag{Name: "vardiff-shares-per-minute", Value: 6, Usage: "node upstream: shares per minute vardiff aims at for each miner", EnvVars: []string{"CLMINER_PROXY_VARDIFF_SHARES_PER_MINUTE"}},
	)
	for _, f := range apiFlags() {
		if f.Names()[0] != "share-log" {
			flags = append(flags, f)
		}
	}
	return append(flags,
		&cli.DurationFlag{Name: "status-interval", Value: 30 * time.Second, Usage: "status line period (0: none)", EnvVars: []string{"CLMINER_STATUS_INTERVAL"}},
		&cli.DurationFlag{Name: "duration", Usage: "stop after this long (0: run until SIGINT/SIGTERM)", EnvVars: []string{"CLMINER_DURATION"}},
		logFileFlag(),
	)
}

func proxyCommand(h hooks) *cli.Command {
	return &cli.Command{
		Name:  "proxy",
		Usage: "serve Stratum v1 to a farm of miners over one upstream (a v1 or V2 pool, or a node) with failover, re-verifying every share",
		UsageText: "clminer proxy --listen 0.0.0.0:3334 -o stratum+tcp://pool:3333 -u wallet [-o stratum+tcp://backup:3333 -u wallet] [options]\n" +
			"   clminer proxy --listen 0.0.0.0:3334 -o stratum2+tcp://pool:3336/AUTHORITY_KEY -u account.farm [-o stratum+tcp://backup:3333 -u wallet] [options]\n" +
			"   clminer proxy --listen 0.0.0.0:3334 -o http://127.0.0.1:8332 --rpc-cookie ~/.bitcoin/.cookie --coinbase-addr ADDR [options]",
		Flags: proxyFlags(),
		Action: func(c *cli.Context) error {
			ps, err := prepareProxy(c)
			if err != nil {
				return err
			}
			if ps.logFile != nil {
				defer ps.logFile.Close()
			}
			return h.proxy(c.Context, ps)
		},
	}
}

// proxySetup is a proxy run's settings, all checked before anything binds.
type proxySetup struct {
	log            *log.Logger
	logFile        *observe.AppendFile // --log-file, or nil
	pools          []stratum.PoolConfig
	ups            []upstream
	nodes          map[int]nodeOpts
	listen         string // the miners' address (--listen)
	cfg            proxy.Config
	api            apiConfig
	statusInterval time.Duration
	duration       time.Duration
}

func prepareProxy(c *cli.Context) (_ *proxySetup, err error) {
	keepRunningOnBrokenPipe()
	logger, lf, err := startLogging(c)
	if err != nil {
		return nil, err
	}
	defer closeOnError(&err, lf)
	pools, ups, err := poolsFromFlags(c, nil)
	if err != nil {
		return nil, err
	}
	nodes, err := nodeSettings(c, nil, false, pools, ups)
	if err != nil {
		return nil, err
	}
	listen := strings.TrimSpace(c.String("listen"))
	host, port, err := net.SplitHostPort(listen)
	if err != nil || port == "" {
		return nil, fmt.Errorf("--listen %q: want host:port, e.g. 127.0.0.1:3334", listen)
	}
	if n := c.Int("max-miners"); n < 1 {
		return nil, fmt.Errorf("--max-miners %d: must be at least 1", n)
	}
	if n := c.Int("extranonce-prefix-size"); n < 0 || n > 4 {
		return nil, fmt.Errorf("--extranonce-prefix-size %d: want 1..4 bytes (0: automatic)", n)
	}
	if r := c.Float64("miner-rate"); r <= 0 {
		return nil, fmt.Errorf("--miner-rate %v: must be positive", r)
	}
	for _, f := range []string{"max-conns-per-ip", "max-unauthenticated-per-ip"} {
		if n := c.Int(f); n < 1 {
			return nil, fmt.Errorf("--%s %d: must be at least 1", f, n)
		}
	}
	for _, d := range []string{"status-interval", "duration"} {
		if c.Duration(d) < 0 {
			return nil, fmt.Errorf("--%s %v: must not be negative", d, c.Duration(d))
		}
	}
	if err := checkVardiff(c); err != nil {
		return nil, err
	}
	cfg := proxy.Config{Logger: logger, MaxMiners: c.Int("max-miners"), PrefixSize: c.Int("extranonce-prefix-size"),
		Rate: c.Float64("miner-rate"), Burst: int(2 * c.Float64("miner-rate")),
		MaxConnsPerIP: c.Int("max-conns-per-ip"), MaxUnauthPerIP: c.Int("max-unauthenticated-per-ip"),
		StartDifficulty: c.Float64("vardiff-start"), MinDifficulty: c.Float64("vardiff-min"), MaxDifficulty: c.Float64("vardiff-max"),
		SharesPerMinute: c.Float64("vardiff-shares-per-minute")}
	if path := c.String("miner-users"); path != "" {
		if cfg.Users, err = loadMinerUsers(path); err != nil {
			return nil, err
		}
		// Two users that would share a worker at the pool: said now, with
		// the other mistakes, not when the proxy starts.
		if err := proxy.CheckUsers(cfg.Users); err != nil {
			return nil, fmt.Errorf("%w (in %s)", err, path)
		}
	} else if !isLoopback(host) {
		logger.Warn("miners can connect from the network and any worker name is accepted (--miner-users limits them)",
			"event", "proxy.open", "listen", listen)
	}
	api, err := apiOptions(c)
	if err != nil {
		return nil, err
	}
	return &proxySetup{log: logger, logFile: lf, pools: pools, ups: ups, nodes: nodes, listen: listen, cfg: cfg, api: api,
		statusInterval: c.Duration("status-interval"), duration: c.Duration("duration")}, nil
}

// checkVardiff checks the node upstream's difficulty flags, in one line
// each.
func checkVardiff(c *cli.Context) error {
	start, lo, hi, spm := c.Float64("vardiff-start"), c.Float64("vardiff-min"), c.Float64("vardiff-max"), c.Float64("vardiff-shares-per-minute")
	for _, f := range []struct {
		name string
		v    float64
		zero bool // 0 allowed
	}{{"vardiff-start", start, false}, {"vardiff-min", lo, false}, {"vardiff-max", hi, true}, {"vardiff-shares-per-minute", spm, false}} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) || f.v < 0 || f.v == 0 && !f.zero {
			return fmt.Errorf("--%s %v: must be a positive number", f.name, f.v)
		}
	}
	if hi > 0 && lo > hi {
		return fmt.Errorf("--vardiff-min %v is above --vardiff-max %v", lo, hi)
	}
	if start < lo || hi > 0 && start > hi {
		return fmt.Errorf("--vardiff-start %v: must lie within --vardiff-min %v and --vardiff-max %v", start, lo, hi)
	}
	if spm > 600 {
		return fmt.Errorf("--vardiff-shares-per-minute %v: at most 600 (ten a second per miner)", spm)
	}
	return nil
}

// loadMinerUsers reads user:password lines ('#' comments and blank lines
// skipped); the password may hold colons.
func loadMinerUsers(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--miner-users: %w", err)
	}
	defer f.Close()
	users := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, pass, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("--miner-users %s line %d: want user:password", path, n)
		}
		users[user] = pass
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--miner-users %s: %w", path, err)
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("--miner-users %s: no user:password line", path)
	}
	return users, nil
}

// proxyInFlight bounds the farm's shares awaiting the pool's verdict.
const proxyInFlight = 1024

// runProxy binds the miners' and the API's addresses, then serves until ctx
// ends.
func runProxy(ctx context.Context, ps *proxySetup) error {
	for i, p := range ps.pools {
		if u := ps.ups[i]; u.kind == kindPool && u.pool.TLS && p.TLSInsecure && p.Fingerprint == "" {
			ps.log.Warn("TLS certificate verification is off for this pool (--tls-insecure): anyone on the path can pose as it; pin it with --tls-fingerprint instead",
				"event", "pool.tls_insecure", "pool", u.String())
		}
	}
	// Listeners: a busy port fails before anything else is made.
	ln, err := listen("--listen", ps.listen)
	if err != nil {
		return err
	}
	var apiLn net.Listener
	if ps.api.listen != "" {
		if apiLn, err = listen("--api-listen", ps.api.listen); err != nil {
			_ = ln.Close()
			return err
		}
	}
	served := false
	defer func() {
		if !served {
			_ = ln.Close()
			if apiLn != nil {
				_ = apiLn.Close()
			}
		}
	}()

	// The upstream and the proxy. The V2 channels tell their pool the
	// farm's hashrate, estimated from the miners' accepted shares, once
	// the proxy that estimates it exists.
	var running atomic.Pointer[proxy.Server]
	rate := func() float64 {
		if s := running.Load(); s != nil {
			return s.Hashrate()
		}
		return 0
	}
	// One connection carries the whole farm's shares: allow more of them
	// to await a verdict than a single rig needs.
	up, err := buildSources(sourceSpec{pools: ps.pools, ups: ps.ups, nodes: ps.nodes, log: ps.log, proxy: true, hashRate: rate,
		copts: stratum.Options{Logger: ps.log, MaxInFlight: proxyInFlight}, inFlight: proxyInFlight})
	if err != nil {
		return err
	}
	srv, err := proxy.New(ln, ps.cfg, up)
	if err != nil {
		return err
	}
	running.Store(srv)

	// The proxy's API and status line, run beside it until it returns.
	served = true
	defer reopenOnHangup(ps.log, ps.logFile, nil)()
	if ps.duration > 0 {
		var cancel func()
		ctx, cancel = context.WithTimeout(ctx, ps.duration)
		defer cancel()
	}
	cr := newCrew(ps.log)
	defer cr.stop()
	if apiLn != nil {
		cr.serveAPI(observe.NewServer(apiLn, ps.api.token, proxyHandlers(srv)), "/ /metrics /api/v1/status /healthz")
	}
	ps.log.Info("proxy listening for miners", "event", "proxy.listening", "addr", srv.Addr(), "pools", len(ps.pools))
	cr.every(ps.statusInterval, func() { logProxyStatus(ps.log, srv.Status()) })
	err = srv.Run(ctx)
	logProxyStatus(ps.log, srv.Status())
	if errors.Is(err, context.DeadlineExceeded) {
		err = nil
	}
	return err
}

// proxyHandlers are what the proxy's HTTP API serves: its status, under
// clminer's version, and healthy while it forwards a live pool's jobs.
func proxyHandlers(srv *proxy.Server) observe.Handlers {
	reg := prometheus.NewRegistry()
	reg.MustRegister(srv.Collector())
	return observe.Handlers{
		Metrics: reg,
		Status: func() any {
			return struct {
				Version string `json:"version"`
				Commit  string `json:"commit"`
				proxy.Status
			}{version, commit, srv.Status()}
		},
		Healthy: func() (bool, string) {
			if st := srv.Status(); st.Idle != "" {
				return false, "unhealthy: " + st.Idle
			}
			return true, "ok: forwarding a live pool's jobs"
		},
	}
}

func logProxyStatus(l *log.Logger, st proxy.Status) {
	sh := st.Shares
	blocks := ""
	if sh.BlocksSubmitted > 0 {
		blocks = fmt.Sprintf("; blocks %d submitted, %d accepted, %d rejected by the node", sh.BlocksSubmitted, sh.BlocksAccepted, sh.BlocksRejected)
	}
	l.Info(fmt.Sprintf("proxy: %d miners, %s from shares; shares %d accepted, %d rejected by the pool; refused here %d stale, %d duplicate, %d low difficulty, %d invalid%s",
		len(st.Miners), miner.FormatRate(st.Hashrate), sh.Accepted, sh.Rejected, sh.Stale, sh.Duplicate, sh.LowDifficulty, sh.Invalid, blocks),
		"event", "proxy.status", "miners", len(st.Miners), "hashrate", st.Hashrate, "accepted", sh.Accepted, "rejected", sh.Rejected,
		"stale", sh.Stale, "duplicate", sh.Duplicate, "low_difficulty", sh.LowDifficulty, "invalid", sh.Invalid,
		"blocks_submitted", sh.BlocksSubmitted, "blocks_accepted", sh.BlocksAccepted, "blocks_rejected", sh.BlocksRejected, "idle", st.Idle)
}
