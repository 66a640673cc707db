package main

import (
	"context"
	"os"
)

func main() {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	watchSignals(stop)
	app := newApp()
	if err := app.RunContext(ctx, os.Args); err != nil {
		reportError(app, os.Stderr, err)
		os.Exit(1)
	}
}
