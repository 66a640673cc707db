// Package stratum speaks Stratum v1 to Bitcoin pools as they are really
// deployed, which differs from any written description in many small ways
// (see stratum/PROTOCOL.md). The package exists so that the rest of
// the miner sees only validated jobs and a Submit call, and never has to
// care which pool dialect is on the other end.
//
// Why it is built the way it is:
//
//   - One reader goroutine per connection owns all protocol state.
//     Pools interleave replies and notifications in any order (notify and
//     set_difficulty often precede the subscribe reply), so replies are
//     matched by id and early notifies are queued until extranonce1 is known.
//   - Every optional call (mining.configure, mining.extranonce.subscribe,
//     mining.suggest_difficulty) has a timeout and never blocks the session,
//     because some pools never answer methods they do not know.
//   - Errors come in every JSON type; anything but result == true on a
//     submit is a reject, and wire.Error keeps the reason readable.
//   - Difficulty is judged the way both kinds of real pool judge it
//     (stratum/PROTOCOL.md#difficulty): a job is judged at the highest difficulty in force
//     from the previous notify until now. A raise therefore applies at once
//     (public-pool enforces it on jobs already sent): the ledger entries are
//     raised and the latest job is re-issued with the harder target. A
//     lowering re-issues nothing and applies from the second job notified
//     after it (ckpool judges the current and the next job at the old value).
//   - Each pool has one work ledger (package work/ledger), kept across its
//     sessions and keyed by (extranonce1, job id) as the pool keys shares.
//     A re-issued job (new target, set_version_mask) and a resumed session
//     continue where they stopped; only clean_jobs, a new prevhash, a new
//     extranonce1 or the bounded history forget a job. set_extranonce only
//     affects jobs from the next notify.
//   - A share is bound to the connection that sent its job: it is never sent
//     to another pool or session. Submits are answered by callbacks (reader,
//     one monitor goroutine per session for timeouts, close), never a
//     goroutine per share, and at most MaxInFlight wait; beyond that a share
//     is throttled, so an absurd difficulty cannot exhaust memory.
//   - A pool is judged on what it does with host-verified shares: one that
//     stops answering submits or rejects them in a streak is sick and left;
//     a higher-priority or sick pool is returned to only after probes that
//     run subscribe and authorize (not just a TCP connect) pass for the
//     hold-down, so a pool that refuses the worker does not drag the miner
//     back. Failover is ordered with per-pool exponential backoff plus jitter.
//   - A pool that hangs is left within 150 s of its last line; a slow but
//     live one is kept. The rule is silence: no line at all for ReadTimeout
//     (90 s, the figure cgminer and the ASIC firmware built on it drop a
//     pool at, so pools keep connections busier than that; a job every 30
//     to 60 s is usual, and one every 50 s is kept) ends the session and
//     counts as the pool failing. The next pool is then used at once, not
//     the same one again: a hung pool's listener (the daemon itself, or a
//     load balancer in front of a dead backend) usually still accepts and
//     never answers, and the one immediate retry that a session which
//     worked gets after a close waited out a subscribe it would never
//     answer. The hung pool backs off and, being higher in the list, is
//     returned to only after its subscribe+authorize probes pass for
//     HoldDown. A subscribe unanswered for HandshakeTimeout (30 s) is a
//     failure too, and is not repeated without the session id: that second
//     subscribe is for a pool that answered and refused the resume. The
//     worst case is a close at the end of a silence, then that retry's dial
//     and one unanswered subscribe: 90 + 10 + 30 s.
//     No probe request is sent to a quiet pool: Stratum v1 has no call every
//     pool answers and none must (mining.ping goes from pool to miner;
//     unknown methods get an error from some pools, nothing from others and
//     a disconnect from a few), so its silence would tell no more than the
//     line's. The same rule elsewhere: a Stratum V2 pool's handshake,
//     SetupConnection and OpenChannel share one SetupTimeout (15 s), so a
//     V2 listener that never answers is left as fast; an open V2 channel
//     has no liveness message, pools may acknowledge shares in batches and
//     send jobs only when the template changes (rarely, on a quiet chain),
//     so silence there does not tell hung from idle, and a V2 pool is left
//     by the sick rule's streak of shares without a verdict (work/health). A node mined solo is asked
//     for a template at least every RefreshInterval (30 s) with CallTimeout
//     (15 s), a longpoll notwithstanding, so a hung node idles the devices
//     within 45 s.
//   - client.reconnect is obeyed only on an authorized session and within
//     the same domain (cgminer's rule) unless the pool allows more, since
//     plain TCP lets a man in the middle redirect hashrate. The target is used
//     for one connection; the configured URL is next when it fails, and a
//     pool that redirects every connection is retried no faster than the
//     backoff.
//   - Lines are capped (1 MiB by default, above the largest job package work
//     accepts) so a pool that never sends a newline cannot grow memory; it is
//     dropped instead. Text a pool controls is logged through a rate limit.
//   - The server side of the same messages (what a miner sends, what a pool
//     answers) has its builders and parsers here too, each the pair of a
//     client-side one (codec_server_test round-trips them), so the farm
//     proxy (package stratum/proxy) and the client agree by construction.
//     The method names, error codes, the error member and the line
//     envelope (one encoder, one decoder) are package stratum/wire's, which
//     the test pool (stratum/pooltest) shares without sharing this
//     package's logic; the names here are aliases of wire's.
//   - Sub-workers (AddWorker, Options.DeviceWorkers) are authorized on every
//     session after the pool user and answered by callback like optional
//     calls; a share goes under its sub-worker only once the pool accepted
//     it on that connection, else under the pool user, so a refused or
//     slow authorize never loses a share.
//   - Every decision reads one clock, Options.Now (the shape of
//     stratum/v2/channel's and cgapi's): submit and call expiry, the health
//     windows, hold-downs and the backoff schedule, suggest_difficulty's
//     rate. Tests fabricate times with it instead of sleeping, and the pure
//     halves (nextPool, endedLocked, suggestDifficulty, outcome, option
//     defaults) are table-tested at fabricated instants. Socket deadlines,
//     the ReadTimeout silence rule among them, and timers that only wait
//     stay on the real clock, which the kernel and the runtime keep.
//
// All header byte-order work is left to package work; this package never
// decodes header hex itself, and it does not depend on any device package.
//
// Fuzz targets FuzzDecodeLine, FuzzNotifyToJob and FuzzSessionSequence (a real
// client session fed sequences of pool messages) keep their seed corpus in
// testdata/fuzz, built from the real session lines in work/vectors/builtin plus
// malformed ones.
package stratum
