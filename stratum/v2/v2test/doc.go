// Package v2test is a Stratum V2 pool for tests, in Go on the same noise
// and codec packages as the client: it exercises the client's state
// machine (future jobs, SetNewPrevHash, SetTarget, batched acks, Reconnect,
// CloseChannel, refusals) quickly and deterministically. Interoperability
// with an independent implementation is tested against stratum/v2/v2peer
// (Node.js, other crypto libraries) instead.
package v2test
