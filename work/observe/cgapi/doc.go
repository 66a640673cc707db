// Package cgapi serves cgminer's RPC API (the TCP protocol of cgminer's
// API-README, port 4028 by convention) read-only, because the tools that
// manage rigs - Hive OS's stats agent, MultiMiner, Awesome Miner, miner.php,
// pyasic and the many bridges built on pycgminer - speak that protocol and
// nothing else, and read it field by field.
//
// The replies follow cgminer 3.7.2 (API 1.32, the last API with GPUs): its
// commands, section and field names, types and units, in the JSON and the
// text form, with the later additions tools send or read - joined requests
// ("summary+devs", API 3.1, with CMD= separators in the text form), edevs
// and estats (3.3), lcd (3.4), POOLS' Work Difficulty (3.7). VERSION says
// API 3.7 for that reason. Every field is filled from the miner's own
// accounting (the same snapshot as /api/v1/status, so both views agree);
// what does not apply to clminer gets cgminer's neutral value (0, "", -1 for
// no last share pool) rather than being left out, because clients index
// fields by name and fail on a missing one. Commands that would change the
// miner are refused with cgminer's access-denied status; command names are
// case-sensitive, as in cgminer.
//
// Every connection carries one request and is closed after the reply, as in
// cgminer, which answers what its one read got. A peer is hostile: requests are capped in size and time (2 s to
// the first byte, 5 s in all), the connections open at once are bounded in
// total and per address, with the oldest silent one closed to make room so
// that silent sockets cannot starve the rig manager, and addresses outside
// the allow list are dropped unanswered.
package cgapi
