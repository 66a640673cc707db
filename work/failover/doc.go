// Package failover puts upstreams of different kinds in one priority list:
// a Stratum v1 pool list, a Stratum V2 channel, a node mined solo
// (getblocktemplate). Each kind keeps its own connection logic (the Stratum
// client already fails over between pools, with health and backoff); this
// package only decides
// which of them feeds the miner: the first, in the operator's order, that
// has a live job.
//
// All sources run at once, so a backup is warm when the primary fails (as
// cgminer keeps its backup pools connected): switching costs one job
// hand-over, not a connect and a template. A source that is not feeding the
// miner sends nothing upstream, because shares go only to the source whose
// job they were found on.
//
// A chain's sub-workers (Chain.SubWorkers) are those of its Stratum v1
// sources, all of them: a farm proxy's names are authorized on a v1 backup
// while a V2 pool or a node feeds the miners, so a failover finds them
// there.
package failover
