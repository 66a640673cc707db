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
// The AVX-512 path runs two 16-lane chains side by side, so the core has
// two independent dependency chains to overlap: 32 consecutive nonces of a
// unit, or, when the pool rolls versions (BIP 310), two rolled versions of
// the same 16 nonces (the device is then a device.MultiVersion of 2). Those
// versions' second chunks are the same message, so the first hash's
// message schedule is computed once for both. On the Zen 5 this was
// written on, that is about 1.35 and 1.4 times the one-chain rate per
// thread; see BENCHMARKS.md.
//
// The assembly is generated (see internal/gen) because the kernels are
// unrolled (fully, or in loops of 8 rounds) and track, per message word,
// whether it is zero, fixed for the unit or different per nonce; that
// bookkeeping belongs in a loop, not in thousands of hand-edited lines.
package cpu

//go:generate go run ./internal/gen -dir .
