package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"clminer/stratum"
)

func main() {
	// Once, here: commands run concurrently in tests (a proxy and two
	// miners in one process), and the user agent is process-wide.
	stratum.Version = version
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal starts the graceful drain; unregistering then gives
	// a second signal its default action, so it exits at once.
	go func() {
		<-ctx.Done()
		stop()
	}()
	app := newApp()
	if err := app.RunContext(ctx, os.Args); err != nil {
		reportError(app, os.Stderr, err)
		os.Exit(1)
	}
}
