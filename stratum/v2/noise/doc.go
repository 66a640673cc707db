// Package noise is Stratum V2's secure channel (sv2-spec §4):
// Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256 with the pool's static key
// vouched for by a certificate signed by an authority key the operator pins,
// then ChaCha20-Poly1305 transport of framed messages.
//
// Why it is built this way:
//   - The curve work is btcd's (btcec/v2 ellswift, schnorr: BIP 324 and
//     BIP 340 as published, checked here against their test vectors), the
//     AEAD is golang.org/x/crypto's, HKDF/HMAC/SHA-256 the standard
//     library's. Noise libraries such as flynn/noise cannot express an
//     ElligatorSwift DH whose output depends on the role.
//   - The initiator (the miner) accepts a server only after the certificate
//     verifies: format version 0, now inside [valid_from, not_valid_after],
//     and a BIP 340 signature by the pinned authority over
//     SHA-256(version || valid_from || not_valid_after || server x-only key).
//     Each failure is its own error (ErrAuthority, ErrCertExpired, ...), so
//     a misconfigured key reads differently from a tampered connection.
//   - Reads are exact and bounded: act 2 is a fixed 234 bytes, a frame's
//     payload length is checked against a limit before anything is
//     allocated, and a bad MAC or an early EOF is an error that ends the
//     connection. Nothing here panics on peer input.
//   - The responder side (Accept) exists for tests and for tools; the
//     independent pool used in CI is not this code (stratum/v2/v2peer).
package noise
