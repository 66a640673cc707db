package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/charmbracelet/log"
	"github.com/urfave/cli/v2"

	"clminer/gpu/nvml"
	"clminer/gpu/registry"
	"clminer/stratum"
	"clminer/work/device"
	"clminer/work/miner"
	"clminer/work/observe"
)

// Usage texts of -o: `mine` and the farm proxy take every upstream kind.
const (
	mineURLUsage  = "pool URL stratum+tcp://host:port (or stratum+tls://, stratum+ssl://), a Stratum V2 pool stratum2+tcp://host:port/AUTHORITY_KEY, or a node's RPC http://host:port for solo mining; repeat for backups, in priority order"
	proxyURLUsage = "upstream the farm mines for: a pool stratum+tcp://host:port (or stratum+tls://, stratum+ssl://), a Stratum V2 pool stratum2+tcp://host:port/AUTHORITY_KEY (an extended channel), or a node's RPC http://host:port (a solo pool for the farm: blocks pay --coinbase-addr); repeat for backups, in priority order"
)

func poolFlags(urlUsage string) []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "url", Aliases: []string{"o"}, Usage: urlUsage, EnvVars: []string{"CLMINER_URL"}},
		&cli.StringSliceFlag{Name: "user", Aliases: []string{"u"}, Usage: "worker name for the pool given by the -o in the same position", EnvVars: []string{"CLMINER_USER"}},
		&cli.StringSliceFlag{Name: "pass", Aliases: []string{"p"}, Usage: "password for the pool in the same position (default x); commas and spaces are kept", EnvVars: []string{"CLMINER_PASS"}, KeepSpace: true},
		&cli.BoolFlag{Name: "tls-insecure", Usage: "do not verify TLS pools' certificates (logged at WARN)", EnvVars: []string{"CLMINER_TLS_INSECURE"}},
		&cli.StringSliceFlag{Name: "tls-fingerprint", Usage: "SHA-256 fingerprint of a TLS pool's certificate, checked instead of the CA chain: one per TLS pool, in the order of the TLS pools ('' for none)", EnvVars: []string{"CLMINER_TLS_FINGERPRINT"}},
		&cli.BoolFlag{Name: "version-rolling", Value: true, Usage: "negotiate BIP 310 version rolling (more work per job)", EnvVars: []string{"CLMINER_VERSION_ROLLING"}},
		&cli.BoolFlag{Name: "extranonce-subscribe", Usage: "send mining.extranonce.subscribe (NiceHash)", EnvVars: []string{"CLMINER_EXTRANONCE_SUBSCRIBE"}},
		&cli.Float64Flag{Name: "suggest-difficulty", Usage: "send mining.suggest_difficulty after authorize", EnvVars: []string{"CLMINER_SUGGEST_DIFFICULTY"}},
		&cli.BoolFlag{Name: "allow-reconnect-any-domain", Usage: "follow client.reconnect to other domains (off: the same domain only)", EnvVars: []string{"CLMINER_ALLOW_RECONNECT_ANY_DOMAIN"}},
	}
}

func runFlags() []cli.Flag {
	return []cli.Flag{
		&cli.DurationFlag{Name: "status-interval", Value: 10 * time.Second, Usage: "status line period (0: none)", EnvVars: []string{"CLMINER_STATUS_INTERVAL"}},
		&cli.DurationFlag{Name: "drain-timeout", Value: 5 * time.Second, Usage: "on shutdown, wait this long for verdicts on shares already sent", EnvVars: []string{"CLMINER_DRAIN_TIMEOUT"}},
		&cli.DurationFlag{Name: "duration", Usage: "stop after this long (0: run until SIGINT/SIGTERM)", EnvVars: []string{"CLMINER_DURATION"}},
		logFileFlag(),
	}
}

func workerFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "worker-per-device", Usage: "authorize USER.<device> (or the config file's workers: names) on the same connection and credit each device's shares to it", EnvVars: []string{"CLMINER_WORKER_PER_DEVICE"}},
	}
}

func mineCommand(h hooks) *cli.Command {
	flags := append([]cli.Flag{&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "YAML config file (flags and CLMINER_* variables override it)", EnvVars: []string{"CLMINER_CONFIG"}}}, poolFlags(mineURLUsage)...)
	flags = append(flags, soloFlags()...)
	flags = append(flags, deviceFlags("auto")...)
	flags = append(flags, runFlags()...)
	flags = append(flags, workerFlags()...)
	flags = append(flags, apiFlags()...)
	flags = append(flags, fleetFlags()...)
	flags = append(flags, socksFlags()...)
	return &cli.Command{
		Name:      "mine",
		Usage:     "mine on a list of Stratum v1 pools (or nodes, solo) with failover, headless",
		UsageText: "clminer mine -o stratum+tcp://pool:3333 -u wallet.rig1 -p x [-o stratum+tls://backup:443 -u wallet.rig1] [options]\n   clminer mine -o http://127.0.0.1:8332 --rpc-cookie ~/.bitcoin/.cookie --coinbase-addr ADDR [options]",
		Flags:     flags,
		Action: func(c *cli.Context) error {
			pools, ups, fc, nodes, err := minePools(c)
			if err != nil {
				return err
			}
			setup, err := prepareRun(c, h, pools, ups)
			if err != nil {
				return err
			}
			defer setup.close()
			setup.nodes = nodes
			if fc != nil && len(fc.Workers) > 0 && !setup.workerPerDevice {
				return errors.New("the config file names workers: but --worker-per-device is off: set worker-per-device: true (or drop workers:)")
			}
			if fc != nil {
				setup.workerNames = fc.Workers
			}
			return h.mine(c, setup, stratum.Options{})
		},
	}
}

// minePools applies the config file, if one is named, under the flags and
// environment, and returns the pool list in priority order with each URL
// parsed.
func minePools(c *cli.Context) ([]stratum.PoolConfig, []upstream, *fileConfig, map[int]nodeOpts, error) {
	var fc *fileConfig
	if path := c.String("config"); path != "" {
		var err error
		if fc, err = loadConfigFile(path); err != nil {
			return nil, nil, nil, nil, err
		}
		if err := applyConfigFile(c, fc, path); err != nil {
			return nil, nil, nil, nil, err
		}
	}
	pools, ups, err := poolsFromFlags(c, fc)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	fromFile := len(c.StringSlice("url")) == 0 && fc != nil && len(fc.Pools) > 0
	nodes, err := nodeSettings(c, fc, fromFile, pools, ups)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return pools, ups, fc, nodes, nil
}

// runSetup is everything a mining run needs, read and validated before any
// device is opened or any kernel compiled.
type runSetup struct {
	log            *log.Logger
	logFile        *observe.AppendFile // --log-file, or nil
	pools          []stratum.PoolConfig
	ups            []upstream       // pools[i]'s URL, parsed
	nodes          map[int]nodeOpts // pools entries that are nodes, mined solo
	spec           string
	devices        registry.Options
	api            apiConfig
	fleet          fleetConfig
	statusInterval time.Duration
	drainTimeout   time.Duration
	duration       time.Duration
	// workerPerDevice: each device's shares go under its own worker;
	// workerNames (device id -> name after "USER.") from the config file.
	workerPerDevice bool
	workerNames     map[string]string
	openNVML        func() (nvml.Library, error)
}

// close releases what prepareRun opened.
func (s *runSetup) close() {
	if s.logFile != nil {
		_ = s.logFile.Close()
	}
}

// prepareRun checks every setting that is user input (the pools are
// checked by poolsFromFlags): each error is one line saying what to fix.
// The log file it opens is the caller's to close (runSetup.close).
func prepareRun(c *cli.Context, h hooks, pools []stratum.PoolConfig, ups []upstream) (_ *runSetup, err error) {
	keepRunningOnBrokenPipe()
	logger, lf, err := startLogging(c)
	if err != nil {
		return nil, err
	}
	defer closeOnError(&err, lf)
	opts, err := deviceOptions(c)
	if err != nil {
		return nil, err
	}
	opts.Log = logger
	for _, d := range []string{"status-interval", "drain-timeout", "duration"} {
		if c.Duration(d) < 0 {
			return nil, fmt.Errorf("--%s %v: must not be negative", d, c.Duration(d))
		}
	}
	api, err := apiOptions(c)
	if err != nil {
		return nil, err
	}
	// demo's shares are no record of real mining: its own best share.
	bestName := "best-share.json"
	if c.Command.Name == "demo" {
		bestName = "demo-best-share.json"
	}
	fl, err := fleetOptions(c, bestName)
	if err != nil {
		return nil, err
	}
	return &runSetup{
		log: logger, logFile: lf, pools: pools, ups: ups, spec: c.String("device"), devices: opts, api: api, fleet: fl,
		statusInterval: c.Duration("status-interval"), drainTimeout: c.Duration("drain-timeout"), duration: c.Duration("duration"),
		workerPerDevice: c.Bool("worker-per-device"), openNVML: h.openNVML,
	}, nil
}

// runMiner binds the API, opens the devices and runs the miner until the
// context ends. The world is put together in phases, each with what the
// one before made in hand: what listens and what can fail without a device
// (so a busy port fails in a second, not after a kernel compile), the
// devices, the work source and the miner, then the servers of the miner,
// run beside it until it returns.
func runMiner(c *cli.Context, setup *runSetup, copts stratum.Options) error {
	logger := setup.log
	for i, p := range setup.pools {
		if u := setup.ups[i]; u.kind == kindPool && u.pool.TLS && p.TLSInsecure && p.Fingerprint == "" {
			logger.Warn("TLS certificate verification is off for this pool (--tls-insecure): anyone on the path can pose as it; pin it with --tls-fingerprint instead",
				"event", "pool.tls_insecure", "pool", u.String())
		}
	}

	// Listeners, records and NVML.
	api, err := newAPIServer(setup.api, logger)
	if err != nil {
		return err
	}
	defer api.close()
	defer reopenOnHangup(logger, setup.logFile, api.shareLog)()
	fl, err := newFleet(setup.fleet, logger, setup.statusInterval, setup.openNVML)
	if err != nil {
		return err
	}
	defer fl.stop()
	fl.users = poolUsers(setup.pools, setup.ups)

	// Devices.
	devs, err := registry.Open(c.Context, setup.spec, setup.devices)
	if err != nil {
		if c.Context.Err() != nil {
			// A stop asked for during start-up is a clean exit, as one
			// during mining is: nothing was mined, nothing is lost.
			logger.Info("stopped before mining started", "event", "miner.stopped_at_start")
			return nil
		}
		return err
	}
	defer registry.CloseAll(devs)
	for _, d := range devs {
		i := d.Info()
		logger.Info("device ready", "event", "device.ready", "device", i.ID, "name", i.Name, "detail", i.Detail)
	}
	if devs, err = fl.bind(devs); err != nil {
		return err
	}

	// The work source and the miner. A V2 channel tells its pool the
	// miner's measured hashrate: the source is made before the miner that
	// measures it, so it reads it through rates, a nominal 0 until then.
	copts.Logger = logger
	if setup.workerPerDevice {
		copts.DeviceWorkers = deviceWorkers(devs, setup.workerNames)
		for id, key := range copts.DeviceWorkers {
			logger.Info("device credited to its own worker (USER."+key+")", "event", "device.worker", "device", id, "worker_suffix", key)
		}
	}
	var rates hashRateFeed
	src, err := buildSource(setup, copts, rates.rate)
	if err != nil {
		return err
	}
	m, err := miner.New(miner.Config{
		Source: src, Devices: devs, Logger: logger,
		StatusInterval: setup.statusInterval, DrainTimeout: setup.drainTimeout,
		Observer: joinObservers(api.observer(), fl.observer()),
	})
	if err != nil {
		return err
	}
	rates.m.Store(m)

	// The miner's servers and services, stopped once it has drained, so
	// the API answers until then.
	ctx := c.Context
	if d := setup.duration; d > 0 {
		var cancel func()
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	cr := newCrew(logger)
	defer cr.stop()
	if err := fl.start(m, api.metrics, cr); err != nil {
		return err
	}
	api.serve(m, cr, fl.decorate)
	return m.Run(ctx)
}

// deviceWorkers gives each device its worker key: the config file's name,
// else its id in the characters pools take ("opencl:0:1" -> "opencl-0-1").
func deviceWorkers(devs []device.Device, names map[string]string) map[string]string {
	out := map[string]string{}
	for _, d := range devs {
		id := d.Info().ID
		if n, ok := names[id]; ok {
			out[id] = n
			continue
		}
		out[id] = stratum.PoolSafe(id, '-')
	}
	return out
}
