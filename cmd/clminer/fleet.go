package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/charmbracelet/log"
	"github.com/urfave/cli/v2"

	"clminer/gpu/nvml"
	"clminer/gpu/thermal"
	"clminer/stratum"
	"clminer/work/device"
	"clminer/work/miner"
	"clminer/work/observe"
	"clminer/work/observe/cgapi"
	"clminer/work/observe/luck"
	"clminer/work/observe/notify"
)

// fleetFlags are the settings for the tools that run many rigs: the
// cgminer API that rig managers read, GPU temperature limits, the
// all-time best share and a webhook.
func fleetFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "cgminer-api", Usage: "serve cgminer's read-only TCP API (summary, devs, pools, ...) on this address, e.g. 127.0.0.1:4028 (off by default; beyond loopback needs --cgminer-api-allow)", EnvVars: []string{"CLMINER_CGMINER_API"}},
		&cli.StringSliceFlag{Name: "cgminer-api-allow", Usage: "network (CIDR or address) that may read the cgminer API besides loopback; repeat for more", EnvVars: []string{"CLMINER_CGMINER_API_ALLOW"}},
		&cli.Float64Flag{Name: "temp-target", Usage: "NVIDIA (NVML): slow a GPU down smoothly to hold this temperature in °C (0: off)", EnvVars: []string{"CLMINER_TEMP_TARGET"}},
		&cli.Float64Flag{Name: "temp-cutoff", Usage: "NVIDIA (NVML): idle a GPU at this temperature in °C until it is 5 °C cooler (0: off)", EnvVars: []string{"CLMINER_TEMP_CUTOFF"}},
		&cli.StringFlag{Name: "notify-url", Usage: "POST a JSON event to this URL on block found, new all-time best share and pool down", EnvVars: []string{"CLMINER_NOTIFY_URL"}},
		&cli.StringFlag{Name: "best-share-file", Usage: "where the all-time best share is kept (default: clminer/best-share.json in the user cache dir; '-' keeps it in memory)", EnvVars: []string{"CLMINER_BEST_SHARE_FILE"}},
	}
}

// socksFlags are mine's: the demo's built-in pool is on loopback.
func socksFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "proxy", Usage: "reach the pools through this SOCKS5 proxy, socks5h://[user:pass@]host:port (the pool's name is resolved by the proxy); a config file's pool may set its own proxy:", EnvVars: []string{"CLMINER_PROXY"}},
	}
}

// fleetConfig is the fleet settings, validated.
type fleetConfig struct {
	cgAPI     string
	cgAllow   []netip.Prefix
	limits    thermal.Limits
	notifyURL string
	bestFile  string // "" keeps the best share in memory
	// bestDefault: bestFile is the default place, not one the user named.
	bestDefault bool
}

// fleetOptions reads the fleet flags; bestName is the best-share file's
// name in the user cache dir when --best-share-file is not given.
func fleetOptions(c *cli.Context, bestName string) (fleetConfig, error) {
	var fc fleetConfig
	fc.cgAPI = strings.TrimSpace(c.String("cgminer-api"))
	for _, s := range c.StringSlice("cgminer-api-allow") {
		s = strings.TrimSpace(s)
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return fc, fmt.Errorf("--cgminer-api-allow %q: want a network such as 192.168.1.0/24 or an address such as 10.0.0.5", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		fc.cgAllow = append(fc.cgAllow, p.Masked())
	}
	switch {
	case fc.cgAPI == "" && len(fc.cgAllow) > 0:
		return fc, errors.New("--cgminer-api-allow is set but --cgminer-api is not: give --cgminer-api host:port, e.g. 0.0.0.0:4028")
	case fc.cgAPI != "":
		host, port, err := net.SplitHostPort(fc.cgAPI)
		if err != nil || port == "" {
			return fc, fmt.Errorf("--cgminer-api %q: want host:port, e.g. 127.0.0.1:4028", fc.cgAPI)
		}
		if !isLoopback(host) && len(fc.cgAllow) == 0 {
			return fc, fmt.Errorf("--cgminer-api %s reaches beyond loopback, and the cgminer protocol has no password: name who may read it with --cgminer-api-allow (e.g. 192.168.1.0/24)", fc.cgAPI)
		}
	}
	fc.limits = thermal.Limits{Target: c.Float64("temp-target"), Cutoff: c.Float64("temp-cutoff")}
	if err := fc.limits.Validate(); err != nil {
		return fc, err
	}
	if u := strings.TrimSpace(c.String("notify-url")); u != "" {
		if _, err := notify.ParseURL(u); err != nil {
			return fc, err
		}
		fc.notifyURL = u
	}
	switch f := strings.TrimSpace(c.String("best-share-file")); f {
	case "-":
	case "":
		if dir, err := os.UserCacheDir(); err == nil {
			fc.bestFile, fc.bestDefault = filepath.Join(dir, "clminer", bestName), true
		}
	default:
		fc.bestFile = f
	}
	return fc, nil
}

// fleet runs the fleet services beside the miner.
type fleet struct {
	log      *log.Logger
	cfg      fleetConfig
	status   time.Duration
	cgln     net.Listener // --cgminer-api's, closed by stop when never served
	started  bool
	nv       nvml.Library
	mon      *thermal.Monitor
	tracker  *luck.Tracker
	notifier *notify.Notifier
	// users are the pools' users (worker names) for the cgminer API's
	// POOLS; set before start.
	users []string
}

// newFleet binds what listens and opens what can fail (the best-share
// file, NVML through openNVML, required when limits need it) before any
// device is opened.
func newFleet(cfg fleetConfig, logger *log.Logger, status time.Duration, openNVML func() (nvml.Library, error)) (_ *fleet, err error) {
	f := &fleet{log: logger, cfg: cfg, status: status}
	defer func() {
		if err != nil {
			f.stop()
		}
	}()
	if cfg.cgAPI != "" {
		ln, err := listen("--cgminer-api", cfg.cgAPI)
		if err != nil {
			return nil, err
		}
		f.cgln = ln
	}
	if f.tracker, err = luck.Open(cfg.bestFile); err != nil {
		if !cfg.bestDefault {
			return nil, err
		}
		// The default place may be unwritable (a read-only home under a
		// service manager): that is no reason not to mine.
		logger.Warn("the all-time best share is kept in memory only", "event", "luck.memory_only", "err", err)
		f.tracker, _ = luck.Open("")
		err = nil
	}
	if cfg.notifyURL != "" {
		rig, _ := os.Hostname()
		if f.notifier, err = notify.New(cfg.notifyURL, notify.Options{Rig: rig, Logger: logger}); err != nil {
			return nil, err
		}
		n := f.notifier
		f.tracker.OnBest = func(d float64, ev miner.ShareEvent) { n.Notify(notify.BestShare(d, ev)) }
		f.tracker.OnBlock = func(ev miner.ShareEvent) { n.Notify(notify.BlockFound(ev)) }
	}
	nv, nerr := openNVML()
	switch {
	case nerr == nil:
		f.nv = nv
	case cfg.limits.Active():
		return nil, fmt.Errorf("--temp-target/--temp-cutoff need NVIDIA's NVML: %v", nerr)
	default:
		logger.Debug("no GPU telemetry", "event", "gpu.telemetry_off", "reason", nerr.Error())
	}
	return f, nil
}

// bind attaches NVML to the opened devices and, under temperature limits,
// puts each NVIDIA GPU under its throttle.
func (f *fleet) bind(devs []device.Device) ([]device.Device, error) {
	if f.nv == nil {
		return devs, nil
	}
	var infos []device.Info
	for _, d := range devs {
		infos = append(infos, d.Info())
	}
	f.mon = thermal.NewMonitor(f.nv, infos, f.cfg.limits, 2*time.Second, f.status, f.log)
	if err := f.mon.Ambiguous(); err != nil {
		if f.cfg.limits.Active() {
			return nil, fmt.Errorf("--temp-target/--temp-cutoff: %v", err)
		}
		f.log.Warn("GPU telemetry may name the wrong card", "event", "gpu.telemetry_ambiguous", "err", err)
	}
	bound := f.mon.Bound()
	if len(bound) == 0 {
		if f.cfg.limits.Active() {
			return nil, errors.New("--temp-target/--temp-cutoff: none of the devices is an NVIDIA GPU that NVML reports (see `clminer devices`)")
		}
		return devs, nil
	}
	f.log.Info("GPU telemetry from NVML", "event", "gpu.telemetry", "devices", strings.Join(bound, ", "),
		"temp_target_c", f.cfg.limits.Target, "temp_cutoff_c", f.cfg.limits.Cutoff)
	return f.mon.Wrap(devs), nil
}

func (f *fleet) gpus() []device.GPUState {
	if f.mon == nil {
		return nil
	}
	return f.mon.States()
}

func (f *fleet) luck(m *miner.Miner) *luck.Luck {
	l := f.tracker.Luck(m.Snapshot())
	return &l
}

func (f *fleet) state(m *miner.Miner) cgapi.State {
	st := cgapi.State{Snapshot: m.Snapshot()}
	if f.mon != nil {
		st.Telemetry = f.mon.Readings()
	}
	_, st.BestEver = f.tracker.Best()
	st.PoolUsers = f.users
	return st
}

// poolUsers are the users shown per pool: the worker name on a pool, none
// for a node mined solo (its -u is the node's RPC login).
func poolUsers(pools []stratum.PoolConfig, ups []upstream) []string {
	out := make([]string, len(pools))
	for i, p := range pools {
		if ups[i].kind != kindNode {
			out[i] = p.User
		}
	}
	return out
}

// decorate adds the fleet's part to /api/v1/status.
func (f *fleet) decorate(s *observe.Status) {
	s.GPUs = f.gpus()
	l := f.tracker.Luck(s.Snapshot)
	s.Luck = &l
}

// observer is what the fleet services hear from the miner.
func (f *fleet) observer() miner.Observer {
	obs := []miner.Observer{f.tracker}
	if f.notifier != nil {
		obs = append(obs, notify.Observer{N: f.notifier})
	}
	return joinObservers(obs...)
}

// start runs the fleet services for m in cr, the cgminer API among them,
// and adds the fleet's metrics to metrics (nil: no HTTP API).
func (f *fleet) start(m *miner.Miner, metrics *observe.Metrics, cr *crew) error {
	f.started = true
	if metrics != nil {
		fc := &observe.FleetCollector{Luck: func() *luck.Luck { return f.luck(m) }}
		if f.mon != nil {
			fc.GPUs = f.gpus
		}
		metrics.Registry().MustRegister(fc)
	}
	if f.mon != nil {
		cr.run("", "", func(ctx context.Context) error { f.mon.Run(ctx); return nil })
	}
	if f.notifier != nil {
		cr.run("", "", func(ctx context.Context) error { f.notifier.Run(ctx); return nil })
		f.log.Info("webhook on", "event", "notify.on", "host", f.notifier.Host())
	}
	if f.cgln != nil {
		cg, err := cgapi.New(f.cgln, cgapi.Config{Version: version, State: func() cgapi.State { return f.state(m) }, Allow: f.cfg.cgAllow, LogInterval: int(f.status.Seconds())})
		if err != nil {
			_ = f.cgln.Close()
			return err
		}
		cr.run("cgminer API stopped", "cgapi.error", cg.Run)
		allow := []string{"loopback"}
		for _, p := range f.cfg.cgAllow {
			allow = append(allow, p.String())
		}
		f.log.Info("cgminer API listening", "event", "cgapi.listening", "addr", cg.Addr(), "allow", strings.Join(allow, " "))
	}
	return nil
}

// stop releases what newFleet opened; the services start ran are the
// crew's to stop, before this.
func (f *fleet) stop() {
	if !f.started && f.cgln != nil {
		_ = f.cgln.Close()
	}
	if f.tracker != nil {
		if err := f.tracker.Err(); err != nil {
			f.log.Warn("could not keep the all-time best share", "event", "luck.save_failed", "err", err)
		}
	}
	if f.nv != nil {
		f.nv.Close()
	}
}

// joinObservers fans out to the non-nil observers; nil (untyped) if none,
// so the miner's nil check works.
func joinObservers(obs ...miner.Observer) miner.Observer {
	var out observe.Observers
	for _, o := range obs {
		if o != nil {
			out = append(out, o)
		}
	}
	switch len(out) {
	case 0:
		return nil
	case 1:
		return out[0]
	}
	return out
}
