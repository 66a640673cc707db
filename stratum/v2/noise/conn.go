package noise

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"clminer/stratum/v2/codec"
)

// EncHeaderLen is a sealed frame header.
const EncHeaderLen = codec.HeaderLen + MACLen

// DefaultMaxPayload bounds a received frame when the caller gives no limit:
// far above any mining message (a NewExtendedMiningJob is two B0_64K and a
// merkle path), far below U24's 16 MiB.
const DefaultMaxPayload = 1 << 20

// ErrTooLarge: the peer announced a frame over the reader's limit.
var ErrTooLarge = errors.New("sv2: frame over the size limit")

// Conn is the encrypted transport: each frame is a sealed header, then the
// payload sealed in chunks of at most MaxChunk plaintext bytes.
type Conn struct {
	rw         io.ReadWriter
	maxPayload int

	wmu  sync.Mutex
	send *cipherState
	wbuf []byte

	recv *cipherState // used by one reader at a time
	rbuf []byte       // ciphertext
	pbuf []byte       // plaintext (AEADs refuse inexactly overlapping buffers)
}

// NewConn wraps rw with the transport cipher states.
func NewConn(rw io.ReadWriter, send, recv *cipherState, maxPayload int) *Conn {
	if maxPayload <= 0 || maxPayload > codec.MaxPayload {
		maxPayload = DefaultMaxPayload
	}
	return &Conn{rw: rw, send: send, recv: recv, maxPayload: maxPayload}
}

// CiphertextLen is the payload's length on the wire (the spec's
// pt_len_to_ct_len).
func CiphertextLen(pt int) int {
	n := pt / MaxChunk * MaxCiphertext
	if r := pt % MaxChunk; r > 0 {
		n += r + MACLen
	}
	return n
}

// WriteFrame seals and sends one frame. Safe for concurrent use.
func (c *Conn) WriteFrame(h codec.Header, payload []byte) error {
	if int(h.Length) != len(payload) {
		return fmt.Errorf("sv2: header length %d, payload %d", h.Length, len(payload))
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b, err := c.send.encrypt(c.wbuf[:0], nil, h.Append(nil))
	if err != nil {
		return err
	}
	for p := payload; len(p) > 0; {
		n := min(len(p), MaxChunk)
		if b, err = c.send.encrypt(b, nil, p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	c.wbuf = b[:0]
	_, err = c.rw.Write(b)
	return err
}

// WriteMessage encodes and sends m.
func (c *Conn) WriteMessage(m codec.Message) error {
	h, p, err := codec.Encode(m)
	if err != nil {
		return err
	}
	return c.WriteFrame(h, p)
}

// ReadFrame reads and opens one frame. The payload is valid until the next
// call. Not safe for concurrent use.
func (c *Conn) ReadFrame() (codec.Header, []byte, error) {
	var hb [EncHeaderLen]byte
	if _, err := io.ReadFull(c.rw, hb[:]); err != nil {
		return codec.Header{}, nil, readErr("frame header", err)
	}
	pt, err := c.recv.decrypt(nil, nil, hb[:])
	if err != nil {
		return codec.Header{}, nil, fmt.Errorf("sv2 frame header: %w", err)
	}
	h, err := codec.ParseHeader(pt)
	if err != nil {
		return codec.Header{}, nil, err
	}
	if int(h.Length) > c.maxPayload {
		return h, nil, fmt.Errorf("%w: %d bytes announced, limit %d", ErrTooLarge, h.Length, c.maxPayload)
	}
	ctLen := CiphertextLen(int(h.Length))
	if cap(c.rbuf) < ctLen {
		c.rbuf = make([]byte, ctLen)
	}
	ct := c.rbuf[:ctLen]
	if _, err := io.ReadFull(c.rw, ct); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // the header promised a payload
		}
		return h, nil, readErr("frame payload", err)
	}
	if cap(c.pbuf) < int(h.Length) {
		c.pbuf = make([]byte, 0, h.Length)
	}
	out := c.pbuf[:0]
	for p := ct; len(p) > 0; {
		n := min(len(p), MaxCiphertext)
		if out, err = c.recv.decrypt(out, nil, p[:n]); err != nil {
			return h, nil, fmt.Errorf("sv2 frame payload: %w", err)
		}
		p = p[n:]
	}
	return h, out, nil
}

// ReadMessage reads the next frame and decodes it. Frames of unknown
// extensions or types come back as codec.ErrUnknown with the header, for
// the caller to skip.
func (c *Conn) ReadMessage() (codec.Message, codec.Header, error) {
	h, p, err := c.ReadFrame()
	if err != nil {
		return nil, h, err
	}
	m, err := codec.Decode(h, p)
	return m, h, err
}

func readErr(what string, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("sv2: connection closed inside a %s (truncated frame): %w", what, err)
	}
	return fmt.Errorf("sv2: reading %s: %w", what, err)
}
