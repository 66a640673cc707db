package main

import (
	"context"
	"fmt"
	"os"

	"clminer/stratum"
)

// Set by the Makefile with -ldflags.
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	// Once, here: commands run concurrently in tests (a proxy and two
	// miners in one process), and the user agent is process-wide.
	stratum.Version = version
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	watchSignals(stop)
	if err := newApp().RunContext(ctx, os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "clminer:", err)
		os.Exit(1)
	}
}
