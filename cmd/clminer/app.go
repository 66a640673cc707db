package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/charmbracelet/log"
	"github.com/urfave/cli/v2"

	"clminer/gpu/registry"
)

func newApp() *cli.App {
	return &cli.App{
		Name:    "clminer",
		Usage:   "Bitcoin SHA-256d miner for OpenCL GPUs (and CPUs), speaking Stratum v1",
		Version: version + " (" + commit + ")",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error", EnvVars: []string{"CLMINER_LOG_LEVEL"}},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json", EnvVars: []string{"CLMINER_LOG_FORMAT"}},
		},
		Commands: []*cli.Command{
			devicesCommand(),
			benchCommand(),
			selftestCommand(),
			mineCommand(),
			demoCommand(),
		},
		ExitErrHandler: func(*cli.Context, error) {}, // main prints the error once
	}
}

// deviceFlags are shared by every command that opens devices.
func deviceFlags(defaultSpec string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "device", Aliases: []string{"d"}, Value: defaultSpec, Usage: "devices to use: " + registry.SpecHelp, EnvVars: []string{"CLMINER_DEVICE"}},
		&cli.IntFlag{Name: "threads", Aliases: []string{"t"}, Usage: "CPU device worker threads (0: one per core)", EnvVars: []string{"CLMINER_THREADS"}},
		&cli.StringFlag{Name: "cpu-path", Usage: "force a CPU hashing path (see `clminer devices`)", EnvVars: []string{"CLMINER_CPU_PATH"}},
		&cli.Float64Flag{Name: "kernel-ms", Value: 50, Usage: "OpenCL kernel time per batch to tune for, in ms; two batches stay queued, so a new block waits out at most about two", EnvVars: []string{"CLMINER_KERNEL_MS"}},
		&cli.IntFlag{Name: "intensity", Aliases: []string{"I"}, Usage: "fix OpenCL batches at 2^N nonces instead of tuning (8..32)", EnvVars: []string{"CLMINER_INTENSITY"}},
		&cli.IntFlag{Name: "vector-width", Usage: "force the OpenCL kernel vector width (1,2,4,8,16; 0: the device's preferred)", EnvVars: []string{"CLMINER_VECTOR_WIDTH"}},
		&cli.StringFlag{Name: "kernel-cache", Usage: "directory for compiled OpenCL programs (default: user cache dir; '-' disables)", EnvVars: []string{"CLMINER_KERNEL_CACHE"}},
	}
}

func deviceOptions(c *cli.Context) (registry.Options, error) {
	o := registry.Options{
		Threads:     c.Int("threads"),
		CPUPath:     c.String("cpu-path"),
		KernelMS:    c.Float64("kernel-ms"),
		Intensity:   c.Int("intensity"),
		VectorWidth: c.Int("vector-width"),
		CacheDir:    c.String("kernel-cache"),
	}
	switch {
	case o.Threads < 0:
		return o, fmt.Errorf("--threads %d: must be 0 (one per core) or more", o.Threads)
	case o.KernelMS <= 0 || o.KernelMS > 10000:
		return o, fmt.Errorf("--kernel-ms %v: must be between 0 and 10000", o.KernelMS)
	case o.Intensity != 0 && (o.Intensity < 8 || o.Intensity > 32):
		return o, fmt.Errorf("--intensity %d: must be 8..32 (batches of 2^N nonces), or 0 to autotune", o.Intensity)
	case o.VectorWidth != 0 && o.VectorWidth != 1 && o.VectorWidth != 2 && o.VectorWidth != 4 && o.VectorWidth != 8 && o.VectorWidth != 16:
		return o, fmt.Errorf("--vector-width %d: must be 1, 2, 4, 8 or 16", o.VectorWidth)
	}
	return o, nil
}

// newLogger builds the process logger from the global flags.
func newLogger(c *cli.Context, w io.Writer) (*log.Logger, error) {
	lvl, err := log.ParseLevel(c.String("log-level"))
	if err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", c.String("log-level"))
	}
	l := log.NewWithOptions(w, log.Options{Level: lvl, ReportTimestamp: true, TimeFormat: time.DateTime})
	switch strings.ToLower(c.String("log-format")) {
	case "text", "":
	case "json":
		l.SetFormatter(log.JSONFormatter)
		l.SetTimeFormat(time.RFC3339Nano)
	default:
		return nil, fmt.Errorf("--log-format %q: use text or json", c.String("log-format"))
	}
	return l, nil
}

func stdoutIsTerminal() bool {
	fi, err := os.Stdout.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
