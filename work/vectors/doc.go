// Package vectors reads the Stratum test-vector files (real Bitcoin blocks and
// pool sessions written as Stratum jobs, schema in shared/vectors/README.md)
// and turns each into a work.Job and the work.Unit the real nonce belongs to.
// A few vectors are built into the binary so `clminer selftest` and `bench`
// can prove a device right on a machine with no repository checkout.
package vectors
