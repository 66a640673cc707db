package noise

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/btcsuite/btcd/address/v2/base58"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
)

// CertVersion is the only certificate format defined.
const CertVersion = 0

// Certificate errors: each says what to check.
var (
	ErrAuthority   = errors.New("sv2: the pool's certificate is not signed by the pinned authority key (wrong key in the URL, or not that pool)")
	ErrCertExpired = errors.New("sv2: the pool's certificate has expired")
	ErrCertFuture  = errors.New("sv2: the pool's certificate is not valid yet (check this machine's clock)")
	ErrCertVersion = errors.New("sv2: unknown certificate version")
)

// Certificate is SIGNATURE_NOISE_MESSAGE: the authority's signature over
// the server's static key and a validity window.
type Certificate struct {
	Version       uint16
	ValidFrom     uint32 // unix seconds
	NotValidAfter uint32
	Signature     [64]byte
}

func (c Certificate) marshal() []byte {
	b := make([]byte, 0, CertLen)
	b = binary.LittleEndian.AppendUint16(b, c.Version)
	b = binary.LittleEndian.AppendUint32(b, c.ValidFrom)
	b = binary.LittleEndian.AppendUint32(b, c.NotValidAfter)
	return append(b, c.Signature[:]...)
}

func parseCert(b []byte) (Certificate, error) {
	var c Certificate
	if len(b) != CertLen {
		return c, fmt.Errorf("sv2 noise: certificate is %d bytes, want %d", len(b), CertLen)
	}
	c.Version = binary.LittleEndian.Uint16(b)
	c.ValidFrom = binary.LittleEndian.Uint32(b[2:])
	c.NotValidAfter = binary.LittleEndian.Uint32(b[6:])
	copy(c.Signature[:], b[10:])
	return c, nil
}

// digest is m = SHA-256(version || valid_from || not_valid_after || server key).
func (c Certificate) digest(server [32]byte) [32]byte {
	b := c.marshal()[:10]
	return sha256.Sum256(append(b, server[:]...))
}

// SignCertificate issues a certificate for the server's x-only static key.
func SignCertificate(authority *btcec.PrivateKey, server [32]byte, from, until time.Time) (Certificate, error) {
	c := Certificate{Version: CertVersion, ValidFrom: uint32(from.Unix()), NotValidAfter: uint32(until.Unix())}
	m := c.digest(server)
	sig, err := schnorr.Sign(authority, m[:])
	if err != nil {
		return c, err
	}
	copy(c.Signature[:], sig.Serialize())
	return c, nil
}

// Verify checks the certificate for server's key against the authority at
// time now.
func (c Certificate) Verify(authority AuthorityKey, server [32]byte, now time.Time) error {
	if c.Version != CertVersion {
		return fmt.Errorf("%w %d", ErrCertVersion, c.Version)
	}
	pub, err := schnorr.ParsePubKey(authority[:])
	if err != nil {
		return fmt.Errorf("sv2: pinned authority key: %w", err)
	}
	sig, err := schnorr.ParseSignature(c.Signature[:])
	if err != nil {
		return ErrAuthority
	}
	m := c.digest(server)
	if !sig.Verify(m[:], pub) {
		return ErrAuthority
	}
	t := now.Unix()
	if t < int64(c.ValidFrom) {
		return fmt.Errorf("%w: valid from %s", ErrCertFuture, time.Unix(int64(c.ValidFrom), 0).UTC().Format(time.RFC3339))
	}
	if t > int64(c.NotValidAfter) {
		return fmt.Errorf("%w on %s", ErrCertExpired, time.Unix(int64(c.NotValidAfter), 0).UTC().Format(time.RFC3339))
	}
	return nil
}

// AuthorityKey is a pool authority's x-only public key.
type AuthorityKey [32]byte

// authorityPrefix is the LE U16 version 1 that prefixes the key (§4.7).
var authorityPrefix = []byte{1, 0}

// String is the base58check form used in URLs.
func (k AuthorityKey) String() string {
	b := append(append([]byte(nil), authorityPrefix...), k[:]...)
	sum := sha256d(b)
	return base58.Encode(append(b, sum[:4]...))
}

func sha256d(b []byte) [32]byte {
	h := sha256.Sum256(b)
	return sha256.Sum256(h[:])
}

// ParseAuthorityKey decodes the base58check key of a stratum2+tcp URL.
func ParseAuthorityKey(s string) (AuthorityKey, error) {
	var k AuthorityKey
	b := base58.Decode(s)
	if len(b) != 2+32+4 {
		return k, fmt.Errorf("sv2 authority key %q: not a base58check 2-byte prefix + 32-byte key (%d bytes decoded)", s, len(b))
	}
	sum := sha256d(b[:34])
	if !bytes.Equal(sum[:4], b[34:]) {
		return k, fmt.Errorf("sv2 authority key %q: checksum mismatch (mistyped?)", s)
	}
	if !bytes.Equal(b[:2], authorityPrefix) {
		return k, fmt.Errorf("sv2 authority key %q: version prefix %x, want 0100", s, b[:2])
	}
	copy(k[:], b[2:34])
	if _, err := schnorr.ParsePubKey(k[:]); err != nil {
		return k, fmt.Errorf("sv2 authority key %q: not a secp256k1 x coordinate", s)
	}
	return k, nil
}

// AuthorityOf is the x-only key of priv.
func AuthorityOf(priv *btcec.PrivateKey) AuthorityKey {
	var k AuthorityKey
	copy(k[:], schnorr.SerializePubKey(priv.PubKey()))
	return k
}
