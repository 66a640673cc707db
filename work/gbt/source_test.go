package gbt

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/wire/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"clminer/internal/testkit"
	"clminer/work"
	"clminer/work/retry"
	"clminer/work/source"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Regtest addresses (the BIP 173/350 test vectors' programs, bcrt prefix).
const (
	regtestP2WPKH = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
	signetP2WPKH  = "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"
	mainP2PKH     = "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"
)

// testTx is a valid transaction serialisation; witness gives it a witness.
func testTx(seed byte, witness bool) (raw []byte, txid, wtxid [32]byte) {
	tx := wire.NewMsgTx(2)
	var prev [32]byte
	prev[0] = seed
	in := wire.NewTxIn(&wire.OutPoint{Hash: prev, Index: uint32(seed)}, []byte{0x51}, nil)
	if witness {
		in.SignatureScript = nil
		in.Witness = wire.TxWitness{bytes.Repeat([]byte{seed}, 72), bytes.Repeat([]byte{2}, 33)}
	}
	tx.AddTxIn(in)
	tx.AddTxOut(wire.NewTxOut(int64(seed)*1000, []byte{0x00, 0x14, seed, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}))
	var b bytes.Buffer
	_ = tx.Serialize(&b)
	return b.Bytes(), [32]byte(tx.TxHash()), [32]byte(tx.WitnessHash())
}

// coreTemplate is a template in Bitcoin Core's shape: the full commitment
// script, target, rules with the ! prefix, vbavailable, mintime.
func coreTemplate(txs int, commit bool) map[string]any {
	var list []any
	leaves := [][32]byte{{}}
	for i := range txs {
		raw, txid, wtxid := testTx(byte(i+1), i%2 == 1)
		leaves = append(leaves, wtxid)
		list = append(list, map[string]any{"data": hex.EncodeToString(raw), "txid": work.HashDisplay(txid), "hash": work.HashDisplay(wtxid), "fee": 1000})
	}
	root := work.MerkleRoot(leaves)
	c := work.Sha256d(append(root[:], make([]byte, 32)...))
	t := map[string]any{
		"capabilities": []string{"proposal"}, "version": 0x20000000, "rules": []string{"csv", "!segwit", "taproot"},
		"vbavailable": map[string]int{"testdummy": 28}, "vbrequired": 0,
		"previousblockhash": "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",
		"transactions":      list, "coinbaseaux": map[string]any{}, "coinbasevalue": 5000000000 + 1000*txs,
		"longpollid": "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e22061",
		"target":     "7fffff0000000000000000000000000000000000000000000000000000000000",
		"mintime":    1700000001, "mutable": []string{"time", "transactions", "prevblock"}, "noncerange": "00000000ffffffff",
		"sigoplimit": 80000, "sizelimit": 4000000, "weightlimit": 4000000, "curtime": 1700000000, "bits": "207fffff", "height": 1,
	}
	if commit {
		t["default_witness_commitment"] = "6a24aa21a9ed" + hex.EncodeToString(c[:])
	}
	return t
}

func TestCoreTemplateBecomesAJob(t *testing.T) {
	f := &fakeNode{user: "u", pass: "secret-pass", chain: "regtest", template: func() any { return coreTemplate(5, true) }}
	_, sink := startSource(t, f, regtestP2WPKH, Options{})
	j := sink.waitJob(t)
	assert.Equal(t, uint32(1700000001), j.NTime, "ntime is curtime raised to mintime")
	assert.Equal(t, uint32(0x207fffff), j.NBits)
	want, _ := work.NBitsTarget(0x207fffff)
	assert.Equal(t, want, j.ShareTarget, "shares are judged at the exact block target")
	assert.Equal(t, work.BIP320Mask&^(1<<28), j.RollingMask, "a bit a soft fork signals on is not rolled")
	assert.Len(t, j.Branch, 3, "5 txs + coinbase: 3 branch levels")
	en2 := make([]byte, extranonce2Size)
	cb, err := j.Coinbase(en2)
	require.NoError(t, err)
	var tx wire.MsgTx
	require.NoError(t, tx.DeserializeNoWitness(bytes.NewReader(cb)))
	require.Len(t, tx.TxOut, 2)
	assert.Equal(t, int64(5000005000), tx.TxOut[0].Value)
	assert.Equal(t, coreTemplate(5, true)["default_witness_commitment"], hex.EncodeToString(tx.TxOut[1].PkScript))
	assert.Equal(t, byte(0x51), tx.TxIn[0].SignatureScript[0], "BIP 34 height 1 is OP_1")
	assert.True(t, j.Entry.Live())
}

// A node that leaves default_witness_commitment out gets the commitment
// computed from the wtxids: the same script Bitcoin Core would send.
func TestMissingCommitmentIsComputed(t *testing.T) {
	with, err := parseTemplate(mustJSON(coreTemplate(7, true)))
	require.NoError(t, err)
	without, err := parseTemplate(mustJSON(coreTemplate(7, false)))
	require.NoError(t, err)
	assert.Equal(t, with.commit, without.commit)
}

func TestSignetAsksForTheSignetRule(t *testing.T) {
	f := &fakeNode{user: "u", pass: "secret-pass", chain: "signet", template: func() any { return coreTemplate(1, true) }}
	_, sink := startSource(t, f, signetP2WPKH, Options{})
	sink.waitJob(t)
	req := f.gbtRequests()[0]
	assert.ElementsMatch(t, []any{"segwit", "signet"}, req["rules"])
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// Every bad input is a clear error, no job, no panic, and a retry.
func TestBadNodesAndTemplates(t *testing.T) {
	edit := func(f func(m map[string]any)) func() any {
		return func() any { m := coreTemplate(2, true); f(m); return m }
	}
	hugeOnce := sync.OnceValue(func() any {
		m := coreTemplate(0, false)
		raw, _, _ := testTx(1, false)
		var txs []any
		for range MaxTemplateTxs + 1 {
			txs = append(txs, map[string]any{"data": hex.EncodeToString(raw)})
		}
		m["transactions"] = txs
		return json.RawMessage(mustJSON(m))
	})
	huge := func() any { return hugeOnce() }
	cases := []struct {
		name string
		node *fakeNode
		addr string
		want string
	}{
		{"wrong credentials", &fakeNode{user: "u", pass: "other", chain: "regtest", template: edit(func(map[string]any) {})}, regtestP2WPKH, "refused the RPC credentials"},
		{"initial block download", &fakeNode{user: "u", pass: "secret-pass", chain: "testnet4", ibd: true, template: edit(func(map[string]any) {})}, signetP2WPKH, "initial block download"},
		{"template says IBD", &fakeNode{user: "u", pass: "secret-pass", chain: "regtest", gbtErr: &RPCError{Code: -10, Message: "Bitcoin Core is in initial sync"}}, regtestP2WPKH, "initial block download"},
		{"address of another network", &fakeNode{user: "u", pass: "secret-pass", chain: "main", template: edit(func(map[string]any) {})}, regtestP2WPKH, "not an address of the node's network (main)"},
		{"unknown chain", &fakeNode{user: "u", pass: "secret-pass", chain: "liquidv1", template: edit(func(map[string]any) {})}, regtestP2WPKH, `chain "liquidv1"`},
		{"bad tx hex", &fakeNode{user: "u", pass: "secret-pass", chain: "regtest", template: edit(func(m map[string]any) {
			m["transactions"] = []any{map[string]any{"data": "zz"}}
		})}, regtestP2WPKH, "transactions[0].data"},
		{"not a transaction", &fakeNode{user: "u", pass: "secret-pass", chain: "regtest", template: edit(func(m map[string]any) {
			m["transactions"] = []any{map[string]any{"data": "0100"}}
		})}, regtestP2WPKH, "not a transaction"},
		{"bytes after a transaction", &fakeNode{user: "u", pass: "secret-pass", chain: "regtest", template: edit(func(m map[string]any) {
			raw, _, _ := testTx(1, false)
			m["transactions"] = []any{map[string]any{"data": hex.EncodeToString(raw) + "dead"}}
		})}, regtestP2WPKH, "bytes after the transaction"},
		{"huge transaction list", &fakeNode{user: "u", pass: "secret-pass", chain: "regtest", template: huge}, regtestP2WPKH, "over the limit"},
		{"bad prevhash", &fakeNode{user: "u", pass: "secret-pass", chain: "regtest", template: edit(func(m map[string]any) { m["previousblockhash"] = "00" })}, regtestP2WPKH, "previousblockhash"},
		{"target disagrees with bits", &fakeNode{user: "u", pass: "secret-pass", chain: "regtest", template: edit(func(m map[string]any) { m["target"] = strings.Repeat("0", 63) + "1" })}, regtestP2WPKH, "disagrees"},
		{"no coinbasevalue", &fakeNode{user: "u", pass: "secret-pass", chain: "regtest", template: edit(func(m map[string]any) { delete(m, "coinbasevalue") })}, regtestP2WPKH, "coinbasevalue"},
		{"zero height", &fakeNode{user: "u", pass: "secret-pass", chain: "regtest", template: edit(func(m map[string]any) { m["height"] = 0 })}, regtestP2WPKH, "height"},
		{"bad commitment", &fakeNode{user: "u", pass: "secret-pass", chain: "regtest", template: edit(func(m map[string]any) { m["default_witness_commitment"] = "6a" })}, regtestP2WPKH, "default_witness_commitment"},
		{"template is not an object", &fakeNode{user: "u", pass: "secret-pass", chain: "regtest", template: func() any { return []int{1} }}, regtestP2WPKH, "template"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, sink := startSource(t, tc.node, tc.addr, Options{})
			testkit.EventuallyWithin(t, 30*time.Second, func() bool { return s.Upstreams()[0].Failures >= 2 }, "retried with backoff")
			st := s.Upstreams()[0]
			assert.Contains(t, st.LastError, tc.want)
			assert.NotContains(t, st.LastError, "secret-pass")
			assert.NotContains(t, st.LastError, "\n", "one line")
			assert.Empty(t, sink.jobs, "no work from a bad node")
		})
	}
}

func TestUnreachableNode(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + l.Addr().String()
	l.Close()
	s, err := New(Config{Endpoint: Endpoint{URL: url, User: "u", Pass: "p"}, Address: regtestP2WPKH}, Options{Retry: retry.Backoff{Max: 20 * time.Millisecond}})
	require.NoError(t, err)
	sink := newRecSink()
	ctx, cancel := contextWithCancel()
	done := make(chan struct{})
	go func() { _ = s.Run(ctx, sink); close(done) }()
	e := sink.waitEvent(t, source.EventDisconnected)
	assert.Contains(t, e.Err.Error(), "connection refused")
	cancel()
	<-done
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Endpoint: Endpoint{URL: "http://u:pw@127.0.0.1:8332", User: "u"}, Address: regtestP2WPKH}, "not in the URL"},
		{Config{Endpoint: Endpoint{URL: "ftp://127.0.0.1:8332", User: "u"}, Address: regtestP2WPKH}, "want http://"},
		{Config{Endpoint: Endpoint{URL: "http://127.0.0.1:8332"}, Address: regtestP2WPKH}, "-u/-p"},
		{Config{Endpoint: Endpoint{URL: "http://127.0.0.1:8332", User: "u"}, Address: "bc1notanaddress"}, "not a Bitcoin address"},
		{Config{Endpoint: Endpoint{URL: "http://127.0.0.1:8332", User: "u"}}, "--coinbase-addr"},
	} {
		_, err := New(tc.cfg, Options{})
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
		assert.NotContains(t, err.Error(), "pw@")
	}
	assert.NoError(t, CheckAddress(mainP2PKH))
}

// btcd's shape: no rules field and the commitment as a bare hash; with the
// commitment left out too, witness transactions still get one computed.
func TestBtcdShapeWithoutRules(t *testing.T) {
	m := coreTemplate(4, true)
	delete(m, "rules")
	c := m["default_witness_commitment"].(string)
	m["default_witness_commitment"] = c[12:]
	bare, err := parseTemplate(mustJSON(m))
	require.NoError(t, err)
	delete(m, "default_witness_commitment")
	computed, err := parseTemplate(mustJSON(m))
	require.NoError(t, err)
	full, err := parseTemplate(mustJSON(coreTemplate(4, true)))
	require.NoError(t, err)
	assert.Equal(t, full.commit, bare.commit)
	assert.Equal(t, full.commit, computed.commit)
}

// A node that stops answering (its HTTP port still accepts) is left: every
// call has CallTimeout, and the template refresh calls the node even while
// a longpoll hangs, so the devices idle and the failover chain moves on
// within RefreshInterval + CallTimeout (30 + 15 s by default) of the last
// answer.
func TestHungNodeIsLeft(t *testing.T) {
	f := &fakeNode{user: "u", pass: "secret-pass", chain: "regtest", template: func() any { return coreTemplate(1, true) }}
	_, sink := startSource(t, f, regtestP2WPKH, Options{CallTimeout: 100 * time.Millisecond, RefreshInterval: 50 * time.Millisecond})
	sink.waitJob(t)
	f.mu.Lock()
	f.hang = true
	f.mu.Unlock()
	e := sink.waitEvent(t, source.EventDisconnected)
	require.ErrorIs(t, e.Err, context.DeadlineExceeded)
	select {
	case <-sink.nowork:
	case <-time.After(10 * time.Second):
		t.Fatal("the devices were not idled")
	}
}

func TestDefaultsLeaveAHungNodeWithin150s(t *testing.T) {
	var o Options
	o.defaults()
	assert.LessOrEqual(t, max(o.RefreshInterval, o.PollInterval)+o.CallTimeout, 150*time.Second)
}
