package gbt

import (
	"bytes"
	"encoding/hex"
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
	f := &fakeNode{user: "u", pass: "secret-pass", chain: "regtest", template: func() any { return coreTemplate(3, true) }}
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
	// After the verdict a fresh template is fetched and mined.
	j2 := sink.waitJob(t)
	assert.NotEqual(t, j.ID, j2.ID)
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
		s, sink := startSource(t, f, regtestP2WPKH, Options{})
		j := sink.waitJob(t)
		u, err := j.Entry.Next(j.Job, j.RollingMask)
		require.NoError(t, err)
		r := wait(t, send(s, j, u, blockNonces(u, 1)[0]))
		assert.Equal(t, tc.kind, r.Kind)
		assert.Equal(t, tc.reason, r.Reason)
		if tc.kind == source.Rejected {
			assert.Equal(t, uint64(1), s.Upstreams()[0].Node.RejectReasons[tc.reason])
			// A rejected block does not stop mining on the tip: the next
			// template's blocks can be sent.
			j2 := sink.waitJob(t)
			u2, err := j2.Entry.Next(j2.Job, j2.RollingMask)
			require.NoError(t, err)
			r2 := wait(t, send(s, j2, u2, blockNonces(u2, 1)[0]))
			assert.Equal(t, source.Rejected, r2.Kind)
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
