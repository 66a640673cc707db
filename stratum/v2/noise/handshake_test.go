package noise

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/stretchr/testify/require"

	"clminer/stratum/v2/codec"
)

var now = time.Unix(1_800_000_000, 0)

// testPool is a responder whose certificate the authority signed for
// [from, until].
func testPool(t testing.TB, from, until time.Time) (Responder, AuthorityKey, *btcec.PrivateKey) {
	t.Helper()
	auth, err := btcec.NewPrivateKey()
	require.NoError(t, err)
	static, err := NewKey()
	require.NoError(t, err)
	x, err := XOnly(static.Pub)
	require.NoError(t, err)
	cert, err := SignCertificate(auth, x, from, until)
	require.NoError(t, err)
	return Responder{Static: static, Cert: cert}, AuthorityOf(auth), auth
}

// handshake runs both sides over a pipe.
func handshake(t *testing.T, r Responder, pinned AuthorityKey, at time.Time) (client, server *Conn, err error) {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	srvErr := make(chan error, 1)
	go func() {
		var err error
		server, err = r.Accept(b, 0)
		if err != nil {
			b.Close()
		}
		srvErr <- err
	}()
	client, _, err = Client(a, pinned, at, 0)
	if err != nil {
		a.Close()
	}
	<-srvErr
	return client, server, err
}

func TestHandshakeAndTransport(t *testing.T) {
	r, auth, _ := testPool(t, now.Add(-time.Hour), now.Add(time.Hour))
	c, s, err := handshake(t, r, auth, now)
	require.NoError(t, err)
	// Sizes around the chunk boundary, and a payload of several chunks.
	for _, n := range []int{0, 1, MaxChunk - 1, MaxChunk, MaxChunk + 1, 3*MaxChunk + 7} {
		p := bytes.Repeat([]byte{byte(n)}, n)
		h := codec.Header{MsgType: 0x7e, Length: uint32(n)}
		done := make(chan error, 1)
		go func() { done <- c.WriteFrame(h, p) }()
		gh, gp, err := s.ReadFrame()
		require.NoError(t, err, n)
		require.NoError(t, <-done)
		require.Equal(t, h, gh)
		require.True(t, bytes.Equal(p, gp))
		// and back
		go func() { done <- s.WriteFrame(h, p) }()
		gh, gp, err = c.ReadFrame()
		require.NoError(t, err)
		require.NoError(t, <-done)
		require.Equal(t, h, gh)
		require.True(t, bytes.Equal(p, gp))
	}
}

func TestCiphertextLen(t *testing.T) {
	require.Equal(t, 0, CiphertextLen(0))
	require.Equal(t, 17, CiphertextLen(1))
	require.Equal(t, MaxCiphertext, CiphertextLen(MaxChunk))
	require.Equal(t, MaxCiphertext+17, CiphertextLen(MaxChunk+1))
}

func TestHandshakeRejects(t *testing.T) {
	r, auth, _ := testPool(t, now.Add(-time.Hour), now.Add(time.Hour))
	_, other, _ := testPool(t, now.Add(-time.Hour), now.Add(time.Hour))
	_, _, err := handshake(t, r, other, now)
	require.ErrorIs(t, err, ErrAuthority, "wrong pinned key")
	_, _, err = handshake(t, r, auth, now.Add(2*time.Hour))
	require.ErrorIs(t, err, ErrCertExpired)
	_, _, err = handshake(t, r, auth, now.Add(-2*time.Hour))
	require.ErrorIs(t, err, ErrCertFuture)
	bad := r
	bad.Cert.Version = 1
	_, _, err = handshake(t, bad, auth, now)
	require.ErrorIs(t, err, ErrCertVersion)
	// A certificate by the right authority but for another static key.
	r2, _, _ := testPool(t, now.Add(-time.Hour), now.Add(time.Hour))
	stolen := Responder{Static: r2.Static, Cert: r.Cert}
	_, _, err = handshake(t, stolen, auth, now)
	require.ErrorIs(t, err, ErrAuthority)
}

// Every bit of act 2 matters: a flipped byte in the static key or the
// certificate fails its MAC; one in the ephemeral key changes the keys, so
// the next MAC fails.
func TestAct2Tampered(t *testing.T) {
	r, auth, _ := testPool(t, now.Add(-time.Hour), now.Add(time.Hour))
	fixed, err := NewKey()
	require.NoError(t, err)
	in := newInitiator(auth, fixed)
	a1, err := in.Act1()
	require.NoError(t, err)
	e, err := NewKey()
	require.NoError(t, err)
	reply, _, _, err := r.act2With(a1, e)
	require.NoError(t, err)
	require.Len(t, reply, Act2Len)
	for i := range reply {
		in := newInitiator(auth, fixed)
		_, _ = in.Act1()
		m := bytes.Clone(reply)
		m[i] ^= 0x01
		_, err := in.Act2(m, now)
		require.Error(t, err, "byte %d", i)
	}
	for n := 0; n < Act2Len; n += 17 {
		in := newInitiatorT(t, auth)
		_, _ = in.Act1()
		_, err := in.Act2(reply[:n], now)
		require.ErrorContains(t, err, "want 234")
	}
	in = newInitiator(auth, fixed)
	_, _ = in.Act1()
	_, err = in.Act2(reply, now)
	require.NoError(t, err)
}

func newInitiatorT(t *testing.T, auth AuthorityKey) *Initiator {
	in, err := NewInitiator(auth)
	require.NoError(t, err)
	return in
}

func TestTruncatedHandshake(t *testing.T) {
	_, auth, _ := testPool(t, now.Add(-time.Hour), now.Add(time.Hour))
	a, b := net.Pipe()
	go func() {
		buf := make([]byte, Act1Len)
		_, _ = io.ReadFull(b, buf)
		_, _ = b.Write(make([]byte, 100))
		b.Close()
	}()
	_, _, err := Client(a, auth, now, 0)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.ErrorContains(t, err, "does not speak Stratum V2")
}

// pair returns two Conns sharing keys, over a buffer: bytes written by w
// are read by r.
func pair(maxPayload int) (w *Conn, r *Conn, wire *bytes.Buffer) {
	var k1 [32]byte
	k1[0] = 9
	s, rc := &cipherState{}, &cipherState{}
	s.init(k1)
	rc.init(k1)
	wire = &bytes.Buffer{}
	return NewConn(wire, s, &cipherState{}, maxPayload), NewConn(wire, &cipherState{}, rc, maxPayload), wire
}

func TestFrameErrors(t *testing.T) {
	frame := func() []byte {
		w, _, wire := pair(0)
		require.NoError(t, w.WriteFrame(codec.Header{MsgType: 1, Length: 5}, []byte("hello")))
		return bytes.Clone(wire.Bytes())
	}
	good := frame()
	require.Len(t, good, EncHeaderLen+5+MACLen)
	read := func(b []byte, max int) error {
		_, r, wire := pair(max)
		wire.Write(b)
		_, _, err := r.ReadFrame()
		return err
	}
	require.NoError(t, read(good, 0))
	for n := 0; n < len(good); n++ {
		err := read(good[:n], 0)
		require.Error(t, err, "cut at %d", n)
		if n > 0 {
			require.ErrorContains(t, err, "truncated frame", "cut at %d", n)
		}
	}
	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 0x80
		require.ErrorIs(t, read(b, 0), ErrDecrypt, "byte %d", i)
	}
	require.ErrorIs(t, read(good, 4), ErrTooLarge)
	// After a failed MAC nothing more is read as valid: the nonce did not
	// move, and the stream is out of step.
	_, r, wire := pair(0)
	b := bytes.Clone(good)
	b[EncHeaderLen] ^= 1
	wire.Write(b)
	wire.Write(good)
	_, _, err := r.ReadFrame()
	require.True(t, errors.Is(err, ErrDecrypt))
}

// FuzzReadFrame: any bytes read as a frame stream give frames or an error;
// never a panic, and never a buffer larger than the limit.
func FuzzReadFrame(f *testing.F) {
	w, _, wire := pair(0)
	_ = w.WriteFrame(codec.Header{MsgType: 1, Length: 5}, []byte("hello"))
	_ = w.WriteFrame(codec.Header{ExtensionType: codec.ChannelBit, MsgType: codec.TypeSetTarget, Length: 36}, make([]byte, 36))
	f.Add(bytes.Clone(wire.Bytes()))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, r, wire := pair(1 << 16)
		wire.Write(b)
		for i := 0; i < 8; i++ {
			h, p, err := r.ReadFrame()
			if err != nil {
				return
			}
			if int(h.Length) != len(p) || len(p) > 1<<16 {
				t.Fatalf("frame of %d bytes, header %d", len(p), h.Length)
			}
			_, _ = codec.Decode(h, p)
		}
	})
}

// FuzzAct2: any 234 bytes given to an initiator end in a Result only when
// they verify; otherwise an error, never a panic.
func FuzzAct2(f *testing.F) {
	r, auth, _ := testPool(f, now.Add(-time.Hour), now.Add(time.Hour))
	fixed, err := NewKey()
	require.NoError(f, err)
	in := newInitiator(auth, fixed)
	a1, _ := in.Act1()
	reply, _, _, err := r.act2(a1)
	require.NoError(f, err)
	f.Add(reply)
	f.Add(make([]byte, Act2Len))
	f.Fuzz(func(t *testing.T, msg []byte) {
		in := newInitiator(auth, fixed)
		if _, err := in.Act1(); err != nil {
			t.Fatal(err)
		}
		res, err := in.Act2(msg, now)
		if err == nil && !bytes.Equal(msg, reply) {
			t.Fatalf("forged reply accepted (server key %x)", res.ServerKey)
		}
	})
}
