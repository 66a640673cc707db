// Package device is the contract between the miner core and whatever hashes
// for it: a Device sweeps a nonce range of one work.Unit (or of several
// rolled versions of it) and reports candidate nonces. The OpenCL device
// (gpu/opencl), the CPU device (gpu/cpu), the thermal throttle's wrapper
// (gpu/thermal) and test devices implement it; work/miner, bench/ and the
// proxy's tests drive it. It is the downstream half of what work/source is
// upstream: together they are the contracts the miner consumes, and neither
// names a protocol or a driver.
//
// Why it is a package of its own, beside work/source rather than inside it:
// a source hands out jobs and takes shares, a device takes units and
// returns nonces, and nothing on either side needs the other's types. The
// proxy consumes sources without any device; a benchmark drives devices
// without any source.
//
// Why host re-verification (SweepVerified) lives here and not beside the
// devices: re-hashing a candidate and judging it against the share target
// is Bitcoin math (work.Unit.Check), and it must judge every device the
// same way, so that no device, whatever its driver or kernel, can get a bad
// share submitted or make a candidate vanish uncounted.
//
// Why the GPU telemetry types (Reading, GPUState) are here: the observers
// (work/observe, its cgminer API) report them, and must do so without
// loading a driver binding; gpu/nvml fills them and gpu/thermal adds its
// throttle state.
//
// Nothing in work/ imports gpu/, stratum/, bench/ or cmd/, and this contract
// imports nothing above it in work/; internal/layers holds that rule.
package device
