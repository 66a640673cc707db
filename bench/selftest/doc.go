// Package selftest proves a device right on real Bitcoin blocks: for each
// vector it rebuilds the job from its Stratum fields, checks merkle root and
// header, and sweeps a nonce window around the real nonce, which must be the
// one and only result meeting the network target. Operators run it after a
// driver update or an overclock; CI runs it on every device it has.
package selftest
