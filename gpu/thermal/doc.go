// Package thermal holds NVIDIA GPUs to a temperature. A Monitor polls NVML
// for every GPU the miner drives (telemetry for the API, metrics and the
// status line) and steers one Throttle per GPU: above --temp-target the
// GPU's share of full speed is lowered a step per reading, in proportion
// to the excess, and raised again slowly once it is cooler; at
// --temp-cutoff the GPU idles until it has cooled by the hysteresis.
//
// The throttle acts through a device.Device wrapper, so neither the miner nor
// the OpenCL device knows about it: the wrapper hands the device its sweep
// in slices (about 200 ms of hashing while throttled, 2 s while not) and
// pauses between slices so the GPU is busy only the allowed fraction of the
// time (its effective intensity), and at the cutoff it hashes nothing. Work is never skipped:
// every nonce of the sweep is still hashed, later.
package thermal
