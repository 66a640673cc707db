// Package channel mines a Stratum V2 channel: one encrypted, authenticated
// connection (package noise) to a pool whose authority key the operator
// pinned in the URL, carrying header-only jobs on a standard channel, or
// coinbase-carrying jobs on an extended channel when the pool requires one
// (REQUIRES_EXTENDED_CHANNELS, or a SetupConnection.Error refusing
// REQUIRES_STANDARD_JOBS). It is a
// work/source.Source, so the miner core and work/failover treat it like
// any other upstream, and a pool list may mix it with V1 pools and nodes.
//
// Why it is built this way:
//   - One goroutine owns the protocol state (jobs, prevhash, target); the
//     reader goroutine only turns frames into messages. Send registers the
//     share under a sequence number before writing it, so a verdict that
//     races the write is never lost.
//   - Acknowledgements are batched (SubmitShares.Success covers every
//     sequence number up to last_sequence_number); errors name one. Every
//     share ends in exactly one Reply: accepted, rejected, or no-reply when
//     the connection ends or the verdict does not come within SubmitTimeout.
//   - An extended job is V1's coinbase/merkle job in V2 framing
//     (work.NewExtendedJob): the extranonce is rolled by the ledger like
//     extranonce2 and sent back in SubmitSharesExtended.
//   - A standard job's merkle root is fixed, so its work space is its
//     rolled versions (work.NewHeaderJob, the ledger's header-only entry):
//     exhausting it idles the devices until the next job rather than
//     repeating work.
//   - SetNewPrevHash forgets every other job, SetTarget re-judges every live
//     job at once (the pool does), SetExtranoncePrefix only affects later
//     jobs. Reconnect may move the connection to another host, but the
//     handshake there is checked against the same pinned authority key, so a
//     compromised pool server cannot hand the hashrate to someone else.
//   - Bad input from the pool ends the connection with an error and a
//     reconnect with backoff; nothing grows without bound (future jobs,
//     shares in flight) and nothing panics.
package channel
