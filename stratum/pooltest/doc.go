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
// tested against the quirks of stratum/PROTOCOL.md#quirks without a network. It also
// serves as the built-in demo pool. Close stops every goroutine it started.
//
// As the demo pool it runs for as long as its user likes, so what it keeps
// is bounded the way a real pool's is: by its jobs, not by time. Each job
// it still knows holds the header hashes of its shares (the duplicate
// check); a clean job drops the sets of every earlier job, whose shares are
// stale before they are looked up; the oldest jobs are forgotten (their
// shares become "Job not found") beyond 32 jobs or 65,536 remembered shares,
// never single shares, so a duplicate on a job still known is always
// caught; and a job that collects 16,384 shares is followed by a fresh one.
// The records kept for tests (Config.Records), per-worker counts and
// session ids are bounded too. Flood is a fake miner that pushes shares
// through it (or a proxy) as fast as they are answered, for soak tests.
//
// Its verdicts are its own: it shares with the client only package
// stratum/wire (the method names, the error codes and the envelope of a
// line), never package stratum's parsers or share checks, so a bug in the
// client's reading of a message is not repeated by the pool that tests it.
// It reads requests with its own lenient decoding and judges shares with
// package work alone; the odd reject shapes it is scripted to send are
// written here, since wire writes only the [code, "message", null] one.
package pooltest
