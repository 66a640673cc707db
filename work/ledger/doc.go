// Package ledger is the miner's memory of what it has already done for one
// pool: for every job the pool still holds, which extranonce2 and version-roll
// positions have been handed to devices, the difficulty the pool will judge
// its shares at, and every share already submitted.
//
// Why it exists: a pool keys shares by (extranonce1, job id), not by the
// messages that happened to carry the job. Pools re-issue the same job when
// vardiff moves or the version mask changes, and a resumed session keeps the
// same extranonce1 and job ids. Anything that restarts the extranonce2 counter
// on such a re-issue re-sweeps work already swept and resubmits shares the
// pool already has. So the position and the duplicate set live here, keyed
// the way the pool keys them, and only the pool's own job set (clean_jobs, a
// new extranonce1, the bounded history) makes the ledger forget a job.
//
// Liveness is the one source of truth for "this work is obsolete": a share
// whose entry is no longer live is stale and is never sent.
//
// The ledger is protocol-neutral: a Stratum v1 session, a getblocktemplate
// source or a Stratum V2 channel each own one per upstream and key it the
// way that upstream keys shares.
package ledger
