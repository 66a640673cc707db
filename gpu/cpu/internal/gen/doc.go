// Command gen writes the amd64 assembly of package cpu (sha256_amd64.s) and
// the params layout both sides share (layout.go). The kernels are generated
// rather than hand-written because they are unrolled (fully, or in loops of
// 8 rounds) with per-round register renaming and per-word knowledge of which message words are zero,
// per-unit constants or per-nonce vectors; a generator keeps that bookkeeping
// in one loop instead of thousands of hand-edited lines.
//
// Run it with `go generate ./gpu/cpu/`; `go run ./gpu/cpu/internal/gen -model`
// prints the model instead: each kernel's instructions per class and the
// bounds they put on a core (model.go, BENCHMARKS.md).
package main
