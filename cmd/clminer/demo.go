package main

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"clminer/gpu/registry"
	"clminer/stratum"
	"clminer/stratum/pooltest"
)

func demoCommand(h hooks) *cli.Command {
	flags := append(deviceFlags("auto"), runFlags()...)
	flags = append(flags, demoRecordFlags(append(apiFlags(), fleetFlags()...))...)
	flags = append(flags,
		&cli.Float64Flag{Name: "difficulty", Usage: "share difficulty of the built-in pool (0: 0.01 for CPUs, 4 for GPUs)"},
		&cli.DurationFlag{Name: "job-interval", Value: 30 * time.Second, Usage: "how often the built-in pool sends a new block (clean job)"},
		&cli.BoolFlag{Name: "proxy", Usage: "show the farm proxy: the built-in pool <- clminer proxy <- two local miners"},
	)
	return &cli.Command{
		Name:  "demo",
		Usage: "mine against the built-in local pool (127.0.0.1) with the best available device, showing accepted shares",
		Flags: flags,
		Action: func(c *cli.Context) error {
			// The built-in pool's address is known once it starts; the
			// placeholder only lets the settings be checked first.
			pools := []stratum.PoolConfig{{URL: "stratum+tcp://127.0.0.1:1", User: "demo.rig", Pass: "x", VersionRolling: true}}
			setup, err := prepareRun(c, h, pools, []upstream{{kind: kindPool}})
			if err != nil {
				return err
			}
			defer setup.close()
			if c.Float64("difficulty") < 0 {
				return fmt.Errorf("--difficulty %v: must be positive (or 0 to pick one)", c.Float64("difficulty"))
			}
			if c.Duration("job-interval") <= 0 {
				return fmt.Errorf("--job-interval %v: must be positive", c.Duration("job-interval"))
			}
			diff := c.Float64("difficulty")
			if diff == 0 {
				diff = demoDifficulty(c.String("device"))
			}
			pool := newDemoPool(diff)
			if err := pool.Start(); err != nil {
				return fmt.Errorf("built-in pool: %w", err)
			}
			defer pool.Close()
			setup.log.Info(fmt.Sprintf("built-in pool on %s at difficulty %g; Ctrl-C to stop", pool.URL(), diff), "event", "demo.pool", "pool", pool.URL(), "difficulty", diff)
			jobs := newCrew(setup.log)
			defer jobs.stop()
			jobs.every(c.Duration("job-interval"), func() { pool.PushJob(true) })
			setup.pools[0].URL = pool.URL()
			if setup.ups[0], err = parseUpstream(pool.URL()); err != nil {
				return err
			}
			if c.Bool("proxy") {
				err = runProxyDemo(c, setup, pool)
			} else {
				err = runMiner(c, setup, stratum.Options{})
			}
			st := pool.Stats()
			setup.log.Info(fmt.Sprintf("built-in pool saw: %d accepted, %d rejected (%d stale, %d duplicate)", st.Accepted, st.Rejected, st.Stale, st.Duplicate),
				"event", "demo.pool_stats", "accepted", st.Accepted, "rejected", st.Rejected, "stale", st.Stale, "duplicate", st.Duplicate)
			return err
		},
	}
}

// demoRecordFlags keeps the demo's records apart from real mining's: the
// flags that name where records go (the best share and blocks found, the
// share log, the webhook) come from demo's command line only, never from
// the CLMINER_* variables a rig mines with, and the best share has its own
// default file (demo-best-share.json).
func demoRecordFlags(flags []cli.Flag) []cli.Flag {
	for i, f := range flags {
		sf, ok := f.(*cli.StringFlag)
		if !ok {
			continue
		}
		switch sf.Name {
		case "best-share-file", "share-log", "notify-url":
			cp := *sf
			cp.EnvVars = nil
			if cp.Name == "best-share-file" {
				cp.Usage = "where the demo's all-time best share is kept (default: clminer/demo-best-share.json in the user cache dir, apart from mine's; '-' keeps it in memory)"
			}
			flags[i] = &cp
		}
	}
	return flags
}

// demoPoolRecords is how many requests, shares and rejects the built-in pool
// keeps for inspection: the demo reads none (it counts through Stats and
// AcceptedBy), and a demo runs for as long as its user likes.
const demoPoolRecords = 64

// newDemoPool is the built-in pool of `clminer demo`, not yet started.
func newDemoPool(diff float64) *pooltest.Server {
	return pooltest.New(pooltest.Config{Difficulty: diff, Records: demoPoolRecords})
}

// demoDifficulty picks a difficulty giving a few shares a second: GPUs hash
// hundreds of times faster than CPUs.
func demoDifficulty(spec string) float64 {
	entries, _ := registry.List()
	ids, err := registry.Resolve(spec, entries)
	if err != nil {
		return 0.01
	}
	for _, id := range ids {
		for _, e := range entries {
			if e.ID == id && e.Type == "GPU" {
				return 4
			}
		}
	}
	return 0.01
}
