// Package stratum speaks Stratum v1 to Bitcoin pools as they are really
// deployed, which differs from any written description in many small ways
// (see shared/docs/stratum-v1.md). The package exists so that the rest of
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
//     submit is a reject, and RPCError keeps the reason readable.
//   - Difficulty is stamped on each job when its notify arrives. When the
//     pool lowers it, the latest job is re-issued through OnJob with the same
//     ID, Clean false and the lower target, so shares meeting the lower value
//     are still found and submitted; consumers replace the job with that ID.
//     A set_version_mask likewise re-issues the latest job with the new mask.
//     set_extranonce only affects jobs from the next notify.
//   - A share is bound to the connection that sent its job: Submit refuses
//     with ErrStaleSession rather than send it to another pool or session.
//   - Failover is ordered with per-pool exponential backoff plus jitter; a
//     higher-priority pool is probed while mining elsewhere and is only
//     returned to after it stayed reachable for the hold-down, so a pool
//     that flaps does not drag the miner along.
//   - client.reconnect is obeyed only within the same domain (cgminer's rule)
//     unless the pool allows more, since plain TCP lets a man in the middle
//     redirect hashrate.
//   - Lines are capped (64 KiB by default) so a pool that never sends a
//     newline cannot grow memory; it is dropped instead.
//
// All header byte-order work is left to package work; this package never
// decodes header hex itself, and it does not depend on any device package.
//
// Fuzz targets FuzzDecodeLine and FuzzNotifyToJob keep their seed corpus in
// testdata/fuzz, built from the real session lines in shared/vectors plus
// malformed ones.
package stratum
