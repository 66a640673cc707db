package noise

import (
	"fmt"
	"io"
	"time"
)

// Initiator is the miner's side of a handshake in progress.
type Initiator struct {
	sym       *symmetric
	e         Key
	authority AuthorityKey
}

// NewInitiator starts a handshake that will trust only authority.
func NewInitiator(authority AuthorityKey) (*Initiator, error) {
	e, err := NewKey()
	if err != nil {
		return nil, err
	}
	return newInitiator(authority, e), nil
}

func newInitiator(authority AuthorityKey, e Key) *Initiator {
	return &Initiator{sym: newSymmetric(), e: e, authority: authority}
}

// Act1 is `-> e`.
func (in *Initiator) Act1() ([]byte, error) {
	in.sym.mixHash(in.e.Pub[:])
	ct, err := in.sym.encryptAndHash(nil)
	if err != nil {
		return nil, err
	}
	return append(append([]byte(nil), in.e.Pub[:]...), ct...), nil
}

// Result is what a completed handshake gives the initiator.
type Result struct {
	Send, Recv  *cipherState
	ServerKey   [32]byte // x-only static key
	Certificate Certificate
}

// Act2 reads `<- e, ee, s, es, SIGNATURE_NOISE_MESSAGE` and checks the
// certificate at time now.
func (in *Initiator) Act2(msg []byte, now time.Time) (*Result, error) {
	if len(msg) != Act2Len {
		return nil, fmt.Errorf("sv2 noise: handshake reply is %d bytes, want %d", len(msg), Act2Len)
	}
	var re, rs [64]byte
	copy(re[:], msg[:64])
	in.sym.mixHash(re[:])
	dh, err := ecdh(in.e, re, true)
	if err != nil {
		return nil, err
	}
	in.sym.mixKey(dh)
	spt, err := in.sym.decryptAndHash(msg[64 : 64+80])
	if err != nil {
		return nil, fmt.Errorf("sv2 noise: server static key: %w", err)
	}
	copy(rs[:], spt)
	dh, err = ecdh(in.e, rs, true)
	if err != nil {
		return nil, err
	}
	in.sym.mixKey(dh)
	cpt, err := in.sym.decryptAndHash(msg[64+80:])
	if err != nil {
		return nil, fmt.Errorf("sv2 noise: server certificate: %w", err)
	}
	cert, err := parseCert(cpt)
	if err != nil {
		return nil, err
	}
	x, err := XOnly(rs)
	if err != nil {
		return nil, err
	}
	if err := cert.Verify(in.authority, x, now); err != nil {
		return nil, err
	}
	c1, c2 := in.sym.split()
	return &Result{Send: c1, Recv: c2, ServerKey: x, Certificate: cert}, nil
}

// Client runs the initiator's handshake over rw (already connected) and
// returns the encrypted connection. Deadlines are the caller's (set them on
// the net.Conn).
func Client(rw io.ReadWriter, authority AuthorityKey, now time.Time, maxPayload int) (*Conn, *Result, error) {
	in, err := NewInitiator(authority)
	if err != nil {
		return nil, nil, err
	}
	a1, err := in.Act1()
	if err != nil {
		return nil, nil, err
	}
	if _, err := rw.Write(a1); err != nil {
		return nil, nil, fmt.Errorf("sv2 noise: sending handshake: %w", err)
	}
	msg := make([]byte, Act2Len)
	if _, err := io.ReadFull(rw, msg); err != nil {
		return nil, nil, fmt.Errorf("sv2 noise: reading handshake reply: %w (the server closed it or does not speak Stratum V2 with encryption)", err)
	}
	res, err := in.Act2(msg, now)
	if err != nil {
		return nil, nil, err
	}
	return NewConn(rw, res.Send, res.Recv, maxPayload), res, nil
}

// Responder holds a server's static key and certificate.
type Responder struct {
	Static Key
	Cert   Certificate
}

// Accept runs the responder's handshake over rw.
func (r Responder) Accept(rw io.ReadWriter, maxPayload int) (*Conn, error) {
	msg := make([]byte, Act1Len)
	if _, err := io.ReadFull(rw, msg); err != nil {
		return nil, fmt.Errorf("sv2 noise: reading handshake: %w", err)
	}
	reply, send, recv, err := r.act2(msg)
	if err != nil {
		return nil, err
	}
	if _, err := rw.Write(reply); err != nil {
		return nil, err
	}
	return NewConn(rw, send, recv, maxPayload), nil
}

func (r Responder) act2(act1 []byte) (reply []byte, send, recv *cipherState, err error) {
	e, err := NewKey()
	if err != nil {
		return nil, nil, nil, err
	}
	return r.act2With(act1, e)
}

func (r Responder) act2With(act1 []byte, e Key) (reply []byte, send, recv *cipherState, err error) {
	sym := newSymmetric()
	var re [64]byte
	copy(re[:], act1)
	sym.mixHash(re[:])
	if _, err := sym.decryptAndHash(nil); err != nil {
		return nil, nil, nil, err
	}
	out := append([]byte(nil), e.Pub[:]...)
	sym.mixHash(e.Pub[:])
	dh, err := ecdh(e, re, false)
	if err != nil {
		return nil, nil, nil, err
	}
	sym.mixKey(dh)
	ct, err := sym.encryptAndHash(r.Static.Pub[:])
	if err != nil {
		return nil, nil, nil, err
	}
	out = append(out, ct...)
	dh, err = ecdh(r.Static, re, false)
	if err != nil {
		return nil, nil, nil, err
	}
	sym.mixKey(dh)
	ct, err = sym.encryptAndHash(r.Cert.marshal())
	if err != nil {
		return nil, nil, nil, err
	}
	out = append(out, ct...)
	c1, c2 := sym.split()
	return out, c2, c1, nil
}
