// Command clminer is a Bitcoin (SHA-256d) miner for OpenCL GPUs, with a pure-Go
// CPU device where no GPU exists. This package only wires flags to the
// packages that do the work, so that tests drive those without a process.
package main
