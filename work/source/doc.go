// Package source is the contract between the miner core and whatever gives
// it work: a Stratum v1 pool list (package stratum), a Stratum V2 channel
// (stratum/v2/channel), a node's getblocktemplate (work/gbt), or a priority
// list of them (work/failover). The miner and the farm proxy consume Jobs
// and send Shares through these types and never learn which protocol is on
// the other end.
//
// Why it is shaped this way:
//   - A Job carries its ledger entry (package ledger): the extranonce2 and
//     version position, the difficulty the upstream judges shares at, and
//     the set of shares already sent. Liveness of that entry is the only
//     definition of "obsolete": the core never second-guesses it with flags.
//   - Send never blocks and never starts a goroutine per share: a source
//     bounds the shares in flight and answers Throttled beyond the bound, so
//     a pool asking for an absurdly low difficulty cannot exhaust memory.
//     Every Send gets exactly one Reply, so every candidate ends in exactly
//     one counted outcome.
//   - NoWork tells the core that no upstream has a live job; devices idle
//     instead of hashing work that cannot be submitted.
//   - The farm proxy consumes the same contract, so it takes every kind of
//     upstream the miner takes. What it needs beyond the miner is said by
//     the jobs (TargetAtOnce: a V2 channel re-judges its jobs at once on a
//     new target; BlocksOnly: a node takes blocks, not shares), by Share
//     (the sub-worker to credit, the full extranonce2 in the unit) and
//     Reply (the upstream's reject code), and by the optional Workers of a
//     source whose upstream has sub-accounts (Stratum v1). A miner ignores
//     all of it.
package source
