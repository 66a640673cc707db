package main

import (
	"encoding/json"
	"fmt"
	"strings"

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
			spec := c.String("device")
			untested, err := openCLUntested(spec)
			if err != nil {
				return err
			}
			if untested != "" {
				logger.Warn("OpenCL not tested: "+untested, "event", "selftest.opencl_untested", "reason", untested)
			}
			devs, err := registry.Open(c.Context, spec, opts)
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
				summary := fmt.Sprintf("selftest: %d passed, %d failed", total-failed, failed)
				if untested != "" {
					summary += "; OpenCL not tested: " + untested
				}
				fmt.Fprintln(c.App.Writer, summary)
			}
			if failed > 0 {
				return fmt.Errorf("selftest: %d failures", failed)
			}
			return nil
		},
	}
}

// openCLUntested decides what a selftest over every device ("all") does
// when OpenCL offers none: a broken installation (a driver declared but
// failing) fails the selftest, since an operator must not read success; no
// OpenCL at all is reported (a WARN line and the summary) and the other
// devices are tested. It returns why OpenCL goes untested, "" when it is
// tested or was not asked for. --device gpu and opencl already fail when
// OpenCL offers nothing.
func openCLUntested(spec string) (string, error) {
	all := false
	for _, part := range strings.Split(spec, ",") {
		all = all || strings.EqualFold(strings.TrimSpace(part), "all")
	}
	if !all {
		return "", nil
	}
	why, broken := registry.OpenCLProblem(registry.List())
	if broken {
		return "", fmt.Errorf("selftest --device %s: OpenCL not tested: %s; fix the driver (`clminer devices` shows what OpenCL offers), or test the CPU alone with --device cpu", spec, why)
	}
	return why, nil
}
