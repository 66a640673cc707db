// Package kernels holds the OpenCL C sources the miner builds at run time,
// embedded so that the binary needs no files beside it. The sources are
// plain text so that runtimes can compile them for whatever device they find;
// gpu/opencl caches the resulting binaries.
package kernels
