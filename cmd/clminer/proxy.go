package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
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

func proxyCommand() *cli.Command {
	return &cli.Command{
		Name:      "proxy",
		Usage:     "serve Stratum v1 to a farm of miners over one pool connection (with failover), re-verifying every share",
		UsageText: "clminer proxy --listen 0.0.0.0:3334 -o stratum+tcp://pool:3333 -u wallet [-o stratum+tcp://backup:3333 -u wallet] [options]",
		Flags:     proxyFlags(),
		Action: func(c *cli.Context) error {
			ps, err := prepareProxy(c)
			if err != nil {
				return err
			}
			if ps.logFile != nil {
				defer ps.logFile.Close()
			}
			return runProxy(c.Context, ps)
		},
	}
}

// proxySetup is a proxy run's settings, all checked before anything binds.
type proxySetup struct {
	log            *log.Logger
	logFile        *observe.AppendFile // --log-file, or nil
	pools          []stratum.PoolConfig
	cfg            proxy.Config
	api            apiConfig
	statusInterval time.Duration
	duration       time.Duration
}

func prepareProxy(c *cli.Context) (_ *proxySetup, err error) {
	keepRunningOnBrokenPipe()
	out, lf, err := logOutput(c)
	if err != nil {
		return nil, err
	}
	if lf != nil {
		defer func() {
			if err != nil {
				_ = lf.Close()
			}
		}()
	}
	logger, err := newLogger(c, out)
	if err != nil {
		return nil, err
	}
	pools, ups, err := poolsFromFlags(c, nil)
	if err != nil {
		return nil, err
	}
	for i, u := range ups {
		if u.kind != kindPool {
			return nil, fmt.Errorf("pool %d: %s (%s) is not served by the proxy: its upstreams are Stratum v1 pools (stratum+tcp://, stratum+tls://, stratum+ssl://); mine Stratum V2 pools and nodes with `clminer mine`", i+1, u, u.kind)
		}
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
	cfg := proxy.Config{Listen: listen, Logger: logger, MaxMiners: c.Int("max-miners"), PrefixSize: c.Int("extranonce-prefix-size"),
		Rate: c.Float64("miner-rate"), Burst: int(2 * c.Float64("miner-rate")),
		MaxConnsPerIP: c.Int("max-conns-per-ip"), MaxUnauthPerIP: c.Int("max-unauthenticated-per-ip")}
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
	return &proxySetup{log: logger, logFile: lf, pools: pools, cfg: cfg, api: api, statusInterval: c.Duration("status-interval"), duration: c.Duration("duration")}, nil
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
	// One connection carries the whole farm's shares: allow more of them
	// to await a verdict than a single rig needs.
	client, err := stratum.NewClient(ps.pools, stratum.Options{Logger: ps.log, MaxInFlight: proxyInFlight})
	if err != nil {
		return err
	}
	srv, err := proxy.New(ps.cfg, client)
	if err != nil {
		return err
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	defer reopenOnHangup(ps.log, ps.logFile, nil)()
	if ps.api.listen != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(srv.Collector())
		api, err := observe.ListenHandlers(ps.api.listen, ps.api.token, observe.Handlers{
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
		})
		if err != nil {
			return err
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := api.Serve(); err != nil {
				ps.log.Error("API server stopped", "event", "api.error", "err", err)
			}
		}()
		defer func() { api.Shutdown(); <-done }()
		ps.log.Info("API listening", "event", "api.listening", "addr", api.Addr(), "paths", "/ /metrics /api/v1/status /healthz")
	}
	if ps.duration > 0 {
		var cancel func()
		ctx, cancel = context.WithTimeout(ctx, ps.duration)
		defer cancel()
	}
	ps.log.Info("proxy listening for miners", "event", "proxy.listening", "addr", srv.Addr(), "pools", len(ps.pools))
	if ps.statusInterval > 0 {
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			t := time.NewTicker(ps.statusInterval)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					logProxyStatus(ps.log, srv.Status())
				}
			}
		}()
	}
	err = srv.Run(ctx)
	logProxyStatus(ps.log, srv.Status())
	if errors.Is(err, context.DeadlineExceeded) {
		err = nil
	}
	return err
}

func logProxyStatus(l *log.Logger, st proxy.Status) {
	sh := st.Shares
	l.Info(fmt.Sprintf("proxy: %d miners, %s from shares; shares %d accepted, %d rejected by the pool; refused here %d stale, %d duplicate, %d low difficulty, %d invalid",
		len(st.Miners), miner.FormatRate(st.Hashrate), sh.Accepted, sh.Rejected, sh.Stale, sh.Duplicate, sh.LowDifficulty, sh.Invalid),
		"event", "proxy.status", "miners", len(st.Miners), "hashrate", st.Hashrate, "accepted", sh.Accepted, "rejected", sh.Rejected,
		"stale", sh.Stale, "duplicate", sh.Duplicate, "low_difficulty", sh.LowDifficulty, "invalid", sh.Invalid, "idle", st.Idle)
}
