package main

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/log"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// A crew's pieces run until stop, which returns once every one has; a
// piece that fails is logged with its event and the others go on; a period
// of 0 starts no ticker.
func TestCrewRunsItsPiecesUntilStop(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var out syncBuffer
	cr := newCrew(log.New(&out))
	stopped := make(chan struct{})
	cr.run("server stopped", "server.error", func(ctx context.Context) error {
		<-ctx.Done()
		close(stopped)
		return nil
	})
	failed := make(chan struct{})
	cr.run("other stopped", "other.error", func(context.Context) error {
		defer close(failed)
		return errors.New("boom")
	})
	ticks := make(chan struct{}, 1)
	cr.every(time.Millisecond, func() {
		select {
		case ticks <- struct{}{}:
		default:
		}
	})
	cr.every(0, func() { t.Error("a period of 0 ticked") })
	<-failed
	<-ticks
	<-ticks
	select {
	case <-stopped:
		t.Fatal("a piece stopped when another failed")
	default:
	}
	cr.stop()
	<-stopped
	assert.Contains(t, out.String(), "other.error")
	assert.Contains(t, out.String(), "boom")
	assert.NotContains(t, out.String(), "server.error")
}

// mine binds both APIs before the devices; when the devices then fail,
// neither address stays bound.
func TestMineReleasesItsAddressesWhenDevicesFail(t *testing.T) {
	api, cg := freePort(t), freePort(t)
	app := newApp()
	var sink strings.Builder
	app.Writer, app.ErrWriter = &sink, &sink
	err := app.Run([]string{"clminer", "mine", "-o", "stratum+tcp://127.0.0.1:1", "-u", "w", "--device", "opencl:99:0",
		"--api-listen", api, "--cgminer-api", cg, "--best-share-file", "-"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "opencl:99:0", "the run got as far as the devices")
	for _, addr := range []string{api, cg} {
		ln, err := net.Listen("tcp", addr)
		require.NoError(t, err, "%s still bound", addr)
		require.NoError(t, ln.Close())
	}
}
