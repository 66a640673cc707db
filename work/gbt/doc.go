// Package gbt mines solo against a Bitcoin node: it asks the node for block
// templates with getblocktemplate (BIP 22/23), turns each into a job the
// miner core hashes like any pool's, and hands a candidate that meets the
// network target back to the node with submitblock.
//
// Why a node is just one more work source: the miner core only needs jobs,
// a ledger entry per job, and somewhere to send a host-verified candidate.
// Building the coinbase here (BIP 34 height, an extranonce in the scriptSig,
// the payout script, the BIP 141 witness commitment) produces the same
// coinb1/extranonce/coinb2 split and merkle branch a Stratum pool sends, so
// the extranonce ledger, version rolling and the devices are shared with
// pool mining unchanged.
//
// What the source guards against, from how solo miners have failed users:
//   - txids are computed from each transaction's bytes, never taken from the
//     node's txid/hash fields (mixing them up gave cpuminer bad-txnmrklroot);
//   - the segwit rule is always requested and the witness commitment is
//     added (computed when a node leaves default_witness_commitment out),
//     with the 32-byte reserved value in the coinbase witness;
//   - the payout address is decoded for the network the node reports, so a
//     mainnet address on testnet4 is a clear error, not a worthless block;
//   - shares are judged against the exact nbits target, not a float
//     difficulty, so no block is dropped or sent that the node disagrees on;
//   - one block per tip: once a block on a tip (previous block hash) is
//     sent, no other block on it is ever sent or mined for, whatever the
//     node's verdict, since a second block of ours on a tip can only
//     compete with the first (or with the block the node preferred). The
//     mark is set in the same critical section that decides to send, and is
//     kept after the verdict, so a candidate found before the verdict and
//     handed in after it is counted stale, not sent;
//   - ntime is the template's curtime (never below mintime) and is not rolled:
//     on testnet4 the template's nbits depend on it (the 20-minute
//     minimum-difficulty rule and BIP 94's timewarp bound), so a block
//     keeps the time its bits were computed for.
//
// Everything the node sends is bounded (response size, transaction count
// and size) and validated before any device hashes it.
package gbt
