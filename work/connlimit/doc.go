// Package connlimit bounds what connections can hold on a server that
// anyone who reaches its port may open before authenticating: the farm
// proxy's miners port, the HTTP API and the cgminer API.
//
// Why it works the way it does:
//
//   - Limits count per peer, an IPv4 address or an IPv6 /64 (what one host
//     gets by SLAAC, so rotating addresses within it buys nothing), and in
//     total. A peer over its limit hurts only itself.
//   - A connection is idle until it proves useful: its first byte for the
//     APIs, its authentication for the proxy (Conn.Activate), and idle again
//     between HTTP keep-alive requests. When a limit is reached, the oldest
//     idle connection (of the peer, else of anyone) is closed to make room
//     rather than the newcomer refused: silent sockets held open cannot keep
//     a legitimate client out, even one on the attacker's own address, and
//     only connections doing work are ever protected. A newcomer is refused
//     only when every connection in its way is active.
//   - Buckets are token buckets per peer for rates the proxy bounds (failed
//     authorizations, new worker names), in a table of bounded size: when it
//     is full the least recently used peer is forgotten, so a flood of
//     addresses costs memory once, not per address.
package connlimit
