package codec

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func u32p(v uint32) *uint32 { return &v }

func fill(b byte) (v [32]byte) {
	for i := range v {
		v[i] = b + byte(i)
	}
	return v
}

// samples has one message of every type, with every variable-length field
// non-empty so that each length prefix is cut somewhere in the tests.
func samples() []Message {
	return []Message{
		&SetupConnection{Protocol: ProtocolMining, MinVersion: 2, MaxVersion: 2, Flags: FlagRequiresStandardJobs | FlagRequiresVersionRolling,
			EndpointHost: "pool.example", EndpointPort: 34254, Vendor: "clminer", HardwareVersion: "cpu", Firmware: "dev", DeviceID: "rig1"},
		&SetupConnectionSuccess{UsedVersion: 2, Flags: FlagRequiresExtendedChannels},
		&SetupConnectionError{Flags: 4, ErrorCode: "unsupported-feature-flags"},
		&Reconnect{NewHost: "b.pool.example", NewPort: 3336},
		&OpenStandardMiningChannel{RequestID: 7, UserIdentity: "user.worker", NominalHashRate: 1.5e9, MaxTarget: fill(1)},
		&OpenStandardMiningChannelSuccess{RequestID: 7, ChannelID: 3, Target: fill(2), ExtranoncePrefix: []byte{1, 2, 3, 4}, GroupChannelID: 9},
		&OpenMiningChannelError{RequestID: 7, ErrorCode: "unknown-user"},
		&NewMiningJob{ChannelID: 3, JobID: 11, MinNTime: u32p(1700000000), Version: 0x20000000, MerkleRoot: fill(3)},
		&NewMiningJob{ChannelID: 3, JobID: 12, Version: 0x20000000, MerkleRoot: fill(4)},
		&UpdateChannel{ChannelID: 3, NominalHashRate: 2e9, MaximumTarget: fill(5)},
		&UpdateChannelError{ChannelID: 3, ErrorCode: "max-target-out-of-range"},
		&CloseChannel{ChannelID: 3, ReasonCode: "bye"},
		&SetExtranoncePrefix{ChannelID: 3, ExtranoncePrefix: []byte{9, 8}},
		&SubmitSharesStandard{ChannelID: 3, SequenceNumber: 1, JobID: 11, Nonce: 0xdeadbeef, NTime: 1700000001, Version: 0x20002000},
		&SubmitSharesSuccess{ChannelID: 3, LastSequenceNumber: 10, NewSubmitsAcceptedCount: 10, NewSharesSum: 1 << 40},
		&SubmitSharesError{ChannelID: 3, SequenceNumber: 4, ErrorCode: "stale-share"},
		&SetNewPrevHash{ChannelID: 3, JobID: 12, PrevHash: fill(6), MinNTime: 1700000100, NBits: 0x1d00ffff},
		&SetTarget{ChannelID: 3, MaximumTarget: fill(7)},
		&OpenExtendedMiningChannel{OpenStandardMiningChannel: OpenStandardMiningChannel{RequestID: 8, UserIdentity: "u.w", NominalHashRate: 1e6, MaxTarget: fill(8)}, MinExtranonceSize: 4},
		&OpenExtendedMiningChannelSuccess{RequestID: 8, ChannelID: 4, Target: fill(9), ExtranonceSize: 8, ExtranoncePrefix: []byte{5, 6}, GroupChannelID: 1},
		&NewExtendedMiningJob{ChannelID: 4, JobID: 2, MinNTime: u32p(1700000000), Version: 0x20000000, VersionRollingAllowed: true,
			MerklePath: [][32]byte{fill(10), fill(11)}, CoinbaseTxPrefix: []byte{1, 2, 3}, CoinbaseTxSuffix: []byte{4, 5}},
		&NewExtendedMiningJob{ChannelID: 4, JobID: 3, Version: 0x20000000, MerklePath: [][32]byte{}, CoinbaseTxPrefix: []byte{1}, CoinbaseTxSuffix: []byte{2}},
		&SubmitSharesExtended{SubmitSharesStandard: SubmitSharesStandard{ChannelID: 4, SequenceNumber: 9, JobID: 2, Nonce: 1, NTime: 2, Version: 3}, Extranonce: []byte{0, 0, 0, 1}},
	}
}

func TestRoundTrip(t *testing.T) {
	seen := map[uint8]bool{}
	for _, m := range samples() {
		h, p, err := Encode(m)
		require.NoError(t, err, m.Name())
		require.Equal(t, m.MsgType(), h.MsgType)
		require.Equal(t, channelMsg[m.MsgType()], h.ExtensionType == ChannelBit, m.Name())
		hb := h.Append(nil)
		h2, err := ParseHeader(hb)
		require.NoError(t, err)
		require.Equal(t, h, h2)
		got, err := Decode(h2, p)
		require.NoError(t, err, m.Name())
		require.Equal(t, m, got, m.Name())
		seen[m.MsgType()] = true
	}
	for typ := range constructors {
		require.True(t, seen[typ], "type %#02x has no sample", typ)
	}
}

// TestCutEveryBoundary decodes every strict prefix of every sample: each
// must be an error naming the message, never a panic or a short message.
func TestCutEveryBoundary(t *testing.T) {
	for _, m := range samples() {
		h, p, err := Encode(m)
		require.NoError(t, err)
		for n := 0; n < len(p); n++ {
			hh := h
			hh.Length = uint32(n)
			_, err := Decode(hh, p[:n])
			require.Error(t, err, "%s cut at %d", m.Name(), n)
			require.True(t, errors.Is(err, ErrShort) || strings.Contains(err.Error(), "OPTION"), "%s cut at %d: %v", m.Name(), n, err)
			require.Contains(t, err.Error(), m.Name())
		}
		hh := h
		hh.Length++
		_, err = Decode(hh, append(bytes.Clone(p), 0))
		require.ErrorContains(t, err, "trailing", m.Name())
	}
}

func TestMalformed(t *testing.T) {
	cases := []struct {
		name    string
		h       Header
		payload []byte
		want    string
	}{
		{"length mismatch", Header{MsgType: TypeSetTarget, Length: 5}, make([]byte, 36), "header says 5"},
		{"unknown type", Header{MsgType: 0x7f}, nil, "unknown"},
		{"extension", Header{ExtensionType: 0x4001, MsgType: TypeSetTarget, Length: 36}, make([]byte, 36), "unknown"},
		{"option of two", Header{MsgType: TypeNewMiningJob, Length: 9 + 8 + 4 + 32}, append(append(make([]byte, 8), 2), make([]byte, 8+4+32)...), "OPTION with 2"},
		{"prefix over B0_32", Header{MsgType: TypeSetExtranoncePrefix, Length: 4 + 1 + 33}, append(append(make([]byte, 4), 33), make([]byte, 33)...), "over 32"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(c.h, c.payload)
			require.ErrorContains(t, err, c.want)
		})
	}
	_, err := ParseHeader(make([]byte, 5))
	require.Error(t, err)
	_, _, err = Encode(&SetExtranoncePrefix{ExtranoncePrefix: make([]byte, 33)})
	require.ErrorContains(t, err, "over 32")
	_, _, err = Encode(&CloseChannel{ReasonCode: strings.Repeat("x", 256)})
	require.ErrorContains(t, err, "reason_code")
}

// TestSpecBytes pins the layout against bytes written out by hand from the
// spec tables (little-endian integers, U8 length prefixes).
func TestSpecBytes(t *testing.T) {
	h, p, err := Encode(&SubmitSharesError{ChannelID: 1, SequenceNumber: 2, ErrorCode: "ab"})
	require.NoError(t, err)
	require.Equal(t, []byte{0x00, 0x80, 0x1d, 11, 0, 0}, h.Append(nil))
	require.Equal(t, []byte{1, 0, 0, 0, 2, 0, 0, 0, 2, 'a', 'b'}, p)
	h, p, err = Encode(&SetupConnectionSuccess{UsedVersion: 2, Flags: 1})
	require.NoError(t, err)
	require.Equal(t, []byte{0, 0, 1, 6, 0, 0}, h.Append(nil))
	require.Equal(t, []byte{2, 0, 1, 0, 0, 0}, p)
}

// FuzzDecode: any header and payload decode to a message that re-encodes
// to the same payload, or to an error; never a panic.
func FuzzDecode(f *testing.F) {
	for _, m := range samples() {
		h, p, _ := Encode(m)
		f.Add(h.Append(nil), p)
	}
	f.Fuzz(func(t *testing.T, hb, p []byte) {
		if len(hb) != HeaderLen {
			return
		}
		h, err := ParseHeader(hb)
		if err != nil {
			return
		}
		h.Length = uint32(len(p))
		m, err := Decode(h, p)
		if err != nil {
			return
		}
		h2, p2, err := Encode(m)
		if err != nil {
			t.Fatalf("%s decoded but does not re-encode: %v", m.Name(), err)
		}
		// A BOOL's padding bits are not kept, so compare what they mean:
		// the re-encoding must decode and encode to itself. (Not DeepEqual
		// on the messages: a NaN hashrate, which the peer may send, is not
		// equal to itself.)
		m2, err := Decode(h2, p2)
		if err != nil {
			t.Fatalf("%s: re-encoded %x does not decode: %v (was %x)", m.Name(), p2, err, p)
		}
		_, p3, err := Encode(m2)
		if err != nil || !bytes.Equal(p2, p3) {
			t.Fatalf("%s: re-encoded %x, then %x (%v), was %x", m.Name(), p2, p3, err, p)
		}
	})
}

// TestWriteCorpus keeps testdata/fuzz in step with the samples when asked.
func TestWriteCorpus(t *testing.T) {
	if os.Getenv("CLMINER_WRITE_CORPUS") == "" {
		t.Skip("set CLMINER_WRITE_CORPUS=1 to rewrite testdata/fuzz")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for i, m := range samples() {
		h, p, _ := Encode(m)
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n[]byte(%q)\n", h.Append(nil), p)
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("sample%02d", i)), []byte(body), 0o644))
	}
}
