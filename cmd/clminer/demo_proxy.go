package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"

	"github.com/charmbracelet/log"
	"github.com/urfave/cli/v2"

	"clminer/gpu/registry"
	"clminer/stratum"
	"clminer/stratum/pooltest"
	"clminer/stratum/proxy"
	"clminer/work/device"
	"clminer/work/miner"
)

// runProxyDemo is `clminer demo --proxy`: the built-in pool <- a farm proxy
// <- two local miners, each credited under its own worker.
func runProxyDemo(c *cli.Context, setup *runSetup, pool *pooltest.Server) error {
	logger := setup.log
	if setup.api.listen != "" {
		return errors.New("--api-listen is not served by demo --proxy: run `clminer proxy --api-listen` to see the proxy's API")
	}
	ln, err := listen("demo proxy", "127.0.0.1:0")
	if err != nil {
		return err
	}
	groups, closeAll, err := demoDeviceGroups(c.Context, setup)
	if err != nil {
		_ = ln.Close()
		if c.Context.Err() != nil {
			logger.Info("stopped before mining started", "event", "miner.stopped_at_start")
			return nil
		}
		return err
	}
	defer closeAll()
	srv, err := newDemoProxy(ln, pool, logger, demoProxyConfig(logger))
	if err != nil {
		return err
	}
	defer reopenOnHangup(logger, setup.logFile, nil)()

	ctx, stopRigs := context.WithCancel(c.Context)
	defer stopRigs()
	if d := setup.duration; d > 0 {
		var cancel func()
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	// The proxy serves until the miners behind it are done.
	cr := newCrew(logger)
	var perr error
	cr.run("", "", func(ctx context.Context) error { perr = srv.Run(ctx); return nil })
	logger.Info(fmt.Sprintf("proxy on %s in front of the built-in pool; two miners behind it", srv.Addr()), "event", "demo.proxy", "addr", srv.Addr())

	var wg sync.WaitGroup
	errs := make([]error, len(groups))
	for i, devs := range groups {
		rig := fmt.Sprintf("rig%d", i+1)
		l := logger.With("rig", rig)
		for _, d := range devs {
			l.Info("device ready", "event", "device.ready", "device", d.Info().ID, "name", d.Info().Name)
		}
		client, err := stratum.NewClient([]stratum.PoolConfig{{URL: "stratum+tcp://" + srv.Addr(), User: "demo." + rig, Pass: "x", VersionRolling: true}},
			stratum.Options{Logger: l, UserAgent: userAgent()})
		if err == nil {
			var m *miner.Miner
			if m, err = miner.New(miner.Config{Source: client, Devices: devs, Logger: l, StatusInterval: setup.statusInterval, DrainTimeout: setup.drainTimeout}); err == nil {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = m.Run(ctx)
				}()
				continue
			}
		}
		// The rigs already started are stopped with the proxy.
		errs[i] = err
		stopRigs()
		break
	}
	wg.Wait()
	cr.stop()
	logProxyStatus(logger, srv.Status())
	for _, w := range []string{"demo.rig1", "demo.rig2"} {
		n := pool.AcceptedBy(w)
		logger.Info(fmt.Sprintf("built-in pool credited %s with %d shares", w, n), "event", "demo.worker_shares", "worker", w, "accepted", n)
	}
	return errors.Join(append(errs, perr)...)
}

// demoProxyConfig is the farm proxy of `demo --proxy`.
func demoProxyConfig(logger *log.Logger) proxy.Config {
	return proxy.Config{Logger: logger.With("side", "proxy")}
}

// newDemoProxy is the proxy of `demo --proxy` on ln in front of the
// built-in pool, not yet running; it closes ln when it fails.
func newDemoProxy(ln net.Listener, pool *pooltest.Server, logger *log.Logger, cfg proxy.Config) (*proxy.Server, error) {
	upstream, err := stratum.NewClient([]stratum.PoolConfig{{URL: pool.URL(), User: "demo", Pass: "x", VersionRolling: true}},
		stratum.Options{Logger: logger.With("side", "proxy-upstream"), MaxInFlight: proxyInFlight, UserAgent: userAgent()})
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	srv, err := proxy.New(ln, cfg, upstream)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	return srv, nil
}

// demoDeviceGroups splits the chosen devices between the two miners; with
// one device, the second miner gets a one-thread CPU device of its own.
func demoDeviceGroups(ctx context.Context, setup *runSetup) ([][]device.Device, func(), error) {
	opts := setup.devices
	devs, err := registry.Open(ctx, setup.spec, opts)
	if err != nil {
		return nil, nil, err
	}
	if len(devs) >= 2 {
		half := len(devs) / 2
		return [][]device.Device{devs[:half], devs[half:]}, func() { registry.CloseAll(devs) }, nil
	}
	if devs[0].Info().Kind == "cpu" && opts.Threads == 0 && runtime.NumCPU() > 1 {
		// Two CPU miners: give the first all cores but one.
		registry.CloseAll(devs)
		opts.Threads = runtime.NumCPU() - 1
		if devs, err = registry.Open(ctx, "cpu", opts); err != nil {
			return nil, nil, err
		}
	}
	one := setup.devices
	one.Threads = 1
	second, err := registry.Open(ctx, "cpu", one)
	if err != nil {
		registry.CloseAll(devs)
		return nil, nil, err
	}
	return [][]device.Device{devs, second}, func() { registry.CloseAll(devs); registry.CloseAll(second) }, nil
}
