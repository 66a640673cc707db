package work

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"clminer/work/safetext"
)

// FieldError names the Stratum field that failed validation so that a log
// line tells the operator which pool value was wrong.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(field string, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

// decodeHex decodes a hex field of a pool message. want < 0 accepts any length
// up to maxLen bytes.
func decodeHex(field, s string, want, maxLen int) ([]byte, error) {
	if len(s)%2 != 0 {
		return nil, fieldErr(field, "odd-length hex %q", clip(s))
	}
	if want >= 0 && len(s) != 2*want {
		return nil, fieldErr(field, "want %d bytes of hex, got %d", want, len(s)/2)
	}
	if want < 0 && len(s) > 2*maxLen {
		return nil, fieldErr(field, "%d bytes is over the limit of %d", len(s)/2, maxLen)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fieldErr(field, "not hex: %q", clip(s))
	}
	return b, nil
}

// ParseUint32Hex parses the 8-hex-char big-endian words that Stratum uses for
// version, nbits, ntime and nonce. Exactly 8 chars are required: a pool or a
// miner that drops leading zeros is a known source of lost shares.
func ParseUint32Hex(field, s string) (uint32, error) {
	b, err := decodeHex(field, s, 4, 4)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(b), nil
}

// FormatUint32Hex is the inverse of ParseUint32Hex: always 8 lower-case chars.
func FormatUint32Hex(v uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return hex.EncodeToString(b[:])
}

// prevHashToHeader undoes the Stratum prevhash encoding: the 32 bytes are
// eight 4-byte groups, each byte-reversed relative to the header bytes, while
// the group order is kept.
func prevHashToHeader(s string) ([32]byte, error) {
	var out [32]byte
	b, err := decodeHex("prevhash", s, 32, 32)
	if err != nil {
		return out, err
	}
	for i := 0; i < 32; i += 4 {
		out[i], out[i+1], out[i+2], out[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	return out, nil
}

// prevHashToStratum is the inverse of prevHashToHeader, for test pools that
// must send jobs the way real pools do.
func prevHashToStratum(h [32]byte) string {
	var b [32]byte
	for i := 0; i < 32; i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = h[i+3], h[i+2], h[i+1], h[i]
	}
	return hex.EncodeToString(b[:])
}

// putHeaderUint32 writes a Stratum big-endian word into the little-endian
// header layout.
func putHeaderUint32(dst []byte, v uint32) { binary.LittleEndian.PutUint32(dst, v) }

func clip(s string) string { return safetext.Clip(s, 27) }
