//go:build unix

package proxy

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"clminer/stratum"
	"clminer/stratum/pooltest"
	"clminer/stratum/v2/channel"
	"clminer/stratum/v2/v2test"
	"clminer/stratum/wire"
	"clminer/work"
	"clminer/work/source"
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
		line, _ := wire.EncodeRequest(uint64(id), method, params)
		if _, err := c.Write(line); err != nil {
			b.Fatal(err)
		}
	}
	send(1, wire.MethodSubscribe, "bench")
	var en1 string
	var size int
	var job work.JobParams
	diff := 1.0
	authorized := false
	send(2, wire.MethodAuthorize, "bench.rig", "x")
	for job.JobID == "" || !authorized {
		line, err := m.r.ReadBytes('\n')
		if err != nil {
			b.Fatal(err)
		}
		msg, err := wire.Decode(line)
		if err != nil {
			b.Fatal(err)
		}
		switch {
		case msg.Method == wire.MethodSetDifficulty:
			diff, _ = stratum.ParseDifficulty(msg.Params)
		case msg.Method == wire.MethodNotify:
			job, _ = stratum.ParseNotify(msg.Params)
		case msg.Kind == wire.KindResponse:
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
		line, _ := wire.EncodeRequest(uint64(i+10), wire.MethodSubmit,
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

// BenchmarkShares sends valid shares from one raw downstream connection,
// interleaved by upstream kind (run with -count); cpu-ns/share is the
// whole process's CPU time per share, so each kind pairs the proxy with a
// baseline that does the same upstream work without it, and the proxy's
// cost is the difference:
//
//   - direct / proxy: the built-in Stratum v1 pool, the miner on it, or
//     through the proxy;
//   - direct-v2 / proxy-v2: the Go V2 pool in extended-channel mode, the
//     shares sent on a channel by the benchmark itself, or by the miner
//     through the proxy (whose V1 lines the baseline does not have);
//   - stub-node / proxy-node: a node upstream takes no shares (these are
//     no blocks), so the proxy judges them itself; the baseline is the
//     miner on a stub that answers every submit true unread.
//
// pipelined keeps 32 shares in flight (throughput), serial one (latency).
func BenchmarkShares(b *testing.B) {
	for _, mode := range []struct {
		name   string
		window int
	}{{"pipelined", 32}, {"serial", 1}} {
		for _, via := range []string{"direct", "proxy", "direct-v2", "proxy-v2", "stub-node", "proxy-node"} {
			b.Run(mode.name+"/"+via, func(b *testing.B) {
				pcfg := Config{MaxPending: 64, Rate: 1e9, Burst: 1 << 30}
				var addr string
				var v2 *v2test.Pool
				var pool *pooltest.Server
				switch via {
				case "direct", "proxy":
					pool = pooltest.Start(b, pooltest.Config{Difficulty: benchDiff})
					addr = pool.Addr()
					if via == "proxy" {
						addr = startProxy(b, pcfg, pool).srv.Addr()
					}
				case "direct-v2", "proxy-v2":
					var src *channel.Source
					v2, src = startV2(b, v2test.Config{Target: v2Target(b, benchDiff)})
					if via == "direct-v2" {
						benchChannel(b, src, mode.window)
						return
					}
					addr = startProxyOn(b, pcfg, src).srv.Addr()
				case "stub-node":
					addr = startStub(b)
				case "proxy-node":
					pcfg.StartDifficulty, pcfg.MinDifficulty, pcfg.MaxDifficulty = benchDiff, benchDiff, benchDiff
					addr = startProxyOn(b, pcfg, startFakeNode(b, time.Hour)).srv.Addr()
				}
				m := newBenchMiner(b, addr, b.N)
				defer m.c.Close()
				cpu0 := cpuTime()
				b.ResetTimer()
				rtts := m.run(b, mode.window)
				b.StopTimer()
				reportShares(b, cpuTime()-cpu0, rtts)
				if pool != nil && via == "proxy" && pool.Stats().Accepted != b.N {
					b.Fatalf("pool accepted %d of %d", pool.Stats().Accepted, b.N)
				}
				if v2 != nil {
					if acc, _, _ := v2Counts(v2); acc != b.N {
						b.Fatalf("V2 pool accepted %d of %d", acc, b.N)
					}
				}
			})
		}
	}
}

func reportShares(b *testing.B, cpu time.Duration, rtts []time.Duration) {
	slices.Sort(rtts)
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/share")
	b.ReportMetric(float64(rtts[len(rtts)/2].Microseconds()), "rtt-p50-µs")
	b.ReportMetric(float64(rtts[len(rtts)*99/100].Microseconds()), "rtt-p99-µs")
}

// chanSink keeps the channel's jobs.
type chanSink struct{ jobs chan *source.Job }

func (k chanSink) Job(j *source.Job) {
	select {
	case k.jobs <- j:
	default:
	}
}
func (chanSink) NoWork(string)      {}
func (chanSink) Event(source.Event) {}

// benchChannel sends b.N shares found beforehand on src's first job with
// at most window awaiting a verdict: the V2 baseline, without a proxy.
func benchChannel(b *testing.B, src *channel.Source, window int) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	sink := chanSink{make(chan *source.Job, 1)}
	go func() {
		defer close(done)
		_ = src.Run(ctx, sink)
	}()
	defer func() { cancel(); <-done }()
	var j *source.Job
	select {
	case j = <-sink.jobs:
	case <-time.After(30 * time.Second):
		b.Fatal("no V2 job")
	}
	shares := make([]source.Share, b.N)
	for i := range shares {
		en2 := make([]byte, j.Extranonce2Size)
		binary.LittleEndian.PutUint32(en2, uint32(i))
		u, err := j.NewUnit(en2, j.Version, j.NTime)
		if err != nil {
			b.Fatal(err)
		}
		nonce := uint32(0)
		for !u.Check(nonce).MeetsShare {
			nonce++
		}
		shares[i] = source.Share{Job: j, Unit: u, Nonce: nonce}
	}
	slots := make(chan struct{}, window)
	var mu sync.Mutex
	rtts := make([]time.Duration, 0, b.N)
	var failed error
	var wg sync.WaitGroup
	cpu0 := cpuTime()
	b.ResetTimer()
	for _, sh := range shares {
		slots <- struct{}{}
		wg.Add(1)
		sent := time.Now()
		src.Send(sh, func(r source.Reply) {
			mu.Lock()
			rtts = append(rtts, time.Since(sent))
			if r.Kind != source.Accepted && failed == nil {
				failed = fmt.Errorf("share %v: %s", r.Kind, r.Reason)
			}
			mu.Unlock()
			<-slots
			wg.Done()
		})
	}
	wg.Wait()
	b.StopTimer()
	if failed != nil {
		b.Fatal(failed)
	}
	reportShares(b, cpuTime()-cpu0, rtts)
}

// startStub serves a V1 "pool" that hands out one job and answers every
// submit true without reading it: the node baseline's far side.
func startStub(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	b.Cleanup(func() { ln.Close(); wg.Wait() })
	g := pooltest.GenerateJob("s", 4, 4, true)
	job := work.JobParams{JobID: g.JobID, PrevHash: g.PrevHash, Coinb1: g.Coinb1, Coinb2: g.Coinb2, MerkleBranch: g.MerkleBranch,
		Version: g.Version, NBits: g.NBits, NTime: g.NTime, CleanJobs: true}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				r := bufio.NewReaderSize(c, 1<<16)
				w := bufio.NewWriter(c)
				for {
					line, err := r.ReadSlice('\n')
					if err != nil {
						return
					}
					m, err := wire.Decode(line)
					if err != nil {
						return
					}
					switch m.Method {
					case wire.MethodSubscribe:
						res := stratum.SubscribeResult{Extranonce1: "01020304", Extranonce2Size: 4}
						out, _ := wire.EncodeResponse(m.ID, res.Result(), nil)
						_, _ = w.Write(out)
					case wire.MethodAuthorize:
						out, _ := wire.EncodeResponse(m.ID, true, nil)
						_, _ = w.Write(out)
						out, _ = wire.EncodeNotification(wire.MethodSetDifficulty, stratum.DifficultyParams(benchDiff))
						_, _ = w.Write(out)
						out, _ = wire.EncodeNotification(wire.MethodNotify, stratum.NotifyParams(job))
						_, _ = w.Write(out)
					default:
						out, _ := wire.EncodeResponse(m.ID, true, nil)
						_, _ = w.Write(out)
					}
					if r.Buffered() == 0 {
						if w.Flush() != nil {
							return
						}
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}
