package gbt

import (
	"bytes"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/wire/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/work"
	"clminer/work/source"
)

// blockNonces returns n nonces of unit u that meet the regtest target.
func blockNonces(u *work.Unit, n int) []uint32 {
	var out []uint32
	for nonce := uint32(0); len(out) < n; nonce++ {
		if u.Check(nonce).MeetsNetwork {
			out = append(out, nonce)
		}
	}
	return out
}

func send(s *Source, j *source.Job, u *work.Unit, nonce uint32) chan source.Reply {
	ch := make(chan source.Reply, 1)
	s.Send(source.Share{Job: j, Unit: u, Nonce: nonce}, func(r source.Reply) { ch <- r })
	return ch
}

func wait(t *testing.T, ch chan source.Reply) source.Reply {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no reply")
		return source.Reply{}
	}
}

// The first block on a tip stops the tip's work: the ledger entry dies (the
// miner counts later candidates stale), a second candidate is not sent,
// and the block the node gets is the header hashed plus the coinbase with
// its witness reserved value plus the template's transactions.
func TestOneBlockPerTip(t *testing.T) {
	f := &fakeNode{user: "u", pass: "secret-pass", chain: "regtest", template: func() any { return coreTemplate(3, true) }, acceptMoves: true}
	s, sink := startSource(t, f, regtestP2WPKH, Options{})
	j := sink.waitJob(t)
	u, err := j.Entry.Next(j.Job, j.RollingMask)
	require.NoError(t, err)
	ns := blockNonces(u, 2)
	first := send(s, j, u, ns[0])
	second := send(s, j, u, ns[1])
	r2 := wait(t, second)
	assert.Equal(t, source.NotSent, r2.Kind, r2.Reason)
	assert.False(t, j.Entry.Live(), "the tip's other work is stale at once")
	r1 := wait(t, first)
	assert.Equal(t, source.Accepted, r1.Kind, r1.Reason)

	f.mu.Lock()
	require.Len(t, f.submitted, 1, "one block per tip")
	raw, err := hex.DecodeString(f.submitted[0])
	f.mu.Unlock()
	require.NoError(t, err)
	var b wire.MsgBlock
	require.NoError(t, b.Deserialize(bytes.NewReader(raw)))
	h := u.HeaderFor(ns[0])
	var hb bytes.Buffer
	require.NoError(t, b.Header.Serialize(&hb))
	assert.Equal(t, h[:], hb.Bytes())
	require.Len(t, b.Transactions, 4)
	assert.Equal(t, wire.TxWitness{make([]byte, 32)}, b.Transactions[0].TxIn[0].Witness, "BIP 141 reserved value")
	for i := 1; i < 4; i++ {
		want, _, _ := testTx(byte(i), i%2 == 0)
		var got bytes.Buffer
		require.NoError(t, b.Transactions[i].Serialize(&got))
		assert.Equal(t, want, got.Bytes(), "tx %d as the template gave it", i)
	}
	st := s.Upstreams()[0]
	assert.Equal(t, uint64(1), st.Node.BlocksSubmitted)
	assert.Equal(t, uint64(1), st.Node.BlocksAccepted)
	// After the verdict a fresh template is fetched and mined, on the new
	// tip: the block just accepted.
	j2 := sink.waitJob(t)
	assert.NotEqual(t, j.ID, j2.ID)
	assert.Equal(t, work.Sha256d(h[:]), j2.PrevHash)
}

// Both reply conventions are read: BIP 22's null or reason, btcd's
// "rejected: ..." string, and an RPC error object.
func TestSubmitblockReplies(t *testing.T) {
	for _, tc := range []struct {
		res    any
		kind   source.ReplyKind
		reason string
	}{
		{nil, source.Accepted, ""},
		{"high-hash", source.Rejected, "high-hash"},
		{"duplicate", source.Rejected, "duplicate"},
		{"rejected: block timestamp is too early", source.Rejected, "rejected: block timestamp is too early"},
	} {
		f := &fakeNode{user: "u", pass: "secret-pass", chain: "regtest", template: func() any { return coreTemplate(1, true) }, submitRes: tc.res}
		s, sink := startSource(t, f, regtestP2WPKH, Options{RefreshInterval: 20 * time.Millisecond})
		j := sink.waitJob(t)
		u, err := j.Entry.Next(j.Job, j.RollingMask)
		require.NoError(t, err)
		r := wait(t, send(s, j, u, blockNonces(u, 1)[0]))
		assert.Equal(t, tc.kind, r.Kind)
		assert.Equal(t, tc.reason, r.Reason)
		if tc.kind == source.Rejected {
			assert.Equal(t, uint64(1), s.Upstreams()[0].Node.RejectReasons[tc.reason])
			// A rejected block spends its tip too (one block per tip,
			// whatever the verdict): the devices idle until the node has
			// a new tip, and its template's blocks can be sent.
			// Jobs numbered up to now may have been published before the
			// block was sent; none after it.
			s.mu.Lock()
			last := s.jobSeq
			s.mu.Unlock()
			deadline := time.After(100 * time.Millisecond) // five template refreshes
		idle:
			for {
				select {
				case j2 := <-sink.jobs:
					if seq, _ := strconv.ParseUint(strings.TrimPrefix(j2.ID, "t"), 10, 64); seq > last {
						t.Fatalf("mining resumed on the tip the rejected block was sent on (job %s)", j2.ID)
					}
				case <-deadline:
					break idle
				}
			}
			f.mu.Lock()
			f.best, f.acceptMoves = "1f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206", true // a block from elsewhere
			f.mu.Unlock()
			j2 := sink.waitJob(t)
			require.NotEqual(t, j.PrevHash, j2.PrevHash)
			u2, err := j2.Entry.Next(j2.Job, j2.RollingMask)
			require.NoError(t, err)
			r2 := wait(t, send(s, j2, u2, blockNonces(u2, 1)[0]))
			assert.Equal(t, source.Rejected, r2.Kind, "the new tip's block is sent")
		}
	}
}

// A candidate that fails the host's own block check is never sent.
func TestHostCheckedBeforeSubmit(t *testing.T) {
	f := &fakeNode{user: "u", pass: "secret-pass", chain: "regtest", template: func() any { return coreTemplate(1, true) }}
	s, sink := startSource(t, f, regtestP2WPKH, Options{})
	j := sink.waitJob(t)
	u, err := j.Entry.Next(j.Job, j.RollingMask)
	require.NoError(t, err)
	var bad uint32
	for n := uint32(0); ; n++ {
		if !u.Check(n).MeetsNetwork {
			bad = n
			break
		}
	}
	r := wait(t, send(s, j, u, bad))
	assert.Equal(t, source.NotSent, r.Kind)
	assert.Contains(t, r.Reason, "host check")
	f.mu.Lock()
	assert.Empty(t, f.submitted)
	f.mu.Unlock()
}

// A template refreshed on the same tip is new work, not the old work again,
// and the older job stays live: its blocks are still valid on this tip.
func TestRefreshOnSameTipIsNewWork(t *testing.T) {
	f := &fakeNode{user: "u", pass: "secret-pass", chain: "regtest", template: func() any { return coreTemplate(2, true) }}
	_, sink := startSource(t, f, regtestP2WPKH, Options{RefreshInterval: 20 * time.Millisecond})
	j1, j2 := sink.waitJob(t), sink.waitJob(t)
	assert.False(t, j2.Clean, "same tip")
	u1, err := j1.Entry.Next(j1.Job, j1.RollingMask)
	require.NoError(t, err)
	u2, err := j2.Entry.Next(j2.Job, j2.RollingMask)
	require.NoError(t, err)
	assert.NotEqual(t, u1.Header[36:68], u2.Header[36:68], "different merkle roots")
	assert.True(t, j1.Entry.Live())
}

// A block from elsewhere moves the tip: with no longpoll on offer, the best
// block poll notices, the old tip's jobs die at once (their candidates are
// stale) and a clean job on the new tip follows.
func TestNewTipFromElsewhere(t *testing.T) {
	f := &fakeNode{user: "u", pass: "secret-pass", chain: "regtest"}
	prev := "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
	f.best = prev
	f.template = func() any {
		m := coreTemplate(1, true)
		delete(m, "longpollid")
		m["previousblockhash"] = f.best
		return m
	}
	_, sink := startSource(t, f, regtestP2WPKH, Options{})
	j1 := sink.waitJob(t)
	f.mu.Lock()
	f.best = "1f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
	f.mu.Unlock()
	var j2 *source.Job
	for j2 = sink.waitJob(t); !j2.Clean; j2 = sink.waitJob(t) {
	}
	assert.Equal(t, f.best, work.HashDisplay(j2.PrevHash))
	assert.False(t, j1.Entry.Live(), "the old tip's work is stale")
	assert.True(t, j2.Entry.Live())
}

// A node whose RPC queue is full (HTTP 503) never read the block: it is
// sent again, and counted once.
func TestBusyNodeGetsTheBlockAgain(t *testing.T) {
	f := &fakeNode{user: "u", pass: "secret-pass", chain: "regtest", template: func() any { return coreTemplate(1, true) }, busySubmits: 2}
	s, sink := startSource(t, f, regtestP2WPKH, Options{})
	j := sink.waitJob(t)
	u, err := j.Entry.Next(j.Job, j.RollingMask)
	require.NoError(t, err)
	r := wait(t, send(s, j, u, blockNonces(u, 1)[0]))
	assert.Equal(t, source.Accepted, r.Kind, r.Reason)
	f.mu.Lock()
	assert.Len(t, f.submitted, 1, "the refused attempts were never read")
	f.mu.Unlock()
	assert.Equal(t, uint64(1), s.Upstreams()[0].Node.BlocksSubmitted)
}

// Once a block on a tip is sent, no other block on that tip is ever sent,
// whatever the verdict. Two candidates race on one tip: the second is
// found before the node's verdict on the first but handed in after it
// (it waited in the miner's pipeline). Against Bitcoin Core it was sent,
// answered "inconclusive", and left the node with a stale second tip of
// our own. The node here keeps the tip after the verdict, as a node that
// rejected the block does and as Core does until the next template is
// fetched.
func TestNoSecondBlockOnASentTip(t *testing.T) {
	for _, verdict := range []any{nil, "inconclusive", "high-hash"} {
		gate := make(chan struct{})
		f := &fakeNode{user: "u", pass: "secret-pass", chain: "regtest", template: func() any { return coreTemplate(1, true) },
			submitRes: verdict, submitSeen: make(chan string, 4), submitGate: gate}
		s, sink := startSource(t, f, regtestP2WPKH, Options{RefreshInterval: 20 * time.Millisecond})
		j := sink.waitJob(t)
		u, err := j.Entry.Next(j.Job, j.RollingMask)
		require.NoError(t, err)
		ns := blockNonces(u, 2)
		first := send(s, j, u, ns[0])
		<-f.submitSeen // the node has the first block; its verdict waits
		close(gate)
		r1 := wait(t, first)
		second := wait(t, send(s, j, u, ns[1]))
		assert.Equal(t, source.NotSent, second.Kind, "verdict %v: %s", verdict, second.Reason)
		// Templates refreshed on the same tip are not mined either: their
		// blocks would compete with the one sent.
		select {
		case j2 := <-sink.jobs:
			if j2.PrevHash == j.PrevHash {
				u2, err := j2.Entry.Next(j2.Job, j2.RollingMask)
				require.NoError(t, err)
				r := wait(t, send(s, j2, u2, blockNonces(u2, 1)[0]))
				assert.Equal(t, source.NotSent, r.Kind, "verdict %v: a refreshed template's block", verdict)
			}
		case <-time.After(200 * time.Millisecond): // ten refreshes
		}
		f.mu.Lock()
		assert.Equal(t, 1, len(f.submitted), "verdict %v (%v): one block per tip", verdict, r1.Kind)
		f.mu.Unlock()
		assert.Equal(t, uint64(1), s.Upstreams()[0].Node.BlocksSubmitted)
	}
}

// A candidate that fails the host's own check (here a nonce whose hash
// misses the network target) never reaches the node, so it does not spend
// the tip: the next good block on it is still sent.
func TestUnsentBlockDoesNotSpendTheTip(t *testing.T) {
	f := &fakeNode{user: "u", pass: "secret-pass", chain: "regtest", template: func() any { return coreTemplate(1, true) },
		submitSeen: make(chan string, 4)}
	s, sink := startSource(t, f, regtestP2WPKH, Options{})
	j := sink.waitJob(t)
	u, err := j.Entry.Next(j.Job, j.RollingMask)
	require.NoError(t, err)
	bad := uint32(0)
	for u.Check(bad).MeetsNetwork {
		bad++
	}
	r := wait(t, send(s, j, u, bad))
	require.Equal(t, source.NotSent, r.Kind, r.Reason)
	assert.Contains(t, r.Reason, "host check")
	good := wait(t, send(s, j, u, blockNonces(u, 1)[0]))
	assert.Equal(t, source.Accepted, good.Kind, good.Reason)
	f.mu.Lock()
	assert.Len(t, f.submitted, 1, "the good block was sent")
	f.mu.Unlock()
	assert.Equal(t, uint64(1), s.Upstreams()[0].Node.BlocksSubmitted, "only a block the node was sent counts as submitted")
}
