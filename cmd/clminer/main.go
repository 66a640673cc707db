package main

import (
	"context"
	"os"

	"clminer/stratum"
)

func main() {
	// Once, here: commands run concurrently in tests (a proxy and two
	// miners in one process), and the user agent is process-wide.
	stratum.Version = version
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	watchSignals(stop)
	app := newApp()
	if err := app.RunContext(ctx, os.Args); err != nil {
		reportError(app, os.Stderr, err)
		os.Exit(1)
	}
}
