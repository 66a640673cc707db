// Package cpu mines on the host CPU, in pure Go (no cgo), so that clminer
// works, and can be tested end to end, on machines with no OpenCL at all.
//
// A CPU is orders of magnitude slower than a GPU, so the point is not profit
// but a device that is always there, a reference to check GPU results
// against, and a fallback that still earns shares on test pools with low
// difficulty. That is why it still carries the classic miner shortcuts
// (precomputed nonce-independent rounds, the second hash cut off after the
// one word the target test reads) and per-CPU kernels: SHA-NI where the CPU
// has SHA extensions, 16-lane AVX-512 where it has wide vectors, 8-lane AVX2
// for the many x86 CPUs with neither, and a portable scalar path everywhere
// else. All paths are only prefilters; the
// host re-verifies every candidate with work.Unit.Check, so a kernel bug can
// cost shares but never submit a bad one.
//
// Each path has several shapes: kernels of the same instructions, tuned
// for different cores. Which one is fastest depends on the core more than
// on the instruction set, so the device times them all at its first New
// (about 40 ms, calibrate.go) and keeps the fastest one-version shape, and
// the fastest with rolled versions (BIP 310) when the pool rolls them;
// --cpu-path and --kernel-versions narrow the choice.
//
//   - avx512: two 16-lane chains side by side. The "latency" shapes, tuned
//     on a Zen 5 (four 512-bit ports), shorten each round's dependency
//     chain at the cost of an add; the others run fewest instructions per
//     hash, which is what bounds a core with two 512-bit ports (Intel), and
//     compute the first hash's message schedule once per 16 nonces for 2,
//     4 (or 8) rolled versions, or for 32 consecutive nonces.
//   - sha-ni: 2 to 4 nonces, or rolled versions of one nonce, in flight; on
//     the Intel core measured the SHA unit's throughput, not its latency,
//     is the bound, so these cut SHA instructions per hash.
//   - avx2: 8 lanes, for x86 CPUs with neither: one chain (AVX2's 16
//     registers hold no more), and with rolled versions (r2, r4) the first
//     hash's message schedule computed once for all of them.
//
// BENCHMARKS.md holds the model behind this (instructions per hash per
// execution-port class, from `go run ./internal/gen -model`), each shape's
// bound and its measured fraction of it.
//
// The assembly is generated (see internal/gen) because the kernels are
// unrolled (fully, or in loops of 8 rounds) and track, per message word,
// whether it is zero, fixed for the unit or different per nonce; that
// bookkeeping belongs in a loop, not in thousands of hand-edited lines.
package cpu

//go:generate go run ./internal/gen -dir .
