//go:build unix

package proxy

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"syscall"
	"testing"
	"time"

	"clminer/stratum"
	"clminer/stratum/pooltest"
	"clminer/work"
)

// benchDiff makes about one hash in four a share, so shares cost the
// benchmark nothing to find and it measures the share path alone.
const benchDiff = 1.0 / (1 << 30)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchMiner is a raw downstream that submits pre-found shares.
type benchMiner struct {
	c      net.Conn
	r      *bufio.Reader
	shares [][]byte // submit lines, id = index+1
}

func newBenchMiner(b *testing.B, addr string, n int) *benchMiner {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	m := &benchMiner{c: c, r: bufio.NewReaderSize(c, 1<<16)}
	send := func(id int, method string, params ...any) {
		line, _ := stratum.EncodeRequest(uint64(id), method, params)
		if _, err := c.Write(line); err != nil {
			b.Fatal(err)
		}
	}
	send(1, stratum.MethodSubscribe, "bench")
	var en1 string
	var size int
	var job work.JobParams
	diff := 1.0
	authorized := false
	send(2, stratum.MethodAuthorize, "bench.rig", "x")
	for job.JobID == "" || !authorized {
		line, err := m.r.ReadBytes('\n')
		if err != nil {
			b.Fatal(err)
		}
		msg, err := stratum.DecodeLine(line)
		if err != nil {
			b.Fatal(err)
		}
		switch {
		case msg.Method == stratum.MethodSetDifficulty:
			diff, _ = stratum.ParseDifficulty(msg.Params)
		case msg.Method == stratum.MethodNotify:
			job, _ = stratum.ParseNotify(msg.Params)
		case msg.Kind == stratum.KindResponse:
			id, _ := msg.NumID()
			if id == 1 {
				sr, err := stratum.ParseSubscribeResult(msg.Result)
				if err != nil {
					b.Fatal(err)
				}
				en1, size = sr.Extranonce1, sr.Extranonce2Size
			} else if id == 2 {
				authorized = true
			}
		}
	}
	job.Extranonce1, job.Extranonce2Size, job.Difficulty = en1, size, diff
	j, err := work.NewJob(job)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i++ {
		en2 := make([]byte, size)
		for k := 0; k < size && k < 4; k++ {
			en2[k] = byte(i >> (8 * k))
		}
		u, err := j.NewUnit(en2, j.Version, j.NTime)
		if err != nil {
			b.Fatal(err)
		}
		nonce := uint32(0)
		for !u.Check(nonce).MeetsShare {
			nonce++
		}
		line, _ := stratum.EncodeRequest(uint64(i+10), stratum.MethodSubmit,
			[]any{"bench.rig", j.ID, hex.EncodeToString(en2), work.FormatUint32Hex(j.NTime), work.FormatUint32Hex(nonce)})
		m.shares = append(m.shares, line)
	}
	return m
}

// run submits every share with at most window awaiting a verdict and
// returns each share's round trip.
func (m *benchMiner) run(b *testing.B, window int) []time.Duration {
	sent := make([]time.Time, len(m.shares))
	rtts := make([]time.Duration, 0, len(m.shares))
	slots := make(chan struct{}, window)
	done := make(chan error, 1)
	go func() {
		for range m.shares {
			line, err := m.r.ReadBytes('\n')
			if err != nil {
				done <- err
				return
			}
			var rep struct {
				ID     int             `json:"id"`
				Result json.RawMessage `json:"result"`
				Error  json.RawMessage `json:"error"`
			}
			if json.Unmarshal(line, &rep) != nil || rep.ID < 10 {
				done <- fmt.Errorf("unexpected line %q", line)
				return
			}
			if string(rep.Result) != "true" {
				done <- fmt.Errorf("share %d rejected: %s", rep.ID, rep.Error)
				return
			}
			rtts = append(rtts, time.Since(sent[rep.ID-10]))
			<-slots
		}
		done <- nil
	}()
	w := bufio.NewWriter(m.c)
	for i, line := range m.shares {
		slots <- struct{}{}
		sent[i] = time.Now()
		_, _ = w.Write(line)
		if len(slots) == window || i == len(m.shares)-1 {
			_ = w.Flush()
		}
	}
	_ = w.Flush()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return rtts
}

// BenchmarkShares sends valid shares to the built-in pool directly and
// through the proxy, interleaved (run with -count): cpu-ns/share is the
// whole process's CPU time (pool, miner and, through the proxy, the
// proxy) per share; the proxy's cost is the difference between the two.
// pipelined keeps 32 shares in flight (throughput), serial one (latency).
func BenchmarkShares(b *testing.B) {
	for _, mode := range []struct {
		name   string
		window int
	}{{"pipelined", 32}, {"serial", 1}} {
		for _, via := range []string{"direct", "proxy"} {
			b.Run(mode.name+"/"+via, func(b *testing.B) {
				pool := startPool(b, pooltest.Config{Difficulty: benchDiff})
				addr := pool.Addr()
				if via == "proxy" {
					px := startProxy(b, Config{MaxPending: 64, Rate: 1e9, Burst: 1 << 30}, pool)
					addr = px.srv.Addr()
				}
				m := newBenchMiner(b, addr, b.N)
				defer m.c.Close()
				cpu0 := cpuTime()
				b.ResetTimer()
				rtts := m.run(b, mode.window)
				b.StopTimer()
				cpu := cpuTime() - cpu0
				slices.Sort(rtts)
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/share")
				b.ReportMetric(float64(rtts[len(rtts)/2].Microseconds()), "rtt-p50-µs")
				b.ReportMetric(float64(rtts[len(rtts)*99/100].Microseconds()), "rtt-p99-µs")
				if via == "proxy" && pool.Stats().Accepted != b.N {
					b.Fatalf("pool accepted %d of %d", pool.Stats().Accepted, b.N)
				}
			})
		}
	}
}
