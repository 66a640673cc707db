package noise

import (
	"encoding/csv"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/stretchr/testify/require"

	"clminer/internal/testkit"
)

// readCSV reads one of BIP 324/340's published vector files from the
// project's vector folder (testkit.VectorsDir: CI names it; they are not
// copied into the repository).
func readCSV(t *testing.T, name string) []map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(testkit.VectorsDir(t, filepath.Dir(name)), filepath.Base(name)))
	require.NoError(t, err)
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	var out []map[string]string
	for _, r := range rows[1:] {
		m := map[string]string{}
		for i, k := range rows[0] {
			m[k] = r[i]
		}
		out = append(out, m)
	}
	return out
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	return b
}

func to64(t *testing.T, s string) (v [64]byte) {
	require.Equal(t, 64, copy(v[:], unhex(t, s)))
	return v
}

// BIP 324's packet vectors fix ElligatorSwift decoding (mid_x_theirs) and
// the role-dependent x-only ECDH (mid_shared_secret) that the handshake's
// ECDH is defined as.
func TestBIP324SharedSecret(t *testing.T) {
	rows := readCSV(t, "bip324/packet_encoding_test_vectors.csv")
	require.NotEmpty(t, rows)
	for _, r := range rows {
		priv, _ := btcec.PrivKeyFromBytes(unhex(t, r["in_priv_ours"]))
		ours, theirs := to64(t, r["in_ellswift_ours"]), to64(t, r["in_ellswift_theirs"])
		x, err := XOnly(theirs)
		require.NoError(t, err)
		require.Equal(t, r["mid_x_theirs"], hex.EncodeToString(x[:]), "row %s", r["in_idx"])
		xo, err := XOnly(ours)
		require.NoError(t, err)
		require.Equal(t, r["mid_x_ours"], hex.EncodeToString(xo[:]), "row %s", r["in_idx"])
		got, err := ecdh(Key{Priv: priv, Pub: ours}, theirs, r["in_initiating"] == "1")
		require.NoError(t, err)
		require.Equal(t, r["mid_shared_secret"], hex.EncodeToString(got), "row %s", r["in_idx"])
	}
}

// BIP 324's decoding vectors: every 64-byte string is a key (the server's
// static key is decoded this way for its certificate), including the
// u = 0, t = 0 and overflow edge cases.
func TestBIP324EllSwiftDecode(t *testing.T) {
	rows := readCSV(t, "bip324/ellswift_decode_test_vectors.csv")
	require.Greater(t, len(rows), 50)
	for _, r := range rows {
		x, err := XOnly(to64(t, r["ellswift"]))
		require.NoError(t, err, r["comment"])
		require.Equal(t, r["x"], hex.EncodeToString(x[:]), r["comment"])
	}
}

// BIP 340's vectors: certificate signatures are made and checked with the
// same schnorr calls.
func TestBIP340(t *testing.T) {
	rows := readCSV(t, "bip340/test-vectors.csv")
	checked := 0
	for _, r := range rows {
		msg := unhex(t, r["message"])
		if len(msg) != 32 {
			continue // btcd signs 32-byte digests only; certificates are SHA-256 digests
		}
		want := r["verification result"] == "TRUE"
		ok := false
		if pub, err := schnorr.ParsePubKey(unhex(t, r["public key"])); err == nil {
			if sig, err := schnorr.ParseSignature(unhex(t, r["signature"])); err == nil {
				ok = sig.Verify(msg, pub)
			}
		}
		require.Equal(t, want, ok, "row %s (%s)", r["index"], r["comment"])
		if sk := r["secret key"]; sk != "" {
			priv, _ := btcec.PrivKeyFromBytes(unhex(t, sk))
			var aux [32]byte
			copy(aux[:], unhex(t, r["aux_rand"]))
			sig, err := schnorr.Sign(priv, msg, schnorr.CustomNonce(aux))
			require.NoError(t, err)
			require.Equal(t, strings.ToLower(r["signature"]), hex.EncodeToString(sig.Serialize()), "row %s", r["index"])
		}
		checked++
	}
	require.Greater(t, checked, 10)
}

// The spec's §4.7.1 authority key encoding example.
func TestAuthorityKeySpecVector(t *testing.T) {
	raw := []byte{118, 99, 112, 0, 151, 156, 28, 17, 175, 12, 48, 11, 205, 140, 127, 228, 134, 16, 252, 233, 185, 193, 30, 61, 174, 227, 90, 224, 176, 138, 116, 85}
	const enc = "9bXiEd8boQVhq7WddEcERUL5tyyJVFYdU8th3HfbNXK3Yw6GRXh"
	var k AuthorityKey
	copy(k[:], raw)
	require.Equal(t, enc, k.String())
	got, err := ParseAuthorityKey(enc)
	require.NoError(t, err)
	require.Equal(t, k, got)
	for _, bad := range []string{"", "9bXiEd8boQVhq7WddEcERUL5tyyJVFYdU8th3HfbNXK3Yw6GRXi", "9bXiEd8boQVhq7WddEcERUL5tyyJVFYdU8th3HfbNXK3Yw6GRX", "0OIl"} {
		_, err := ParseAuthorityKey(bad)
		require.Error(t, err, bad)
	}
}
