package main

import (
	"bytes"
	"fmt"
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
