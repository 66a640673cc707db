package noise

import (
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ellswift"
	"golang.org/x/crypto/chacha20poly1305"
)

// ProtocolName is the Noise protocol name hashed into the handshake.
const ProtocolName = "Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256"

// Sizes on the wire.
const (
	EllSwiftLen = 64
	MACLen      = 16
	// CertLen is SIGNATURE_NOISE_MESSAGE: version U16, valid_from U32,
	// not_valid_after U32, signature 64.
	CertLen = 74
	// Act1Len is the initiator's ephemeral key.
	Act1Len = EllSwiftLen
	// Act2Len is the responder's e, encrypted s, encrypted certificate.
	// (The spec's "170" predates 64-byte EllSwift keys: 64 + 80 + 90.)
	Act2Len = EllSwiftLen + EllSwiftLen + MACLen + CertLen + MACLen
	// MaxCiphertext is one Noise transport message.
	MaxCiphertext = 65535
	// MaxChunk is the plaintext carried by one MaxCiphertext.
	MaxChunk = MaxCiphertext - MACLen
)

// ErrDecrypt: a MAC did not verify; the connection is tampered with or out
// of step, and must be closed.
var ErrDecrypt = errors.New("sv2 noise: message authentication failed")

// cipherState is Noise's CipherState over ChaCha20-Poly1305.
type cipherState struct {
	aead cipher.AEAD
	n    uint64
}

func (c *cipherState) init(k [32]byte) {
	c.aead, _ = chacha20poly1305.New(k[:]) // a 32-byte key never fails
	c.n = 0
}

func (c *cipherState) nonce() ([]byte, error) {
	if c.n == ^uint64(0) {
		return nil, errors.New("sv2 noise: nonce space exhausted; reconnect")
	}
	var nb [12]byte
	binary.LittleEndian.PutUint64(nb[4:], c.n)
	return nb[:], nil
}

func (c *cipherState) encrypt(dst, ad, pt []byte) ([]byte, error) {
	if c.aead == nil {
		return append(dst, pt...), nil
	}
	nb, err := c.nonce()
	if err != nil {
		return nil, err
	}
	c.n++
	return c.aead.Seal(dst, nb, pt, ad), nil
}

func (c *cipherState) decrypt(dst, ad, ct []byte) ([]byte, error) {
	if c.aead == nil {
		return append(dst, ct...), nil
	}
	nb, err := c.nonce()
	if err != nil {
		return nil, err
	}
	if len(ct) < MACLen {
		return nil, ErrDecrypt
	}
	out, err := c.aead.Open(dst, nb, ct, ad)
	if err != nil {
		return nil, ErrDecrypt
	}
	c.n++
	return out, nil
}

// symmetric is Noise's SymmetricState.
type symmetric struct {
	ck, h [32]byte
	cs    cipherState
}

func newSymmetric() *symmetric {
	s := &symmetric{}
	s.h = sha256.Sum256([]byte(ProtocolName))
	s.ck = s.h
	s.h = sha256.Sum256(s.h[:]) // MixHash of the empty prologue
	return s
}

func (s *symmetric) mixHash(data []byte) {
	hh := sha256.New()
	hh.Write(s.h[:])
	hh.Write(data)
	copy(s.h[:], hh.Sum(nil))
}

func hmacHash(key, data []byte) (out [32]byte) {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	copy(out[:], m.Sum(nil))
	return out
}

// hkdf2 is the spec's HKDF with two outputs and an empty info.
func hkdf2(ck [32]byte, ikm []byte) (o1, o2 [32]byte) {
	tmp := hmacHash(ck[:], ikm)
	o1 = hmacHash(tmp[:], []byte{1})
	o2 = hmacHash(tmp[:], append(o1[:], 2))
	return o1, o2
}

func (s *symmetric) mixKey(ikm []byte) {
	var k [32]byte
	s.ck, k = hkdf2(s.ck, ikm)
	s.cs.init(k)
}

func (s *symmetric) encryptAndHash(pt []byte) ([]byte, error) {
	ct, err := s.cs.encrypt(nil, s.h[:], pt)
	if err != nil {
		return nil, err
	}
	s.mixHash(ct)
	return ct, nil
}

func (s *symmetric) decryptAndHash(ct []byte) ([]byte, error) {
	pt, err := s.cs.decrypt(nil, s.h[:], ct)
	if err != nil {
		return nil, err
	}
	s.mixHash(ct)
	return pt, nil
}

// split returns the initiator->responder and responder->initiator states.
func (s *symmetric) split() (c1, c2 *cipherState) {
	k1, k2 := hkdf2(s.ck, nil)
	c1, c2 = &cipherState{}, &cipherState{}
	c1.init(k1)
	c2.init(k2)
	return c1, c2
}

// Key is an ElligatorSwift key pair.
type Key struct {
	Priv *btcec.PrivateKey
	Pub  [64]byte
}

// NewKey makes a fresh key pair (ellswift_create).
func NewKey() (Key, error) {
	priv, pub, err := ellswift.EllswiftCreate()
	if err != nil {
		return Key{}, fmt.Errorf("sv2 noise: key: %w", err)
	}
	return Key{Priv: priv, Pub: pub}, nil
}

// ecdh is the spec's ECDH(k, rk) = v2_ecdh(k, ellswift_k, rk, initiator).
func ecdh(k Key, remote [64]byte, initiator bool) ([]byte, error) {
	h, err := ellswift.V2Ecdh(k.Priv, remote, k.Pub, initiator)
	if err != nil {
		return nil, fmt.Errorf("sv2 noise: peer key is not a curve point: %w", err)
	}
	return h[:], nil
}

// XOnly decodes an ElligatorSwift encoding to its 32-byte x coordinate.
func XOnly(enc [64]byte) ([32]byte, error) {
	var u, t btcec.FieldVal
	if u.SetByteSlice(enc[:32]) {
		u.Normalize()
	}
	if t.SetByteSlice(enc[32:]) {
		t.Normalize()
	}
	x, err := ellswift.XSwiftEC(&u, &t)
	if err != nil {
		return [32]byte{}, fmt.Errorf("sv2 noise: bad ElligatorSwift key: %w", err)
	}
	x.Normalize()
	return *x.Bytes(), nil
}
