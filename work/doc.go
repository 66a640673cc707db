// Package work holds the Bitcoin side of mining: it turns the fields of a
// Stratum mining.notify into coinbase, merkle root, 80-byte header, midstate
// and share/network targets, and turns a found nonce back into the params of
// mining.submit.
//
// Byte order is the classic trap of Stratum mining (see stratum/PROTOCOL.md#byte-order):
// every conversion from Stratum hex to header bytes lives in hex.go, and the
// rest of the project goes through this package rather than decoding hex on
// its own.
package work
