// Package miner is the mining loop behind `clminer mine` and `clminer demo`:
// it connects any work source (work/source.Source: a Stratum v1 or V2 pool,
// a node mined solo, a failover list of them), the dispatcher
// (work/dispatch) and the devices (work/device, implemented in gpu/),
// re-verifies every candidate on the host, keeps the accounting an operator
// reads (hashrates, shares by outcome and reason, hardware errors,
// latencies), and drains in-flight shares on shutdown. It lives outside cmd/
// so tests drive it without a process, and it never learns which protocol
// feeds it.
package miner
