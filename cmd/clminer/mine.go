package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"clminer/gpu/registry"
	"clminer/stratum"
	"clminer/work/miner"
)

func poolFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "url", Aliases: []string{"o"}, Usage: "pool URL stratum+tcp://host:port (or stratum+tls://, stratum+ssl://); repeat for backups, in priority order", EnvVars: []string{"CLMINER_URL"}},
		&cli.StringSliceFlag{Name: "user", Aliases: []string{"u"}, Usage: "worker name for the pool given by the -o in the same position", EnvVars: []string{"CLMINER_USER"}},
		&cli.StringSliceFlag{Name: "pass", Aliases: []string{"p"}, Usage: "password for the pool in the same position (default x)", EnvVars: []string{"CLMINER_PASS"}},
		&cli.BoolFlag{Name: "tls-insecure", Usage: "do not verify pool TLS certificates", EnvVars: []string{"CLMINER_TLS_INSECURE"}},
		&cli.StringSliceFlag{Name: "tls-fingerprint", Usage: "SHA-256 fingerprint of each TLS pool's certificate, in pool order, checked instead of the CA chain", EnvVars: []string{"CLMINER_TLS_FINGERPRINT"}},
		&cli.BoolFlag{Name: "version-rolling", Value: true, Usage: "negotiate BIP 310 version rolling (more work per job)", EnvVars: []string{"CLMINER_VERSION_ROLLING"}},
		&cli.BoolFlag{Name: "extranonce-subscribe", Usage: "send mining.extranonce.subscribe (NiceHash)", EnvVars: []string{"CLMINER_EXTRANONCE_SUBSCRIBE"}},
		&cli.Float64Flag{Name: "suggest-difficulty", Usage: "send mining.suggest_difficulty after authorize", EnvVars: []string{"CLMINER_SUGGEST_DIFFICULTY"}},
		&cli.BoolFlag{Name: "allow-reconnect-any-domain", Usage: "follow client.reconnect to other domains (default: same domain only)", EnvVars: []string{"CLMINER_ALLOW_RECONNECT_ANY_DOMAIN"}},
	}
}

func runFlags() []cli.Flag {
	return []cli.Flag{
		&cli.DurationFlag{Name: "status-interval", Value: 10 * time.Second, Usage: "status line period (0: none)", EnvVars: []string{"CLMINER_STATUS_INTERVAL"}},
		&cli.DurationFlag{Name: "drain-timeout", Value: 5 * time.Second, Usage: "on shutdown, wait this long for verdicts on shares already sent", EnvVars: []string{"CLMINER_DRAIN_TIMEOUT"}},
		&cli.DurationFlag{Name: "duration", Usage: "stop after this long (0: run until SIGINT/SIGTERM)", EnvVars: []string{"CLMINER_DURATION"}},
	}
}

func mineCommand() *cli.Command {
	flags := append([]cli.Flag{&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "YAML config file (flags and CLMINER_* variables override it)", EnvVars: []string{"CLMINER_CONFIG"}}}, poolFlags()...)
	flags = append(flags, deviceFlags("auto")...)
	flags = append(flags, runFlags()...)
	flags = append(flags, apiFlags()...)
	return &cli.Command{
		Name:      "mine",
		Usage:     "mine on a list of Stratum v1 pools with failover, headless",
		UsageText: "clminer mine -o stratum+tcp://pool:3333 -u wallet.rig1 -p x [-o stratum+tls://backup:443 -u wallet.rig1] [options]",
		Flags:     flags,
		Action: func(c *cli.Context) error {
			pools, err := minePools(c)
			if err != nil {
				return err
			}
			return runMiner(c, pools, stratum.Options{})
		},
	}
}

// minePools applies the config file, if one is named, under the flags and
// environment, and returns the pool list in priority order.
func minePools(c *cli.Context) ([]stratum.PoolConfig, error) {
	var fc *fileConfig
	if path := c.String("config"); path != "" {
		var err error
		if fc, err = loadConfigFile(path); err != nil {
			return nil, err
		}
		if err := applyConfigFile(c, fc, path); err != nil {
			return nil, err
		}
	}
	return poolsFromFlags(c, fc)
}

// runMiner opens the devices and runs the miner until the context ends.
func runMiner(c *cli.Context, pools []stratum.PoolConfig, copts stratum.Options) error {
	logger, err := newLogger(c, os.Stderr)
	if err != nil {
		return err
	}
	opts, err := deviceOptions(c)
	if err != nil {
		return err
	}
	for _, d := range []string{"status-interval", "drain-timeout", "duration"} {
		if c.Duration(d) < 0 {
			return fmt.Errorf("--%s %v: must not be negative", d, c.Duration(d))
		}
	}
	for i := range pools {
		if _, err := stratum.ParsePoolURL(pools[i].URL); err != nil {
			return fmt.Errorf("pool %d: %w", i+1, err)
		}
	}
	api, err := newAPIServer(c, logger)
	if err != nil {
		return err
	}
	devs, err := registry.Open(c.String("device"), opts)
	if err != nil {
		return err
	}
	defer registry.CloseAll(devs)
	for _, d := range devs {
		i := d.Info()
		logger.Info("device ready", "event", "device.ready", "device", i.ID, "name", i.Name, "detail", i.Detail)
	}
	stratum.Version = version
	copts.Logger = logger
	client, err := stratum.NewClient(pools, copts)
	if err != nil {
		return err
	}
	m, err := miner.New(miner.Config{
		Source: client, Devices: devs, Logger: logger,
		StatusInterval: c.Duration("status-interval"), DrainTimeout: c.Duration("drain-timeout"),
		Observer: api.observer(),
	})
	if err != nil {
		return err
	}
	ctx := c.Context
	if d := c.Duration("duration"); d > 0 {
		var cancel func()
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	if err := api.start(ctx, m); err != nil {
		return err
	}
	defer api.stop()
	return m.Run(ctx)
}
