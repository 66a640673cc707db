package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/address/v2"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/stratum/pooltest"
	"clminer/work/gbt/gbttest"
)

// payouts are one address of each kind the issue names, on regtest.
func payouts(t *testing.T) map[string]address.Address {
	k, _ := btcec.PrivKeyFromBytes(chainhash.HashB([]byte("clminer payout")))
	pkh := address.Hash160(k.PubKey().SerializeCompressed())
	p2pkh, err := address.NewAddressPubKeyHash(pkh, gbttest.Params)
	require.NoError(t, err)
	p2wpkh, err := address.NewAddressWitnessPubKeyHash(pkh, gbttest.Params)
	require.NoError(t, err)
	tr := txscript.ComputeTaprootKeyNoScript(k.PubKey())
	p2tr, err := address.NewAddressTaproot(schnorr.SerializePubKey(tr), gbttest.Params)
	require.NoError(t, err)
	return map[string]address.Address{"P2PKH": p2pkh, "P2WPKH": p2wpkh, "P2TR": p2tr}
}

// Real blocks into a real node: btcd on regtest, a mempool with a legacy and
// a witness spend (so the merkle branch is not empty and the block must
// commit to witnesses), and `clminer mine` solo with each payout kind. The
// node's own consensus checks accept each block; getblock shows the
// coinbase paying the address and the mempool's transactions.
func TestSoloMiningIntoBtcd(t *testing.T) {
	w := gbttest.NewWallet("clminer solo test wallet")
	n := gbttest.Start(t, w.P2PKH.EncodeAddress())
	n.MustCall(t, nil, "generate", 110)
	for name, addr := range payouts(t) {
		t.Run(name, func(t *testing.T) {
			h0 := n.Height(t)
			// A fresh legacy spend and a witness spend of it, per run.
			c := n.Spend(t, w, n.Coinbase(t, h0-105), w.P2WPKH, 10_000)
			n.Spend(t, w, c, w.P2PKH, 10_000)
			var mempool []string
			n.MustCall(t, &mempool, "getrawmempool")
			require.Len(t, mempool, 2)

			target := h0 + 3
			blocks := 0
			lines, err := runMine(t, []string{"-o", n.URL, "-u", n.User, "-p", n.Pass, "--coinbase-addr", addr.EncodeAddress(),
				"--device", "cpu", "--status-interval", "0"},
				func(ev map[string]any, cancel func()) {
					if ev["event"] == "block.accepted" {
						if blocks++; blocks >= 3 {
							cancel()
						}
					}
				})
			require.NoError(t, err)
			log := strings.Join(lines, "\n")
			assert.NotContains(t, log, n.Pass, "the RPC password is never logged")
			assert.NotContains(t, log, `"event":"block.rejected"`)
			require.GreaterOrEqual(t, n.Height(t), target, "log:\n%s", log)

			want, err := txscript.PayToAddrScript(addr)
			require.NoError(t, err)
			// btcd serves its cached template until the tip moves (or a
			// minute passes), so the spends may land in the second block.
			var mined []string
			for h := h0 + 1; h <= target; h++ {
				b := n.BlockAt(t, h)
				mined = append(mined, b.Txids...)
				assert.True(t, bytes.Equal(b.Payout, want), "block %d coinbase pays %x, want %s (%x)", h, b.Payout, addr, want)
				assert.Contains(t, string(b.Msg.Transactions[0].TxIn[0].SignatureScript), "/clminer/", fmt.Sprint("block ", h))
			}
			for _, id := range mempool {
				assert.True(t, slices.Contains(mined, id), "mempool tx %s is in a mined block", id)
			}
		})
	}
}

// variantNode stands in front of btcd and rewrites its templates into
// another node's shape; submitblock still goes to btcd, whose consensus
// checks judge the result.
func variantNode(t *testing.T, n *gbttest.Node, rewrite func(tmpl map[string]any)) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req struct {
			Method string `json:"method"`
		}
		_ = json.Unmarshal(body, &req)
		out, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, n.URL, bytes.NewReader(body))
		out.SetBasicAuth(n.User, n.Pass)
		resp, err := http.DefaultClient.Do(out)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		reply, _ := io.ReadAll(resp.Body)
		if req.Method == "getblocktemplate" {
			var env map[string]any
			if json.Unmarshal(reply, &env) == nil {
				if tmpl, ok := env["result"].(map[string]any); ok {
					rewrite(tmpl)
					reply, _ = json.Marshal(env)
				}
			}
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(reply)
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections() // ends longpolls the miner left open
		srv.Close()
	})
	return srv.URL
}

// Bitcoin Core's template shape (the commitment as a full script, rules
// with the ! prefix, a target) and a node that omits the commitment (it is
// computed): blocks built from either must pass btcd's consensus checks,
// with witness transactions in the mempool so the commitment matters.
func TestSoloNodeVariantsIntoBtcd(t *testing.T) {
	w := gbttest.NewWallet("clminer solo variants wallet")
	n := gbttest.Start(t, w.P2PKH.EncodeAddress())
	n.MustCall(t, nil, "generate", 110)
	addr := payouts(t)["P2WPKH"]
	variants := map[string]func(m map[string]any){
		"bitcoin-core-shape": func(m map[string]any) {
			if c, ok := m["default_witness_commitment"].(string); ok && len(c) == 64 {
				m["default_witness_commitment"] = "6a24aa21a9ed" + c
			}
			m["rules"] = []string{"csv", "!segwit", "taproot"}
			delete(m, "coinbasetxn")
		},
		"no-commitment": func(m map[string]any) { delete(m, "default_witness_commitment") },
	}
	for name, rewrite := range variants {
		t.Run(name, func(t *testing.T) {
			url := variantNode(t, n, rewrite)
			h0 := n.Height(t)
			c := n.Spend(t, w, n.Coinbase(t, h0-105), w.P2WPKH, 10_000)
			witnessSpend := n.Spend(t, w, c, w.P2PKH, 10_000)
			blocks := 0
			lines, err := runMine(t, []string{"-o", url, "-u", "any", "-p", "any", "--coinbase-addr", addr.EncodeAddress(),
				"--device", "cpu", "--status-interval", "0"},
				func(ev map[string]any, cancel func()) {
					if ev["event"] == "block.accepted" {
						if blocks++; blocks >= 2 {
							cancel()
						}
					}
				})
			require.NoError(t, err)
			assert.NotContains(t, strings.Join(lines, "\n"), `"event":"block.rejected"`)
			var mined []string
			for h := h0 + 1; h <= h0+2; h++ {
				mined = append(mined, n.BlockAt(t, h).Txids...)
			}
			assert.Contains(t, mined, witnessSpend.Out.Hash.String(), "the witness spend was mined (the commitment was right)")
		})
	}
}

// A node as the solo backup of a pool: the pool dies, the same run mines
// blocks into the node, and shares never cross between them.
func TestSoloBackupOfAPool(t *testing.T) {
	w := gbttest.NewWallet("clminer solo backup wallet")
	n := gbttest.Start(t, w.P2PKH.EncodeAddress())
	n.MustCall(t, nil, "generate", 101)
	pool := pooltest.Start(t, pooltest.Config{Difficulty: 0.0001})
	h0 := n.Height(t)
	accepted, closed := 0, false
	_, err := runMine(t, []string{"-o", pool.URL(), "-u", "w", "-p", "x", "-o", n.URL, "-u", n.User, "-p", n.Pass,
		"--coinbase-addr", payouts(t)["P2TR"].EncodeAddress(), "--device", "cpu", "--status-interval", "0"},
		func(ev map[string]any, cancel func()) {
			switch ev["event"] {
			case "share.accepted":
				if ev["pool"] == pool.URL() {
					if accepted++; accepted == 3 {
						closed = true
						go pool.Close()
					}
				}
			case "block.accepted":
				// The node may feed the devices first, while the pool is
				// still subscribing: only a block after the pool died counts.
				if closed {
					cancel()
				}
			}
		})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, accepted, 3)
	assert.Greater(t, n.Height(t), h0)
	assert.Zero(t, pool.Stats().Rejected)
}

const regtestAddr = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"

// Solo settings from flags and the config file, and every bad one as a
// one-line error before any device opens.
func TestSoloSettings(t *testing.T) {
	r, err := runApp(t, "mine", "-o", "stratum+tcp://pool:3333", "-u", "w", "-p", "x", "-o", "http://127.0.0.1:18443", "-u", "rpc", "-p", "secret",
		"--coinbase-addr", regtestAddr)
	require.NoError(t, err)
	assert.Equal(t, map[int]nodeOpts{1: {address: regtestAddr}}, r.setup.nodes)

	cookie := filepath.Join(t.TempDir(), ".cookie")
	require.NoError(t, os.WriteFile(cookie, []byte("__cookie__:abc"), 0o600))
	r, err = runApp(t, "mine", "-o", "http://127.0.0.1:18443", "--rpc-cookie", cookie, "--coinbase-addr", regtestAddr)
	require.NoError(t, err, "a node with a cookie needs no -u")
	assert.Equal(t, cookie, r.setup.nodes[0].cookie)

	cfg := writeConfig(t, "pools:\n  - url: stratum+tcp://pool:3333\n    user: w\n  - url: http://127.0.0.1:18443\n    rpc-cookie: "+cookie+"\n    coinbase-addr: "+regtestAddr+"\n")
	r, err = runApp(t, "mine", "--config", cfg)
	require.NoError(t, err)
	assert.Equal(t, map[int]nodeOpts{1: {address: regtestAddr, cookie: cookie}}, r.setup.nodes)

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-o", "http://127.0.0.1:18443", "-u", "rpc", "-p", "p"}, "--coinbase-addr"},
		{[]string{"-o", "http://127.0.0.1:18443", "-u", "rpc", "--coinbase-addr", "bc1qnotanaddress"}, "not a Bitcoin address"},
		{[]string{"-o", "http://rpc:secret@127.0.0.1:18443", "-u", "rpc", "--coinbase-addr", regtestAddr}, "not in the URL"},
		{[]string{"-o", "stratum+tcp://pool:3333", "-u", "w", "--coinbase-addr", regtestAddr}, "--coinbase-addr is for solo mining"},
		{[]string{"-o", "http://127.0.0.1:18443", "-u", "", "--coinbase-addr", regtestAddr}, "RPC user and password"},
		{[]string{"-o", "http://127.0.0.1:18443", "--rpc-cookie", "/nonexistent/.cookie", "--coinbase-addr", regtestAddr}, "--rpc-cookie"},
		{[]string{"-o", "stratum+tcp://pool:3333", "-u", "w", "--rpc-cookie", "/c"}, "--rpc-cookie is for solo mining"},
		{[]string{"-o", "http://u:secret@127.0.0.1:x/", "-u", "rpc", "--coinbase-addr", regtestAddr}, "not in the URL"},
		{[]string{"-o", "http://127.0.0.1:x/", "-u", "rpc", "--coinbase-addr", regtestAddr}, "node URL"},
	} {
		_, err := runApp(t, append([]string{"mine"}, tc.args...)...)
		require.Error(t, err, "%v", tc.args)
		assert.Contains(t, err.Error(), tc.want)
		assert.NotContains(t, err.Error(), "secret")
		assert.NotContains(t, err.Error(), "\n")
	}
}
