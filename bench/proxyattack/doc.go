// Command proxyattack plays the attacks of issue 22 against a running
// `clminer proxy` on this machine, to measure what they cost it (RSS) and
// the miners behind it (submit reply times): unit tests count memory and
// messages in-process, but RSS, kernel buffers and reply times under load
// need real processes. It also serves the built-in pool (stratum/pooltest,
// what `clminer demo` mines against) without a miner of its own, so the
// machine's CPU goes to the proxy and the honest miner. run.sh wires a
// pool, a proxy, two honest `clminer mine` processes and one attack
// together and prints the figures BENCHMARKS.md records.
//
// It only ever connects to loopback addresses: attackers come from
// 127.0.1.x (Linux routes all of 127/8 to lo), the honest miners from
// 127.0.0.1, as they would from different hosts on a LAN.
package main
