package miner_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"clminer/internal/testkit"
	"clminer/stratum"
	"clminer/stratum/pooltest"
	"clminer/work/device"
)

// pacedDevice reports one candidate every interval and hashes nothing, so
// the process's CPU time is the host side alone: dispatch, verification,
// accounting and the stratum client.
type pacedDevice struct{ interval time.Duration }

func (d *pacedDevice) Info() device.Info {
	return device.Info{ID: "paced", Kind: "test", Name: "paced candidate source"}
}

func (d *pacedDevice) Sweep(ctx context.Context, s device.Sweep) (device.Result, error) {
	tick := time.NewTicker(d.interval)
	defer tick.Stop()
	var done uint64
	for done < s.Count {
		select {
		case <-ctx.Done():
			return device.Result{Hashes: done}, ctx.Err()
		case <-tick.C:
		}
		s.Found(s.Start + uint32(done))
		done++
		if s.Progress != nil {
			s.Progress(1)
		}
	}
	return device.Result{Hashes: done}, nil
}

func (d *pacedDevice) Close() error { return nil }

// BenchmarkHostCost measures the CPU the host side costs while shares
// arrive at a fixed rate. The pool's difficulty is so low that every hash is
// a share, so each candidate goes the whole way: host re-verify, duplicate
// check, submit, reply, accounting. The pool runs in a child process so its
// CPU is not counted; the Go runtime's own work is. Run with -benchtime 10x
// (a 10 s window per rate).
func BenchmarkHostCost(b *testing.B) {
	for _, perSecond := range []int{1, 100} {
		b.Run(fmt.Sprintf("%dshares_per_s", perSecond), func(b *testing.B) {
			benchHostCost(b, perSecond)
		})
	}
	// The peer: a bare client that writes a fixed submit line and reads the
	// reply, 100 times a second, over the same loopback TCP to the same pool.
	// A Go client cannot do less per share, so it is the floor the kernel
	// and the Go runtime set on this machine.
	b.Run("bare_100shares_per_s", func(b *testing.B) {
		conn, err := net.Dial("tcp", strings.TrimPrefix(startPoolProcess(b), "stratum+tcp://"))
		require.NoError(b, err)
		defer conn.Close()
		rd := bufio.NewReader(conn)
		_, err = io.WriteString(conn, `{"id":1,"method":"mining.subscribe","params":[]}`+"\n"+
			`{"id":2,"method":"mining.authorize","params":["wallet.rig1","x"]}`+"\n")
		require.NoError(b, err)
		submit := []byte(`{"id":3,"method":"mining.submit","params":["wallet.rig1","1","00000000","5f5e1000","0000abcd"]}` + "\n")
		window := min(time.Duration(b.N)*time.Second, 10*time.Second)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		b.ResetTimer()
		cpu0, t0 := processCPU(), time.Now()
		replies := 0
		for time.Since(t0) < window {
			<-tick.C
			_, err := conn.Write(submit)
			require.NoError(b, err)
			for { // skip notifications until the reply to id 3
				line, err := rd.ReadString('\n')
				require.NoError(b, err)
				if strings.HasPrefix(line, `{"id":3`) {
					break
				}
			}
			replies++
		}
		cpu, wall := processCPU()-cpu0, time.Since(t0)
		b.StopTimer()
		b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "%core")
		b.ReportMetric(float64(replies)/wall.Seconds(), "shares/s")
		b.ReportMetric(float64(cpu.Microseconds())/float64(replies), "cpu-µs/share")
	})
}

func benchHostCost(b *testing.B, perSecond int) {
	url := startPoolProcess(b)
	dev := &pacedDevice{interval: time.Second / time.Duration(perSecond)}
	pool := stratum.PoolConfig{URL: url, User: "wallet.rig1", Pass: "x", VersionRolling: true}
	r := startMiner(b, []stratum.PoolConfig{pool}, []device.Device{dev}, stratum.Options{})
	accepted := func() uint64 { return r.m.Snapshot().Shares.Accepted }
	testkit.Eventually(b, func() bool { return accepted() >= 1 }, "the first accepted share")
	base := accepted()
	// One timed window per benchmark: b.N seconds, at most 10.
	window := min(time.Duration(b.N)*time.Second, 10*time.Second)
	b.ResetTimer()
	cpu0, t0 := processCPU(), time.Now()
	time.Sleep(window) // the measured window: elapsed time is the measurement
	cpu, wall := processCPU()-cpu0, time.Since(t0)
	b.StopTimer()
	shares := accepted() - base
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "%core")
	b.ReportMetric(float64(shares)/wall.Seconds(), "shares/s")
	if shares > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(shares), "cpu-µs/share")
	}
	if snap := r.m.Snapshot(); snap.Shares.HWErrors != 0 || snap.Shares.Rejected != 0 {
		b.Fatalf("every share should be accepted: %+v", snap.Shares)
	}
}

// servePoolEnv makes the test binary a pool server instead (see TestMain):
// the host-cost benchmark keeps the pool's CPU out of the miner's process.
const servePoolEnv = "CLMINER_TEST_SERVE_POOL"

// servePool runs a pool at a difficulty where every hash is a share, prints
// its URL, and serves until stdin closes.
func servePool() {
	p := pooltest.New(pooltest.Config{Difficulty: 1e-12})
	if err := p.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(p.URL())
	_, _ = io.Copy(io.Discard, os.Stdin)
	p.Close()
}

func startPoolProcess(b *testing.B) string {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), servePoolEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(b, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(b, err)
	require.NoError(b, cmd.Start())
	b.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	url, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(b, err)
	return strings.TrimSpace(url)
}

// processCPU is the user+system time of this process, all threads.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
