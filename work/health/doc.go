// Package health is the one rule by which a mining upstream is judged
// sick: it holds the connection and sends work, but its answers to shares
// show it cannot be mined on (it stopped answering them, or rejects shares
// the host verified). A sick upstream is left for the next one, as a
// dead one is.
//
// Why it is shaped this way:
//   - One rule, protocol-neutral: the Stratum v1 session and the Stratum
//     V2 channel both report what happened to each share (sent, answered
//     with a verdict, expired without one) and ask Tracker whether the
//     upstream is sick. Each protocol chooses which clauses apply in its
//     Rule (V2 acknowledges in batches minutes apart, so only its streak
//     of shares without a verdict applies), but no protocol keeps a copy
//     of a clause that can drift from the other's.
//   - Pure, with the clock injected: every method takes now, so the rule is
//     table-tested with fabricated times instead of waiting out windows of
//     wall-clock time.
//   - Not safe for concurrent use: each protocol already guards its
//     in-flight shares with a lock, and Tracker lives under it, so the
//     count and the shares it describes cannot disagree.
//
// A node mined solo has no such rule: it is sent a block at a time, each
// with its own RPC timeout, and there is no streak to judge.
package health
