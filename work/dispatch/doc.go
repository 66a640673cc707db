// Package dispatch hands out disjoint work to every device: each call to Next
// returns a unit (extranonce2, rolled version) nobody else has, so fast GPUs
// never repeat work or run dry. It also tells devices when to drop what they
// are doing: every new job closes the Changed channel, and a clean job (or new
// prevhash) starts a new generation whose older results are stale.
package dispatch
