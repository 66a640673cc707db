package main

import (
	"encoding/json"
	"fmt"

	"github.com/urfave/cli/v2"

	"clminer/bench/selftest"
	"clminer/gpu/registry"
	"clminer/work/vectors"
)

func selftestCommand() *cli.Command {
	return &cli.Command{
		Name:  "selftest",
		Usage: "prove devices right on real Bitcoin blocks: rebuild each job, sweep a window around the real nonce",
		Flags: append(deviceFlags("all"),
			&cli.StringFlag{Name: "vectors", Usage: "directory of vector *.json files (default: the vectors built into the binary)"},
			&cli.Uint64Flag{Name: "window", Value: selftest.DefaultWindow, Usage: "nonces swept around each real nonce"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object per vector and device"},
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
			window := c.Uint64("window")
			if window == 0 || window > 1<<32 {
				return fmt.Errorf("--window %d: must be 1..4294967296", window)
			}
			vecs, err := vectors.Builtin()
			if dir := c.String("vectors"); dir != "" {
				vecs, err = vectors.LoadDir(dir)
			}
			if err != nil {
				return err
			}
			devs, err := registry.Open(c.Context, c.String("device"), opts)
			if err != nil {
				return err
			}
			defer registry.CloseAll(devs)
			failed, total := 0, 0
			enc := json.NewEncoder(c.App.Writer)
			var writeErr error
			// Each result is printed as soon as it is known: a run over
			// many vectors and slow devices shows its progress.
			selftest.RunEach(c.Context, devs, vecs, window, func(r selftest.Result) {
				total++
				if !r.Pass {
					failed++
				}
				if writeErr != nil {
					return
				}
				if c.Bool("json") {
					writeErr = enc.Encode(r)
				} else {
					_, writeErr = fmt.Fprintln(c.App.Writer, r.String())
				}
			})
			if writeErr != nil {
				return writeErr
			}
			if !c.Bool("json") {
				fmt.Fprintf(c.App.Writer, "selftest: %d passed, %d failed\n", total-failed, failed)
			}
			if failed > 0 {
				return fmt.Errorf("selftest: %d failures", failed)
			}
			return nil
		},
	}
}
