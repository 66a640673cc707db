// Package bench measures a device's hashrate the way an operator needs it
// measured: after a warm-up, over several intervals (median and spread, since
// rigs and shared machines are noisy), and never trusting the figure of a
// device that hashes wrong: the sweep covers a real block's nonce, which must
// be found, and every candidate is re-verified on the host.
package bench
