package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"time"

	"github.com/urfave/cli/v2"

	"clminer/bench"
	"clminer/gpu/registry"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure hashrate per device (median and spread over intervals), checking a real block's nonce is found",
		Flags: append(deviceFlags("auto"),
			&cli.DurationFlag{Name: "duration", Value: bench.DefaultConfig.Duration, Usage: "measured time per device, after warm-up"},
			&cli.DurationFlag{Name: "warmup", Value: bench.DefaultConfig.Warmup, Usage: "unmeasured warm-up per device"},
			&cli.IntFlag{Name: "intervals", Value: bench.DefaultConfig.Intervals, Usage: "measurement intervals the duration is cut into"},
			&cli.BoolFlag{Name: "version-rolling", Value: true, Usage: "hash as with a pool that rolls versions: a multi-version device hashes --kernel-versions versions per nonce (OpenCL: 2 or 4; the CPU device: the shape it measured fastest at start, or --kernel-versions; --version-rolling=false: one)"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object per device"},
		),
		Action: func(c *cli.Context) error {
			logger, err := newLogger(c, errWriter(c))
			if err != nil {
				return err
			}
			opts, err := deviceOptions(c)
			if err != nil {
				return err
			}
			opts.Log = logger
			cfg := bench.Config{Duration: c.Duration("duration"), Warmup: c.Duration("warmup"), Intervals: c.Int("intervals"),
				VersionRolling: c.Bool("version-rolling")}
			if cfg.Duration <= 0 || cfg.Intervals <= 0 || cfg.Warmup < 0 || cfg.Duration/time.Duration(cfg.Intervals) < 100*time.Millisecond {
				return fmt.Errorf("--duration %v / --intervals %d: need intervals of at least 100ms and a non-negative --warmup", cfg.Duration, cfg.Intervals)
			}
			interval := cfg.Duration / time.Duration(cfg.Intervals)
			devs, err := registry.Open(c.Context, c.String("device"), opts)
			if err != nil {
				return err
			}
			defer registry.CloseAll(devs)
			failed := 0
			for _, d := range devs {
				id := d.Info().ID
				logger.Info(fmt.Sprintf("benchmarking %s (%s): %v warm-up, then %d intervals of %v", id, d.Info().Detail, cfg.Warmup, cfg.Intervals, interval),
					"event", "bench.start", "device", id, "warmup_s", cfg.Warmup.Seconds(), "intervals", cfg.Intervals, "interval_s", interval.Seconds())
				cfg.OnInterval = func(i, n int, mhs float64) {
					logger.Info(fmt.Sprintf("interval %d/%d: %.2f MH/s", i, n, mhs), "event", "bench.interval", "device", id, "interval", i, "intervals", n, "mhs", mhs)
				}
				rep, err := bench.Run(c.Context, d, cfg)
				if c.Context.Err() != nil {
					return c.Context.Err()
				}
				for _, w := range rep.Warnings {
					logger.Warn("bench figure unreliable: "+w, "event", "bench.unreliable", "device", id, "spread_pct", rep.SpreadPct, "max_batch_s", rep.MaxBatchS, "interval_s", interval.Seconds())
				}
				if err != nil {
					failed++
					logger.Error("bench failed", "event", "bench.failed", "device", id, "err", err)
				}
				if c.Bool("json") {
					doc := struct {
						Version  string       `json:"version"`
						Commit   string       `json:"commit"`
						GoArch   string       `json:"goarch"`
						CPUs     int          `json:"cpus"`
						Settings any          `json:"settings"`
						OK       bool         `json:"ok"`
						Error    string       `json:"error,omitempty"`
						Report   bench.Report `json:"report"`
					}{Version: version, Commit: commit, GoArch: runtime.GOARCH, CPUs: runtime.NumCPU(),
						Settings: map[string]any{"duration_s": cfg.Duration.Seconds(), "warmup_s": cfg.Warmup.Seconds(), "intervals": cfg.Intervals,
							"threads": opts.Threads, "cpu_path": opts.CPUPath, "kernel_ms": opts.KernelMS, "intensity": opts.Intensity, "vector_width": opts.VectorWidth,
							"version_rolling": cfg.VersionRolling, "kernel_versions": opts.KernelVersions, "kernel_maj": opts.KernelMaj},
						OK: err == nil, Report: rep}
					if err != nil {
						doc.Error = err.Error()
					}
					if err := json.NewEncoder(c.App.Writer).Encode(doc); err != nil {
						return err
					}
					continue
				}
				flag := ""
				if len(rep.Warnings) > 0 {
					flag = "  UNRELIABLE (see the warnings above)"
				}
				fmt.Fprintf(c.App.Writer, "%-12s %10.2f MH/s median  (mean %.2f, min %.2f, max %.2f, spread %.1f%%, %d intervals, %d batches)  %s  known nonce %s found: %v%s\n",
					rep.Device.ID, rep.MedianMHs, rep.MeanMHs, rep.MinMHs, rep.MaxMHs, rep.SpreadPct, len(rep.IntervalMHs), rep.Batches, rep.Device.Detail, rep.KnownNonce, rep.KnownNonceHit, flag)
			}
			if failed > 0 {
				return fmt.Errorf("bench failed on %d of %d devices", failed, len(devs))
			}
			return nil
		},
	}
}
