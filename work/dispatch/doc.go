// Package dispatch hands out disjoint work to every device: each call to Next
// returns a unit (extranonce2, rolled version) nobody else has, so fast GPUs
// never repeat work or run dry. The position itself lives in the job's ledger
// entry (package ledger), not here, so a re-issued job (new target, new mask)
// or a resumed session continues where it stopped instead of starting over.
// The dispatcher only knows which job is current: every SetJob or Clear closes
// the Changed channel so devices drop what they are doing, and Clear (no live
// upstream) makes Next wait, so devices idle instead of hashing work nobody
// can take.
package dispatch
