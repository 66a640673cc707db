// Package gbttest runs a real node for tests: btcd on regtest, on loopback,
// with a temporary data directory and no peers. btcd answers
// getblocktemplate and submitblock with full consensus checks, so a block
// it accepts is a valid block, and its "generate" RPC matures coinbases for
// the spends that fill the mempool.
//
// Tests skip when btcd is not installed, unless CLMINER_REQUIRE_BTCD=1 (CI
// installs it, so there the solo tests always run).
package gbttest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/btcsuite/btcd/address/v2"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"
)

// Params are regtest's, which btcd and Bitcoin Core share.
var Params = &chaincfg.RegressionNetParams

// Node is a running btcd.
type Node struct {
	URL, User, Pass string
	Dir             string
	bin             string
	args            []string
	cmd             *exec.Cmd
	exited          chan struct{}
	logf            *os.File
	http            *http.Client
}

// btcdPath finds the btcd binary: $BTCD, PATH, then $(go env GOPATH)/bin.
func btcdPath() string {
	if p := os.Getenv("BTCD"); p != "" {
		return p
	}
	if p, err := exec.LookPath("btcd"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(string(bytes.TrimSpace(out)), "bin", "btcd")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Start runs btcd on regtest with miningAddr for its own generate RPC and
// waits until its RPC answers.
func Start(t testing.TB, miningAddr string) *Node {
	t.Helper()
	return start(t, miningAddr, "--regtest")
}

// StartSimnet runs btcd on simnet (SimNetParams' addresses): a chain as
// easy as regtest's that btcd keeps across a Restart (it wipes regtest's
// database at every start).
func StartSimnet(t testing.TB, miningAddr string) *Node {
	t.Helper()
	return start(t, miningAddr, "--simnet")
}

func start(t testing.TB, miningAddr, net string) *Node {
	t.Helper()
	bin := btcdPath()
	if bin == "" {
		if os.Getenv("CLMINER_REQUIRE_BTCD") == "1" {
			t.Fatal("btcd is not installed and CLMINER_REQUIRE_BTCD=1: go install github.com/btcsuite/btcd@v0.26.2")
		}
		t.Skip("btcd not installed (go install github.com/btcsuite/btcd@v0.26.2); CI runs this")
	}
	dir := t.TempDir()
	port := freePort(t)
	n := &Node{URL: "http://127.0.0.1:" + strconv.Itoa(port), User: "clminer", Pass: "test-pass-" + strconv.Itoa(port), Dir: dir,
		http: &http.Client{Timeout: 30 * time.Second}, bin: bin}
	n.args = []string{net, "--datadir=" + filepath.Join(dir, "data"), "--logdir=" + filepath.Join(dir, "logs"),
		"--configfile=" + filepath.Join(dir, "btcd.conf"), "--notls", "--nolisten", "--rpclisten=127.0.0.1:" + strconv.Itoa(port),
		"--rpcuser=" + n.User, "--rpcpass=" + n.Pass, "--miningaddr=" + miningAddr, "--debuglevel=warn",
		"--txindex", "--blockminsize=0", "--blockprioritysize=0"}
	if err := os.WriteFile(filepath.Join(dir, "btcd.conf"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "btcd.out"))
	if err != nil {
		t.Fatal(err)
	}
	n.logf = logf
	t.Cleanup(func() {
		n.kill()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "btcd.out"))
			t.Logf("btcd output:\n%s", tail(b, 4000))
		}
	})
	n.run(t)
	return n
}

// kill stops the running btcd and waits for it.
func (n *Node) kill() {
	if n.cmd != nil {
		_ = n.cmd.Process.Kill()
		<-n.exited
		n.cmd = nil
	}
}

// Restart stops btcd as an operator does (SIGINT: it flushes its chain)
// and starts it again on the same data directory and RPC address. Its
// chain is kept; RPC is down in between; btcd does not keep its mempool.
func (n *Node) Restart(t testing.TB) {
	t.Helper()
	if n.cmd != nil {
		_ = n.cmd.Process.Signal(os.Interrupt)
		select {
		case <-n.exited:
			n.cmd = nil
		case <-time.After(30 * time.Second):
			t.Log("btcd did not stop on SIGINT within 30 s; killing it")
			n.kill()
		}
	}
	n.run(t)
}

// run starts btcd and waits until its RPC answers.
func (n *Node) run(t testing.TB) {
	t.Helper()
	n.cmd = exec.Command(n.bin, n.args...)
	n.cmd.Stdout, n.cmd.Stderr = n.logf, n.logf
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("start btcd: %v", err)
	}
	exited := make(chan struct{})
	n.exited = exited
	cmd := n.cmd
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var h int64
		if err := n.Call(&h, "getblockcount"); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("btcd RPC did not come up: %v", err)
		}
		select {
		case <-exited:
			t.Fatal("btcd exited at start")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Call runs one RPC; result may be nil.
func (n *Node) Call(result any, method string, params ...any) error {
	if params == nil {
		params = []any{}
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "1.0", "id": 1, "method": method, "params": params})
	req, _ := http.NewRequest(http.MethodPost, n.URL, bytes.NewReader(body))
	req.SetBasicAuth(n.User, n.Pass)
	resp, err := n.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var env struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return fmt.Errorf("%s: HTTP %d: %v", method, resp.StatusCode, err)
	}
	if env.Error != nil {
		return fmt.Errorf("%s: %d %s", method, env.Error.Code, env.Error.Message)
	}
	if result != nil {
		return json.Unmarshal(env.Result, result)
	}
	return nil
}

// MustCall is Call that fails the test.
func (n *Node) MustCall(t testing.TB, result any, method string, params ...any) {
	t.Helper()
	if err := n.Call(result, method, params...); err != nil {
		t.Fatal(err)
	}
}

// Height is the node's block count.
func (n *Node) Height(t testing.TB) int64 {
	var h int64
	n.MustCall(t, &h, "getblockcount")
	return h
}

// Wallet is a key the tests own: coinbases from generate pay its P2PKH
// address, and Spend signs transactions with it.
type Wallet struct {
	Key    *btcec.PrivateKey
	P2PKH  address.Address
	P2WPKH address.Address
}

// NewWallet derives a key from seed.
func NewWallet(seed string) *Wallet {
	h := chainhash.HashB([]byte(seed))
	k, _ := btcec.PrivKeyFromBytes(h)
	pkh := address.Hash160(k.PubKey().SerializeCompressed())
	a1, _ := address.NewAddressPubKeyHash(pkh, Params)
	a2, _ := address.NewAddressWitnessPubKeyHash(pkh, Params)
	return &Wallet{Key: k, P2PKH: a1, P2WPKH: a2}
}

// Coin is a spendable output.
type Coin struct {
	Out    wire.OutPoint
	Value  int64
	Script []byte
}

// Coinbase returns the coinbase output of the block at height h.
func (n *Node) Coinbase(t testing.TB, h int64) Coin {
	t.Helper()
	cb := n.BlockAt(t, h).Msg.Transactions[0]
	return Coin{Out: wire.OutPoint{Hash: cb.TxHash(), Index: 0}, Value: cb.TxOut[0].Value, Script: cb.TxOut[0].PkScript}
}

// Spend builds and signs a transaction spending in (P2PKH or P2WPKH of w)
// into outputs paying to, minus fee, and sends it to the node's mempool. It
// returns the coin it created (output 0).
func (n *Node) Spend(t testing.TB, w *Wallet, in Coin, to address.Address, fee int64) Coin {
	t.Helper()
	pk, err := txscript.PayToAddrScript(to)
	if err != nil {
		t.Fatal(err)
	}
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(&in.Out, nil, nil))
	tx.AddTxOut(wire.NewTxOut(in.Value-fee, pk))
	fetcher := txscript.NewCannedPrevOutputFetcher(in.Script, in.Value)
	switch {
	case txscript.IsPayToWitnessPubKeyHash(in.Script):
		sigHashes := txscript.NewTxSigHashes(tx, fetcher)
		wit, err := txscript.WitnessSignature(tx, sigHashes, 0, in.Value, in.Script, txscript.SigHashAll, w.Key, true)
		if err != nil {
			t.Fatal(err)
		}
		tx.TxIn[0].Witness = wit
	default:
		sig, err := txscript.SignatureScript(tx, 0, in.Script, txscript.SigHashAll, w.Key, true)
		if err != nil {
			t.Fatal(err)
		}
		tx.TxIn[0].SignatureScript = sig
	}
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	var txid string
	n.MustCall(t, &txid, "sendrawtransaction", hex.EncodeToString(buf.Bytes()))
	return Coin{Out: wire.OutPoint{Hash: tx.TxHash(), Index: 0}, Value: in.Value - fee, Script: pk}
}

// Block is the part of getblock (verbosity 2-like, from the raw block) the
// tests check.
type Block struct {
	Height int64
	Txids  []string
	// Payout is the first output script of the coinbase.
	Payout []byte
	Msg    *wire.MsgBlock
}

// BlockAt decodes the block at height h.
func (n *Node) BlockAt(t testing.TB, h int64) Block {
	t.Helper()
	var hash string
	n.MustCall(t, &hash, "getblockhash", h)
	var raw string
	n.MustCall(t, &raw, "getblock", hash, 0)
	b, err := hex.DecodeString(raw)
	if err != nil {
		t.Fatal(err)
	}
	var blk wire.MsgBlock
	if err := blk.Deserialize(bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	out := Block{Height: h, Payout: blk.Transactions[0].TxOut[0].PkScript, Msg: &blk}
	for _, tx := range blk.Transactions {
		out.Txids = append(out.Txids, tx.TxHash().String())
	}
	return out
}
