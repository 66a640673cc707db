// Package codec is the Stratum V2 binary encoding (sv2-spec §3.1, §3.2,
// §5.3): the six-byte frame header and typed messages, each with a paired
// encoder and decoder.
//
// Why it is built this way:
//   - Every message is a Go struct with Encode (append to a buffer) and a
//     decoder that consumes exactly the payload: trailing bytes, a short
//     field or a length prefix past the end are errors naming the message
//     and field, never a panic or an index out of range. The payload comes
//     from a hostile peer; the reader (package noise) bounds its size.
//   - Sizes follow the spec's types (STR0_255, B0_32, OPTION[U32], U256):
//     a value too long for its type is refused at encode time, so clminer
//     never sends a frame its peer must reject.
//   - U256 values (prev_hash, merkle_root, targets) are kept as the raw 32
//     bytes of the wire, which are little-endian, i.e. header byte order;
//     turning them into header fields and targets happens in package work.
package codec
