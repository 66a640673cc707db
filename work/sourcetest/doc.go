// Package sourcetest is a scripted work/source.Source for the tests of
// what consumes the contract (the miner, the farm proxy). A test about the
// miner's accounting needs jobs in and verdicts out; running the Stratum
// client against a pool for it tests the protocol by accident, is slow, and
// makes the verdicts a matter of timing. Here the test pushes jobs and
// events, scripts the verdicts (accept, reject, stale, no reply, after a
// delay or when released), and reads back every share the consumer sent
// with what it was answered.
//
// It keeps the promises of the contract the way a real source does, so a
// consumer that passes against it does not rely on a fake's leniency: jobs
// carry ledger entries of a per-upstream ledger, a clean job drops the
// others, a share of a session that is gone is not sent, every Send gets
// exactly one Reply, and Run answers every pending share (no reply) before
// it returns. It also judges each share as a pool would (valid, duplicate),
// so a test can check that nothing wrong went upstream. It keeps every
// share it is sent: it is for tests, which send a bounded number.
package sourcetest
