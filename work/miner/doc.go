// Package miner is the mining loop behind `clminer mine` and `clminer demo`:
// it connects the pool client (stratum), the dispatcher (work/dispatch) and
// the devices (work/device, implemented in gpu/), re-verifies every candidate on the host, keeps the
// accounting an operator reads (hashrates, shares by outcome and reason,
// hardware errors, latencies), and drains in-flight shares on shutdown. It
// lives outside cmd/ so tests drive it without a process.
package miner
