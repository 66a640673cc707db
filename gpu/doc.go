// Package gpu defines what a mining device is: something that sweeps a nonce
// range of one work.Unit and reports candidate nonces. The OpenCL device
// (gpu/opencl), the CPU device (gpu/cpu) and test devices all implement
// Device, and the host code that re-verifies candidates lives here so every
// device is judged the same way.
package gpu
