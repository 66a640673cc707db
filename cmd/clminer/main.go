// Command clminer is a Bitcoin (SHA-256d) miner for OpenCL GPUs, with a pure-Go
// CPU device where no GPU exists. This package only wires flags to the
// packages that do the work, so that tests drive those without a process.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Set by the Makefile with -ldflags.
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal starts the graceful drain; unregistering then gives
	// a second signal its default action, so it exits at once.
	go func() {
		<-ctx.Done()
		stop()
	}()
	if err := newApp().RunContext(ctx, os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "clminer:", err)
		os.Exit(1)
	}
}
