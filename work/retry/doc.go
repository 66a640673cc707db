// Package retry is the one backoff policy of clminer: how long whatever
// keeps failing waits before it tries again. Every upstream kind (the
// Stratum v1 pool list, a Stratum V2 channel, a node mined solo) and the
// webhook delivery use it, so the operator reads one rule in README (1 s
// doubling to 60 s, spread by ±20%) and tests name one set of options; so
// do the loops that retry a failing accept or device, with their own
// numbers.
//
// Why it is shaped this way:
//   - The delay is a pure function of the failures in a row and a uniform
//     random number (DelayAt), so the rule is table- and fuzz-tested with
//     fabricated numbers; Delay draws the number.
//   - Jitter is for everyone: rigs behind one farm router that lose a pool
//     together would otherwise reconnect in lock step, each doubling landing
//     on the pool at the same instant. The spread never goes above Max, so
//     the cap an operator reads is the cap.
//   - Redialing loops share the shape "try; on success start over; on
//     failure wait the next delay unless ctx ends": Counter holds the
//     failures in a row and Redial is that loop (Sleep the wait alone), so
//     no loop keeps its own doubling and its own timer code. A loop that
//     keeps its failures elsewhere (the V1 client's per-pool count, shown
//     in status) asks DelayAt with its own random source.
//   - The random number is injectable (Counter.Rand, DelayAt's u), so tests
//     that count waits are deterministic.
//
// It imports nothing of clminer's, so every layer may use it.
package retry
