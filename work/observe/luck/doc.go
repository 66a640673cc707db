// Package luck keeps the best share a rig has ever found and says how far
// it is from a block. Solo and lottery miners watch their best share the
// way pool miners watch accepted shares, and a number that resets on every
// restart (the session best in miner.Snapshot) loses the one figure they
// care about, so the all-time best is kept in a small JSON file in the
// user cache directory. It also gives the expected time to a block at the
// current hashrate and the network difficulty of the job being mined.
package luck
