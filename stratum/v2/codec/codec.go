package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// HeaderLen is the plaintext frame header: extension_type U16, msg_type U8,
// msg_length U24.
const HeaderLen = 6

// MaxPayload is the largest msg_length a U24 can carry.
const MaxPayload = 1<<24 - 1

// ChannelBit is extension_type's channel_msg bit: the payload starts with a
// U32 channel_id.
const ChannelBit = 0x8000

// Header is a frame header.
type Header struct {
	ExtensionType uint16
	MsgType       uint8
	Length        uint32 // of the payload, < 2^24
}

// Append writes h.
func (h Header) Append(b []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, h.ExtensionType)
	return append(b, h.MsgType, byte(h.Length), byte(h.Length>>8), byte(h.Length>>16))
}

// ParseHeader reads a six-byte header.
func ParseHeader(b []byte) (Header, error) {
	if len(b) != HeaderLen {
		return Header{}, fmt.Errorf("sv2 frame header: %d bytes, want %d", len(b), HeaderLen)
	}
	return Header{
		ExtensionType: binary.LittleEndian.Uint16(b),
		MsgType:       b[2],
		Length:        uint32(b[3]) | uint32(b[4])<<8 | uint32(b[5])<<16,
	}, nil
}

// ErrShort is wrapped by every decoding error caused by a payload that ends
// inside a field.
var ErrShort = errors.New("payload ends inside a field")

// reader consumes a payload, remembering the first error: decoders read
// every field and check once at the end.
type reader struct {
	msg   string
	b     []byte
	err   error
	field string
}

func (r *reader) take(field string, n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.err = fmt.Errorf("sv2 %s.%s: %w (%d bytes left, need %d)", r.msg, field, ErrShort, len(r.b), n)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8(f string) uint8 {
	if b := r.take(f, 1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16(f string) uint16 {
	if b := r.take(f, 2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (r *reader) u32(f string) uint32 {
	if b := r.take(f, 4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64(f string) uint64 {
	if b := r.take(f, 8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (r *reader) f32(f string) float32 { return math.Float32frombits(r.u32(f)) }

func (r *reader) boolean(f string) bool { return r.u8(f)&1 == 1 }

// bytes16 reads a B0_64K.
func (r *reader) bytes16(f string) []byte {
	n := int(r.u16(f))
	return append([]byte(nil), r.take(f, n)...)
}

// seqU256 reads a SEQ0_255[U256] of at most max elements.
func (r *reader) seqU256(f string, max int) [][32]byte {
	n := int(r.u8(f))
	if r.err == nil && n > max {
		r.err = fmt.Errorf("sv2 %s.%s: %d elements is over %d", r.msg, f, n, max)
		return nil
	}
	if r.err != nil {
		return nil
	}
	out := make([][32]byte, 0, n)
	for range n {
		v := r.u256(f)
		if r.err != nil {
			return nil
		}
		out = append(out, v)
	}
	return out
}

func (r *reader) u256(f string) (v [32]byte) {
	if b := r.take(f, 32); b != nil {
		copy(v[:], b)
	}
	return v
}

// bytes8 reads a U8-length-prefixed field of at most max bytes.
func (r *reader) bytes8(f string, max int) []byte {
	n := int(r.u8(f))
	if r.err == nil && n > max {
		r.err = fmt.Errorf("sv2 %s.%s: length %d is over %d", r.msg, f, n, max)
		return nil
	}
	return append([]byte(nil), r.take(f, n)...)
}

func (r *reader) str(f string) string { return string(r.bytes8(f, 255)) }

// optU32 reads OPTION[U32].
func (r *reader) optU32(f string) *uint32 {
	switch n := r.u8(f); {
	case r.err != nil:
		return nil
	case n == 0:
		return nil
	case n == 1:
		v := r.u32(f)
		if r.err != nil {
			return nil
		}
		return &v
	default:
		r.err = fmt.Errorf("sv2 %s.%s: OPTION with %d elements", r.msg, f, n)
		return nil
	}
}

// done checks that the payload was consumed exactly.
func (r *reader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("sv2 %s: %d trailing bytes", r.msg, len(r.b))
	}
	return r.err
}

// writer builds a payload, remembering the first field too long for its type.
type writer struct {
	msg string
	b   []byte
	err error
}

func (w *writer) u8(v uint8)   { w.b = append(w.b, v) }
func (w *writer) u16(v uint16) { w.b = binary.LittleEndian.AppendUint16(w.b, v) }
func (w *writer) u32(v uint32) { w.b = binary.LittleEndian.AppendUint32(w.b, v) }
func (w *writer) u64(v uint64) { w.b = binary.LittleEndian.AppendUint64(w.b, v) }
func (w *writer) f32(v float32) {
	w.u32(math.Float32bits(v))
}
func (w *writer) u256(v [32]byte) { w.b = append(w.b, v[:]...) }

func (w *writer) boolean(v bool) {
	if v {
		w.u8(1)
	} else {
		w.u8(0)
	}
}

func (w *writer) bytes16(f string, v []byte) {
	if len(v) > 0xffff {
		if w.err == nil {
			w.err = fmt.Errorf("sv2 %s.%s: %d bytes is over 65535", w.msg, f, len(v))
		}
		return
	}
	w.u16(uint16(len(v)))
	w.b = append(w.b, v...)
}

func (w *writer) seqU256(f string, v [][32]byte, max int) {
	if len(v) > max {
		if w.err == nil {
			w.err = fmt.Errorf("sv2 %s.%s: %d elements is over %d", w.msg, f, len(v), max)
		}
		return
	}
	w.u8(uint8(len(v)))
	for _, x := range v {
		w.u256(x)
	}
}

func (w *writer) bytes8(f string, v []byte, max int) {
	if len(v) > max {
		if w.err == nil {
			w.err = fmt.Errorf("sv2 %s.%s: %d bytes is over %d", w.msg, f, len(v), max)
		}
		return
	}
	w.u8(uint8(len(v)))
	w.b = append(w.b, v...)
}

func (w *writer) str(f, v string) { w.bytes8(f, []byte(v), 255) }

func (w *writer) optU32(v *uint32) {
	if v == nil {
		w.u8(0)
		return
	}
	w.u8(1)
	w.u32(*v)
}
