// Package proxy is a Stratum v1 server for a farm: many downstream miners
// (ASICs, other clminers, cpuminer-style software) share one upstream,
// consumed through the contract the miner consumes (package work/source):
// a Stratum v1 pool list (stratum.Client, with its failover, health rules
// and work ledger), a Stratum V2 extended channel (a V1-to-V2 translator),
// a node (a solo pool for the farm), or a work/failover chain of them.
//
// Why it is built the way it is:
//
//   - The upstream is a source.Source, not a protocol: what differs between
//     kinds is said by the jobs themselves (source.Job.TargetAtOnce for a
//     V2 channel, BlocksOnly for a node) and by whether the source has
//     sub-workers (source.SubWorkers), so a failover between kinds is a new
//     share space like any other and miners stay connected through it.
//     Every share goes up with source.Source.Send and the full extranonce2,
//     ntime and version bits of the upstream's own job, to the session that
//     issued it and nowhere else.
//   - A V2 channel must be extended (channel.Config.Extended): its jobs
//     carry the coinbase, so the channel's extranonce is split like a v1
//     pool's extranonce2, and shares go up as SubmitSharesExtended.
//     SetTarget applies to the channel's jobs at once in both directions;
//     miners speak v1, where a set_difficulty lowers only later jobs, so a
//     raise reaches them at once (the job re-sent) and a lowering from the
//     second new job after it, the rule clminer's own v1 client follows.
//   - A node takes only blocks. The proxy is then the pool: it sets each
//     miner's difficulty (vardiff, honouring mining.suggest_difficulty
//     within bounds, never above the network's), judges every share at the
//     lowest difficulty the miner was told for its job and keeps it here,
//     and hands only a share that meets the network target to the node
//     source, which builds and checks the block and sends one per tip
//     (work/gbt's sent-tip set). Blocks are counted per miner and worker.
//   - A failover chain keeps every upstream connected, so a v1 backup's
//     latest job can come back unchanged after the proxy left it. Miners
//     start a new job's extranonce2 at zero, so such a job is sent with a
//     later ntime (pjob.bump): their work on it is new rather than a replay
//     of the shares they sent on it before (the ledger would refuse those
//     as duplicates, and the hashing would be wasted).
//   - The upstream extranonce2 space is split, not shared: each miner gets a
//     unique prefix of PrefixSize bytes as its extranonce1 and the rest (at
//     most 8 bytes, what cgminer and WhatsMiners accept) as its
//     extranonce2_size. Two miners can therefore never produce the same
//     share, and a prefix given up by a miner that sent the pool shares is
//     not handed out again before a clean job, so a newcomer cannot repeat
//     them. A prefix whose holder sent none is free at once, and when none
//     is free the oldest holder that has not authorized (for 2 s: one
//     still in its handshake goes last) or, after it, has sent no share
//     for SilentGrace gives its up:
//     prefixes are few (256 with a pool extranonce2 below 6 bytes), and
//     sessions that subscribe and leave, or never authorize, must not be
//     able to use them up.
//   - The upstream extranonce1 is folded into the coinb1 each miner is sent
//     (coinb1 || extranonce1 are adjacent bytes of the coinbase), and any
//     upstream extranonce2 beyond the miner's share is zero padding at the
//     head of coinb2. The miner's own extranonce1 is only its prefix, so a
//     failover to a backup pool, a resumed session or an upstream
//     set_extranonce changes nothing a miner was told: it keeps mining
//     through them. Only a pool with a smaller extranonce2_size forces a
//     change, sent as mining.set_extranonce to miners that asked for it
//     (mining.extranonce.subscribe) and as client.reconnect to the proxy
//     itself to the rest; a miner is never pointed elsewhere.
//   - Every downstream share is re-verified on the host with package work
//     (the same header code the miner uses) against the upstream job's
//     ledger entry, and only what the pool would accept is sent: stale,
//     duplicate, low-difficulty and malformed shares are answered locally
//     with the pool's usual codes, so a broken miner cannot make the pool
//     mark the farm's one connection sick. judgeShare makes that decision
//     from the miner's state and the job alone, without side effects, so
//     every refusal and its code is table-tested; a duplicate is found only
//     when the share is claimed in the ledger, which reserves it atomically.
//   - With a pool, a miner's difficulty is the upstream one, stamped per
//     job: a higher downstream difficulty would cut the credit the pool
//     gives (it credits each share at its own difficulty), a lower one would
//     send shares the pool rejects.
//   - Version rolling is negotiated upstream; each miner gets the
//     intersection of its mask and the pool's, updated with
//     mining.set_version_mask when the pool's changes.
//   - Everything a miner sends is bounded: line size, request id size (a
//     long id drops the miner, never echoed), messages per second (an
//     x/time/rate limiter per connection whose wait stops reading, so a
//     flood only slows its sender), garbage lines,
//     time to the first line and to subscribe and authorize, workers per
//     connection and shares waiting for the pool. Each connection has its
//     own writer with a queue bounded in bytes, in which a newer job replaces
//     one not yet written: a miner that stops reading is dropped, never
//     waited for, so one bad miner cannot stall the upstream reader or the
//     others, and a slow one is not taken for a dead one.
//   - Anyone who reaches the port can connect before authenticating, so
//     connections are bounded per address (package connlimit: an IPv4
//     address or IPv6 /64) and in total, with the oldest unauthenticated
//     connection closed to make room, and refused authorizes are rate-limited
//     per address: silent sockets, handshake floods and password guessing
//     cost the attacker's address, not the farm.
//   - Where the upstream has sub-workers (Stratum v1), each downstream
//     worker name is authorized upstream as a sub-worker of the pool user
//     (source.Workers.AddWorker, on every v1 pool of a failover chain), and
//     its shares are submitted under it; a name the pool refuses is reported
//     and its shares go under the pool user. V2 and nodes have no such
//     accounts: the names are the proxy's per-worker accounting only. Every upstream authorize is a message on the farm's one
//     pool connection, which pools rate-limit: a name is authorized only
//     once its miner subscribed, stays authorized (the most recently used,
//     bounded) when the miner leaves so a returning one costs nothing, and
//     new names come at a bounded rate per address and in all. With a user
//     list the upstream name keeps the whole user name, so two users' rigs
//     are never credited as one. The per-worker counters keep connected
//     names and a bounded number that left: junk names cannot fill them.
//
// FuzzServerLines feeds one connection arbitrary line sequences interleaved
// with upstream events (v1, V2 and node jobs, SetTarget, every verdict
// kind), FuzzServerSessions several connections from two addresses (their
// corpus is in testdata/fuzz); testdata/miner.py is a miner written apart
// from this code (Python, hashlib only) that the tests drive through the
// proxy, with stratum/v2/v2peer (Node.js) as an independent V2 pool and
// btcd as a node.
package proxy
