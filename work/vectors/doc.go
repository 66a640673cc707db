// Package vectors reads the Stratum test-vector files (real Bitcoin blocks and
// pool sessions written as Stratum jobs, schema in builtin/README.md) and
// turns each into a work.Job and the work.Unit the real nonce belongs to.
// The whole set is built into the binary, so tests, `make selftest` and
// `clminer selftest` prove a device right from a bare clone or a machine with
// no checkout at all; `--vectors DIR` reads more in the same schema.
package vectors
