// Package pooltest is a real, in-process Stratum v1 pool. It exists because
// fixtures of recorded lines cannot test what matters in a miner's pool
// client: ordering, timing, failover and whether a submitted share is
// actually valid. The server validates every share with package work
// exactly as a pool would (extranonce2 size, 8-char nonce, ntime window,
// version bits within the granted mask, hash against the difficulty of the
// job) and counts accepted, rejected, stale and duplicate shares.
//
// Misbehaviour seen in real pools is scriptable through Behavior and the
// push methods (late or missing replies, notify before the subscribe reply,
// refused authorization, every reject format, garbage, endless lines,
// stalls, dropped connections, client.reconnect), so the client can be
// tested against the quirks of stratum-v1.md §8 without a network. It also
// serves as the built-in demo pool. Close stops every goroutine it started.
package pooltest
