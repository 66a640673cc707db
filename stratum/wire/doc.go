// Package wire is the vocabulary of Stratum v1 that both ends of the
// protocol share: the method names, the error codes pools use, the error
// member's type (Error) and the request/response/notification envelope,
// with one encoder and one decoder.
//
// It exists so that the pool client (package stratum), the farm proxy
// (stratum/proxy) and the test pool (stratum/pooltest) spell every name,
// code and line the same way without the test pool depending on the
// client's logic: a pool that shared the client's parsers would agree with
// the client's bugs. So this package holds only what is fixed by the
// protocol (names, codes, the envelope's shape) and imports nothing but the
// standard library; the typed params and the policy on hostile input (how
// long a pool's text may be, which shapes are tolerated in which field)
// stay with their users.
//
// Decoding is as tolerant as deployed pools require (stratum/PROTOCOL.md):
// the error member may be any JSON type and DecodeError reads every shape
// into a code and a message, never failing; Decode classifies a line by its
// method first, then by its id. Text is kept as sent (bounded only by the
// line), so a caller that logs or exports it clips it (package
// work/safetext).
//
// FuzzDecode keeps its seed corpus in testdata/fuzz.
package wire
