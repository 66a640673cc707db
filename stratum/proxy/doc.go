// Package proxy is a Stratum v1 server for a farm: many downstream miners
// (ASICs, other clminers, cpuminer-style software) share one upstream
// session per pool, held by the same stratum.Client the miner uses (with its
// failover, health rules and work ledger).
//
// Why it is built the way it is:
//
//   - The upstream extranonce2 space is split, not shared: each miner gets a
//     unique prefix of PrefixSize bytes as its extranonce1 and the rest (at
//     most 8 bytes, what cgminer and WhatsMiners accept) as its
//     extranonce2_size. Two miners can therefore never produce the same
//     share, and a prefix given up by a miner that sent the pool shares is
//     not handed out again before a clean job, so a newcomer cannot repeat
//     them. A prefix whose holder sent none is free at once, and when none
//     is free the oldest holder that has not authorized gives its up:
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
//     mark the farm's one connection sick.
//   - A miner's difficulty is the upstream one, stamped per job: a higher
//     downstream difficulty would cut the credit the pool gives (it credits
//     each share at its own difficulty), a lower one would send shares the
//     pool rejects.
//   - Version rolling is negotiated upstream; each miner gets the
//     intersection of its mask and the pool's, updated with
//     mining.set_version_mask when the pool's changes.
//   - Everything a miner sends is bounded: line size, request id size (a
//     long id drops the miner, never echoed), messages per second (a token bucket
//     that stops reading, so a flood only slows its sender), garbage lines,
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
//   - Each downstream worker name is authorized upstream as a sub-worker of
//     the pool user (stratum.Client.AddWorker), and its shares are submitted
//     under it; a name the pool refuses is reported and its shares go under
//     the pool user. Every upstream authorize is a message on the farm's one
//     pool connection, which pools rate-limit: a name is authorized only
//     once its miner subscribed, stays authorized (the most recently used,
//     bounded) when the miner leaves so a returning one costs nothing, and
//     new names come at a bounded rate per address and in all. With a user
//     list the upstream name keeps the whole user name, so two users' rigs
//     are never credited as one. The per-worker counters keep connected
//     names and a bounded number that left: junk names cannot fill them.
//
// FuzzServerLines feeds one connection arbitrary line sequences interleaved
// with upstream events, FuzzServerSessions several connections from two
// addresses (their corpus is in testdata/fuzz); testdata/miner.py
// is a miner written apart from this code (Python, hashlib only) that the
// tests drive through the proxy.
package proxy
