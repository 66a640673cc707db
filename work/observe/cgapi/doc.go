// Package cgapi serves cgminer's RPC API (the TCP protocol of cgminer 3.7's
// API-README, port 4028 by convention) read-only, because the tools that
// manage rigs - Hive OS's stats agent, MultiMiner, Awesome Miner, miner.php
// and the many bridges built on pycgminer - speak that protocol and nothing
// else. It answers the report commands (version, config, summary, devs,
// pools, stats, joined with '+') in the JSON and the text form, with
// cgminer's section names, field names and units, from the same miner
// snapshot as /api/v1/status, so both views agree. Commands that would
// change the miner are refused with cgminer's access-denied status.
//
// Every connection carries one request and is closed after the reply, as in
// cgminer. A peer is hostile: requests are capped in size and time (2 s to
// the first byte, 5 s in all), the connections open at once are bounded in
// total and per address, with the oldest silent one closed to make room so
// that silent sockets cannot starve the rig manager, and addresses outside
// the allow list are dropped unanswered.
package cgapi
