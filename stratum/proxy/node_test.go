package proxy

import (
	"bytes"
	"context"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/btcsuite/btcd/address/v2"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/charmbracelet/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/gpu/gputest"
	"clminer/internal/testkit"
	"clminer/stratum"
	"clminer/stratum/wire"
	"clminer/work"
	"clminer/work/device"
	"clminer/work/gbt"
	"clminer/work/gbt/gbttest"
)

// With a node upstream the proxy sets each miner's difficulty: a miner
// that finds nothing is lowered (at the next template), one that asks with
// mining.suggest_difficulty gets what it asked for within the bounds, at
// once (its job re-sent), and never above the network's.
func TestNodeVardiffAndSuggest(t *testing.T) {
	src := startFakeNode(t, 50*time.Millisecond)
	px := startProxyOn(t, Config{StartDifficulty: 0.25, MinDifficulty: 1e-9, MaxDifficulty: 0.5, RetargetInterval: 300 * time.Millisecond}, src)
	s := handshake(t, dialRaw(t, px.srv.Addr()), "rig", false)
	assert.Equal(t, 0.25, s.diff)
	for s.nextJob(t); s.diff == 0.25; s.nextJob(t) {
	}
	assert.Equal(t, 0.25/4, s.diff, "no share within the interval: a quarter")
	for _, tc := range []struct{ ask, want float64 }{{0.4, 0.4}, {1e6, 0.5}, {1e-12, 1e-9}} {
		id := s.call(wire.MethodSuggestDifficulty, tc.ask)
		rep, notes := s.until(id)
		require.Equal(t, "true", string(rep.Result))
		s.notes = append(s.notes, notes...)
		for s.nextJob(t); s.diff != tc.want; s.nextJob(t) {
		}
	}
	// The network's is the ceiling: a share above it is a block anyway.
	src2 := startFakeNode(t, time.Hour)
	px2 := startProxyOn(t, Config{StartDifficulty: 1e6, MaxDifficulty: 1e9}, src2)
	s2 := handshake(t, dialRaw(t, px2.srv.Addr()), "rig", false)
	assert.InDelta(t, 1, s2.diff, 1e-4, "1d00ffff is difficulty 1")
}

// A fast miner is raised until it sends about SharesPerMinute; every share
// it sends meets what it was told, and none is a block (the template's
// target is hard), so nothing goes to the node.
func TestNodeVardiffRaisesAFastMiner(t *testing.T) {
	src := startFakeNode(t, time.Hour)
	px := startProxyOn(t, Config{StartDifficulty: 1e-9, MinDifficulty: 1e-9, SharesPerMinute: 600, Rate: 1e6, Burst: 1 << 20}, src)
	d := startDownstream(t, px.url(), "fast", stratum.Options{})
	testkit.EventuallyWithin(t, 60*time.Second, func() bool {
		st := px.srv.Status()
		return len(st.Miners) == 1 && st.Miners[0].Difficulty >= 1e-6
	}, "the miner's difficulty raised 1000 times")
	d.shutdown()
	st := px.srv.Status()
	assert.Positive(t, st.Shares.Accepted)
	assert.Zero(t, st.Shares.Invalid+st.Shares.Duplicate+st.Shares.Rejected, "%+v", st.Shares)
	assert.Zero(t, st.Shares.BlocksSubmitted)
}

// nodeProxy is a proxy in front of btcd.
func nodeProxy(t *testing.T, n *gbttest.Node, payTo string, opt gbt.Options) *proxyRun {
	t.Helper()
	opt.Extranonce2Size = 8
	if opt.PollInterval == 0 {
		opt.PollInterval = 50 * time.Millisecond
	}
	opt.Retry.Max = 200 * time.Millisecond
	if os.Getenv("PROXY_DEBUG") != "" {
		opt.Logger = log.NewWithOptions(os.Stderr, log.Options{Level: log.DebugLevel})
	}
	src, err := gbt.New(gbt.Config{Endpoint: gbt.Endpoint{URL: n.URL, User: n.User, Pass: n.Pass}, Address: payTo, VersionRolling: true}, opt)
	require.NoError(t, err)
	return startProxyOn(t, Config{}, src)
}

// minerBlocks is the blocks the node accepted from worker, by the proxy's
// count.
func minerBlocks(px *proxyRun, worker string) uint64 {
	for _, w := range px.srv.Status().Workers {
		if w.Name == worker {
			return w.Shares.BlocksAccepted
		}
	}
	return 0
}

// btcd (regtest) behind the proxy, a solo pool for the farm: two clminer
// rigs find blocks, each one checked by btcd's consensus rules, paying the
// operator's address, carrying the mempool's transactions (a legacy and a
// witness spend), one block per tip; the status and metrics show each
// miner's blocks.
func TestNodeUpstreamBlocksIntoBtcd(t *testing.T) {
	w := gbttest.NewWallet("clminer proxy solo wallet")
	n := gbttest.Start(t, w.P2PKH.EncodeAddress())
	n.MustCall(t, nil, "generate", 110)
	payTo := w.P2WPKH
	h0 := n.Height(t)
	c := n.Spend(t, w, n.Coinbase(t, h0-105), w.P2WPKH, 10_000)
	n.Spend(t, w, c, w.P2PKH, 10_000)
	var mempool []string
	n.MustCall(t, &mempool, "getrawmempool")
	require.Len(t, mempool, 2)

	px := nodeProxy(t, n, payTo.EncodeAddress(), gbt.Options{})
	// Slow devices: on regtest every other hash is a block; a pause before
	// each sweep keeps the chain at a pace the test can follow.
	// The rig that loses a tip has its block answered stale: clminer's
	// client must not leave the proxy for a streak of them (see
	// TestNodeRestartKeepsMinersMining).
	opts := stratum.Options{RejectStreak: 1 << 20}
	d1 := startDownstream(t, px.url(), "farm.rig1", opts, &slowDevice{Device: gputest.Device{ID: "a"}})
	d2 := startDownstream(t, px.url(), "farm.rig2", opts, &slowDevice{Device: gputest.Device{ID: "b"}})
	testkit.EventuallyWithin(t, 90*time.Second, func() bool {
		return minerBlocks(px, "farm.rig1") > 0 && minerBlocks(px, "farm.rig2") > 0 && n.Height(t) >= h0+3
	}, "blocks from both rigs")
	d1.shutdown()
	d2.shutdown()
	h1 := n.Height(t)

	want, err := txscript.PayToAddrScript(payTo)
	require.NoError(t, err)
	var mined []string
	for h := h0 + 1; h <= h1; h++ {
		b := n.BlockAt(t, h)
		mined = append(mined, b.Txids...)
		assert.True(t, bytes.Equal(b.Payout, want), "block %d pays %x, want %s", h, b.Payout, payTo)
		assert.Contains(t, string(b.Msg.Transactions[0].TxIn[0].SignatureScript), "/clminer/")
	}
	for _, id := range mempool {
		assert.True(t, slices.Contains(mined, id), "mempool tx %s mined", id)
	}
	st := px.srv.Status()
	sh := st.Shares
	assert.Zero(t, sh.BlocksRejected, "%+v", sh)
	assert.Equal(t, sh.BlocksSubmitted, sh.BlocksAccepted, "one block per tip: every block sent was the node's (none competed)")
	assert.EqualValues(t, h1-h0, sh.BlocksAccepted, "every block on the chain came through the proxy, once")
	assert.Zero(t, sh.Invalid+sh.Duplicate+sh.Rejected, "%+v", sh)
	var perMiner uint64
	for _, wk := range st.Workers {
		perMiner += wk.Shares.BlocksAccepted
	}
	assert.Equal(t, sh.BlocksAccepted, perMiner)
	reg := prometheus.NewRegistry()
	reg.MustRegister(px.srv.Collector())
	mfs, err := reg.Gather()
	require.NoError(t, err)
	series := 0
	for _, mf := range mfs {
		if mf.GetName() != "clminer_proxy_blocks_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			series++
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["outcome"] == "accepted" {
				assert.EqualValues(t, minerBlocks(px, labels["worker"]), m.GetCounter().GetValue(), "%v", labels)
			}
		}
	}
	assert.Equal(t, 6, series, "submitted, accepted and rejected for each of the two rigs")
	require.Len(t, st.Pools, 1)
	require.NotNil(t, st.Pools[0].Node)
}

// The node restarts under the proxy (btcd on simnet, which keeps its chain
// across a restart): the miners stay connected, idle while it is down, and
// find blocks again on the same chain after it; every block on the chain
// came through the proxy once.
func TestNodeRestartKeepsMinersMining(t *testing.T) {
	k, _ := btcec.PrivKeyFromBytes(chainhash.HashB([]byte("clminer proxy simnet")))
	payTo, err := address.NewAddressWitnessPubKeyHash(address.Hash160(k.PubKey().SerializeCompressed()), &chaincfg.SimNetParams)
	require.NoError(t, err)
	n := gbttest.StartSimnet(t, payTo.EncodeAddress())
	px := nodeProxy(t, n, payTo.EncodeAddress(), gbt.Options{})
	// On an easy chain nearly every share is a block, so every share
	// after the first on a tip, and every one while the node is down, is
	// stale: clminer's own client would leave such a pool after 5 rejects
	// in a row (an ASIC does not). The proxy never drops a miner for it.
	opts := stratum.Options{RejectStreak: 1 << 20}
	d1 := startDownstream(t, px.url(), "farm.rig1", opts, &slowDevice{Device: gputest.Device{ID: "a"}})
	d2 := startDownstream(t, px.url(), "farm.rig2", opts, &slowDevice{Device: gputest.Device{ID: "b"}})
	testkit.EventuallyWithin(t, 90*time.Second, func() bool { return n.Height(t) >= 3 }, "blocks before the restart")
	n.Restart(t)
	restarted := n.Height(t)
	require.GreaterOrEqual(t, restarted, int64(3), "simnet keeps the chain")
	testkit.EventuallyWithin(t, 90*time.Second, func() bool { return n.Height(t) >= restarted+3 }, "blocks after the node restarted")
	for _, d := range []*downstream{d1, d2} {
		assert.EqualValues(t, 1, d.client.Status()[0].Connects, "the miner stayed connected through the restart")
	}
	d1.shutdown()
	d2.shutdown()
	h := n.Height(t)
	sh := px.srv.Status().Shares
	assert.EqualValues(t, h, sh.BlocksAccepted, "every block on the chain came through the proxy, once: %+v", sh)
	assert.Zero(t, sh.BlocksRejected, "%+v", sh)
	assert.Zero(t, sh.Invalid+sh.Duplicate+sh.Rejected, "%+v", sh)
	want, err := txscript.PayToAddrScript(payTo)
	require.NoError(t, err)
	for i := int64(1); i <= h; i++ {
		assert.True(t, bytes.Equal(n.BlockAt(t, i).Payout, want), "block %d pays the address", i)
	}
}

// mineBlock finds a nonce whose header meets the network target.
func mineBlock(t *testing.T, p work.JobParams, en2 []byte) uint32 {
	t.Helper()
	j, err := work.NewJob(p)
	require.NoError(t, err)
	u, err := j.NewUnit(en2, j.Version, j.NTime)
	require.NoError(t, err)
	for n := uint32(0); n < 1<<20; n++ {
		if u.Check(n).MeetsNetwork {
			return n
		}
	}
	t.Fatal("no block found")
	return 0
}

// A template refresh while a miner holds a share of the older template:
// that share is still a block of its own template, accepted by btcd with
// that template's coinbase. A second block on the same tip is never sent:
// the miner is answered stale.
func TestNodeTemplateRefreshMidShare(t *testing.T) {
	w := gbttest.NewWallet("clminer proxy refresh wallet")
	n := gbttest.Start(t, w.P2PKH.EncodeAddress())
	n.MustCall(t, nil, "generate", 101)
	px := nodeProxy(t, n, regtestAddr, gbt.Options{RefreshInterval: 200 * time.Millisecond})
	s := handshake(t, dialRaw(t, px.srv.Addr()), "rig", false)
	old := s.job
	s.nextNewJob(t, old.JobID)
	require.False(t, s.job.CleanJobs, "a refresh on the same tip is not clean")
	require.NotEqual(t, old.Coinb1+old.Coinb2, s.job.Coinb1+s.job.Coinb2, "a new coinbase")
	h0 := n.Height(t)
	en2 := []byte{0, 0, 0, 0, 0, 1}
	nonce := mineBlock(t, old, en2)
	saved := s.job
	s.job = old
	rep := s.submit(t, "rig", en2, jobNTime(t, old), nonce, "")
	require.Equal(t, "true", string(rep.Result), "%s", rep.Error)
	require.Equal(t, h0+1, n.Height(t), "the older template's block is on the chain")
	b := n.BlockAt(t, h0+1)
	wantCB, err := hex.DecodeString(old.Coinb1 + s.en1 + hex.EncodeToString(en2) + old.Coinb2)
	require.NoError(t, err)
	var got bytes.Buffer
	require.NoError(t, b.Msg.Transactions[0].SerializeNoWitness(&got))
	assert.Equal(t, wantCB, got.Bytes(), "the block carries the coinbase of the job the share was found on")
	// Another block on the same tip, found on the newer template: stale.
	s.job = saved
	nonce = mineBlock(t, saved, en2)
	assert.Equal(t, wire.CodeJobNotFound, rejectCode(t, s.submit(t, "rig", en2, jobNTime(t, saved), nonce, "")))
	assert.Equal(t, h0+1, n.Height(t))
	st := px.srv.Status()
	assert.EqualValues(t, 1, st.Shares.BlocksAccepted)
	assert.EqualValues(t, 1, st.Shares.BlocksSubmitted)
	assert.EqualValues(t, 1, st.Miners[0].Shares.BlocksAccepted, "the block is the miner's")
}

// slowDevice pauses before each sweep: on regtest nearly every sweep finds
// a block at once.
type slowDevice struct{ gputest.Device }

func (d *slowDevice) Sweep(ctx context.Context, sw device.Sweep) (device.Result, error) {
	select {
	case <-ctx.Done():
		return device.Result{}, ctx.Err()
	case <-time.After(time.Duration(100+rand.IntN(400)) * time.Millisecond):
	}
	return d.Device.Sweep(ctx, sw)
}
