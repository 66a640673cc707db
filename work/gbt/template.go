package gbt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"

	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"clminer/work"
)

// Limits on a template. A 4 MWU block holds at most about 16,700
// transactions (the smallest is 60 bytes) and 4 MB of them.
const (
	MaxTemplateTxs   = 25000
	MaxTemplateBytes = 4_000_000
	// maxBlockReward bounds coinbasevalue: 21 million BTC in satoshis.
	maxBlockReward = 21_000_000 * 100_000_000
)

// Extranonce layout in the coinbase scriptSig: 4 bytes that tell rigs on
// the same node and address apart (random per source), then the counter:
// 4 bytes for a miner's devices, up to MaxExtranonce2Size for a proxy that
// carves each downstream miner's share out of it (Options.Extranonce2Size).
const (
	extranonce1Size = 4
	extranonce2Size = 4
	// MaxExtranonce2Size keeps the scriptSig within its 100 bytes with room
	// to spare (height 4, template number 4, extranonce1 4, tag 10).
	MaxExtranonce2Size = 16
)

// coinbaseTag is pushed after the extranonce, so blocks say who mined them.
var coinbaseTag = []byte("/clminer/")

// rawTemplate is the getblocktemplate result as BIP 22/23/9/141 name it;
// Bitcoin Core and btcd both send these fields.
type rawTemplate struct {
	Version                  int64           `json:"version"`
	Rules                    []string        `json:"rules"`
	VBAvailable              map[string]int  `json:"vbavailable"`
	PreviousBlockHash        string          `json:"previousblockhash"`
	Transactions             []rawTemplateTx `json:"transactions"`
	CoinbaseValue            *int64          `json:"coinbasevalue"`
	LongPollID               string          `json:"longpollid"`
	Target                   string          `json:"target"`
	MinTime                  int64           `json:"mintime"`
	CurTime                  int64           `json:"curtime"`
	Bits                     string          `json:"bits"`
	Height                   int64           `json:"height"`
	DefaultWitnessCommitment string          `json:"default_witness_commitment"`
}

type rawTemplateTx struct {
	Data string `json:"data"`
}

// template is a validated block template.
type template struct {
	height   int64
	prev     [32]byte // internal byte order
	version  uint32
	bits     uint32
	ntime    uint32
	target   work.Target
	value    int64
	txs      [][]byte
	txids    [][32]byte
	segwit   bool   // the segwit rule is active: commit to witnesses
	commit   []byte // witness commitment output script, nil when none
	rollMask uint32 // BIP 320 bits free to roll
	longpoll string
}

// parseTemplate validates a getblocktemplate result. Every error names the
// field; nothing here can panic on any JSON the node sends.
func parseTemplate(raw json.RawMessage) (*template, error) {
	var r rawTemplate
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("template: %v", err)
	}
	t := &template{height: r.Height, longpoll: r.LongPollID}
	if len(t.longpoll) > 1024 {
		t.longpoll = ""
	}
	if r.Height < 1 || r.Height > math.MaxInt32 {
		return nil, fmt.Errorf("template: height %d is out of range", r.Height)
	}
	if r.Version < 1 || r.Version > math.MaxUint32 {
		return nil, fmt.Errorf("template: version %d is out of range", r.Version)
	}
	t.version = uint32(r.Version)
	var err error
	if t.prev, err = work.DisplayHashToInternal("template previousblockhash", r.PreviousBlockHash); err != nil {
		return nil, err
	}
	if t.bits, err = work.ParseUint32Hex("template bits", r.Bits); err != nil {
		return nil, err
	}
	if t.target, err = work.NBitsTarget(t.bits); err != nil {
		return nil, fmt.Errorf("template bits: %v", err)
	}
	if r.Target != "" {
		tt, err := work.ParseTarget("template target", r.Target)
		if err != nil {
			return nil, err
		}
		if tt != t.target {
			return nil, fmt.Errorf("template: target %s disagrees with bits %08x", r.Target, t.bits)
		}
	}
	if r.CurTime <= 0 || r.CurTime > math.MaxUint32 {
		return nil, fmt.Errorf("template: curtime %d is out of range", r.CurTime)
	}
	t.ntime = uint32(max(r.CurTime, min(r.MinTime, math.MaxUint32)))
	if r.CoinbaseValue == nil {
		return nil, errors.New("template: no coinbasevalue (a node that only offers coinbasetxn is not supported)")
	}
	if *r.CoinbaseValue < 0 || *r.CoinbaseValue > maxBlockReward {
		return nil, fmt.Errorf("template: coinbasevalue %d is out of range", *r.CoinbaseValue)
	}
	t.value = *r.CoinbaseValue
	if len(r.Transactions) > MaxTemplateTxs {
		return nil, fmt.Errorf("template: %d transactions is over the limit of %d", len(r.Transactions), MaxTemplateTxs)
	}
	total := 0
	hasWitness := false
	for i, tx := range r.Transactions {
		b, err := work.HexBytes(fmt.Sprintf("template transactions[%d].data", i), tx.Data, MaxTemplateBytes)
		if err != nil {
			return nil, err
		}
		if total += len(b); total > MaxTemplateBytes {
			return nil, fmt.Errorf("template: transactions are over %d bytes", MaxTemplateBytes)
		}
		var m wire.MsgTx
		rd := bytes.NewReader(b)
		if err := m.Deserialize(rd); err != nil {
			return nil, fmt.Errorf("template transactions[%d]: not a transaction: %v", i, err)
		}
		if rd.Len() != 0 {
			// The block carries these bytes as given: trailing ones would
			// make every block on this template invalid.
			return nil, fmt.Errorf("template transactions[%d]: %d bytes after the transaction", i, rd.Len())
		}
		if m.HasWitness() {
			hasWitness = true
		}
		t.txs = append(t.txs, b)
		t.txids = append(t.txids, [32]byte(m.TxHash()))
	}
	t.segwit = slices.ContainsFunc(r.Rules, func(s string) bool { return strings.TrimPrefix(s, "!") == "segwit" })
	switch {
	case r.DefaultWitnessCommitment != "":
		c, err := work.HexBytes("template default_witness_commitment", r.DefaultWitnessCommitment, 80)
		if err != nil {
			return nil, err
		}
		switch {
		case len(c) == 32:
			// btcd sends the commitment hash alone; Bitcoin Core the script.
			t.commit = append(slices.Clone(witnessMagic), c...)
		case len(c) >= 38 && bytes.Equal(c[:6], witnessMagic):
			t.commit = c
		default:
			return nil, errors.New("template: default_witness_commitment is neither a BIP 141 commitment script nor its 32-byte hash")
		}
	case t.segwit || hasWitness:
		// btcd reports no rules at all, so witness data is the other sign
		// that the block must commit to it.
		t.commit = witnessCommitment(t)
	}
	t.rollMask = rollableBits(t.version, r.VBAvailable)
	return t, nil
}

// witnessMagic opens a BIP 141 commitment: OP_RETURN, push 36, aa21a9ed.
var witnessMagic = []byte{0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed}

// witnessCommitment computes the commitment a node that omits
// default_witness_commitment expects: sha256d(witness root || reserved),
// with the coinbase's wtxid as zeros and a zero reserved value.
func witnessCommitment(t *template) []byte {
	leaves := make([][32]byte, 1, 1+len(t.txs))
	for _, b := range t.txs {
		var m wire.MsgTx
		_ = m.Deserialize(bytes.NewReader(b)) // parsed once already
		leaves = append(leaves, [32]byte(m.WitnessHash()))
	}
	root := work.MerkleRoot(leaves)
	var buf [64]byte
	copy(buf[:32], root[:])
	c := work.Sha256d(buf[:])
	return append(append([]byte(nil), witnessMagic...), c[:]...)
}

// rollableBits is the BIP 320 mask minus any bit a soft fork offered in
// this template signals on: rolling those would vote by accident. A version
// without the BIP 9 top bits cannot be rolled at all.
func rollableBits(version uint32, vb map[string]int) uint32 {
	if version>>29 != 1 {
		return 0
	}
	mask := uint32(work.BIP320Mask)
	for _, bit := range vb {
		if bit >= 0 && bit < 32 {
			mask &^= 1 << uint(bit)
		}
	}
	if bits.OnesCount32(mask) == 0 {
		return 0
	}
	return mask
}

// coinbase is the template's coinbase transaction split around its
// extranonce, as a pool would send it.
type coinbase struct {
	coinb1, coinb2 []byte
}

// buildCoinbase writes the coinbase: BIP 34 height, the extranonce as one
// push, the tag; the reward to payout; the witness commitment when there is
// one. The bytes are the txid (non-witness) serialisation; block() adds the
// witness.
//
// seq, the template's number, opens the extranonce push: two templates of
// one tip (a refresh, a retry after a rejected block) then never share a
// coinbase, so their extranonce2 counters, which both start at zero, do not
// sweep the same headers again.
func buildCoinbase(t *template, payout []byte, seq uint32, en2size int) (coinbase, error) {
	heightPush, err := txscript.NewScriptBuilder().AddInt64(t.height).Script()
	if err != nil {
		return coinbase{}, err
	}
	en := extranonce1Size + en2size
	sig := append(append([]byte(nil), heightPush...), byte(4+en))
	sig = binary.LittleEndian.AppendUint32(sig, seq)
	sig = append(sig, make([]byte, en)...)
	sig = append(sig, byte(len(coinbaseTag)))
	sig = append(sig, coinbaseTag...)
	if len(sig) < 2 || len(sig) > 100 {
		return coinbase{}, fmt.Errorf("coinbase scriptSig is %d bytes; consensus wants 2..100", len(sig))
	}
	tx := wire.NewMsgTx(1)
	tx.AddTxIn(&wire.TxIn{
		PreviousOutPoint: wire.OutPoint{Index: math.MaxUint32},
		SignatureScript:  sig,
		Sequence:         math.MaxUint32,
	})
	tx.AddTxOut(wire.NewTxOut(t.value, payout))
	if t.commit != nil {
		tx.AddTxOut(wire.NewTxOut(0, t.commit))
	}
	var buf bytes.Buffer
	if err := tx.SerializeNoWitness(&buf); err != nil {
		return coinbase{}, err
	}
	ser := buf.Bytes()
	// version(4) + input count(1) + outpoint(36) + script length(1, since
	// the script is under 253 bytes) puts the scriptSig at byte 42.
	at := 42 + len(heightPush) + 1 + 4
	if ser[41] != byte(len(sig)) || !bytes.Equal(ser[at:at+en], make([]byte, en)) {
		return coinbase{}, errors.New("coinbase layout: extranonce not where expected")
	}
	return coinbase{coinb1: slices.Clone(ser[:at]), coinb2: slices.Clone(ser[at+en:])}, nil
}

// block serialises the full block for submitblock: the header as hashed,
// the coinbase with its witness reserved value when the block commits to
// witnesses, then the template's transactions as the node gave them.
func block(t *template, header [80]byte, cb []byte) ([]byte, error) {
	var tx wire.MsgTx
	if err := tx.DeserializeNoWitness(bytes.NewReader(cb)); err != nil {
		return nil, fmt.Errorf("coinbase: %w", err)
	}
	if t.commit != nil {
		tx.TxIn[0].Witness = wire.TxWitness{make([]byte, 32)}
	}
	var buf bytes.Buffer
	buf.Grow(80 + 9 + len(cb) + 40 + sumLen(t.txs))
	buf.Write(header[:])
	if err := wire.WriteVarInt(&buf, 0, uint64(1+len(t.txs))); err != nil {
		return nil, err
	}
	if err := tx.Serialize(&buf); err != nil {
		return nil, err
	}
	for _, b := range t.txs {
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// checkBlock re-reads a serialised block with btcd's decoder and checks
// what the node would reject it for first: the header hash against the
// target and the merkle root against the transactions. A failure is a bug
// here, caught before the node sees it.
func checkBlock(raw []byte, target work.Target) error {
	var b wire.MsgBlock
	if err := b.Deserialize(bytes.NewReader(raw)); err != nil {
		return fmt.Errorf("block does not parse: %w", err)
	}
	var hb bytes.Buffer
	if err := b.Header.Serialize(&hb); err != nil {
		return err
	}
	if !target.Met(work.Sha256d(hb.Bytes())) {
		return errors.New("block hash does not meet the target")
	}
	ids := make([][32]byte, len(b.Transactions))
	for i, tx := range b.Transactions {
		ids[i] = [32]byte(tx.TxHash())
	}
	if work.MerkleRoot(ids) != [32]byte(b.Header.MerkleRoot) {
		return errors.New("block merkle root does not match its transactions")
	}
	return nil
}

func sumLen(bs [][]byte) int {
	n := 0
	for _, b := range bs {
		n += len(b)
	}
	return n
}

// blockHash is the display form of a header's hash.
func blockHash(header [80]byte) string { return work.HashDisplay(work.Sha256d(header[:])) }
