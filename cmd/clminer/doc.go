// Command clminer is a Bitcoin (SHA-256d) miner for OpenCL GPUs, with a pure-Go
// CPU device where no GPU exists. This package only wires flags to the
// packages that do the work, so that tests drive those without a process.
//
// Each command checks all its flags first (one line per mistake, before
// anything binds or opens), then puts its world together in one function
// (runMiner, runProxy) in phases, each with what the one before made in
// hand: the listeners, so a busy port fails at once; the devices; the work
// source and the miner or the farm proxy; then the servers of what now
// exists (the HTTP and cgminer APIs), run with the status ticker and the
// fleet services in a crew beside the main piece and stopped once it has
// returned. Tests replace what a command runs, or NVML, through the hooks
// they give newAppWith, never through package variables, so that they can
// run side by side.
package main
