package stratum

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/stratum/wire"
	"clminer/work"
	"clminer/work/vectors"
)

func rawJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// Each server-side builder is read back by its client-side parser and each
// client-side builder by its server-side parser.
func TestServerBuildersRoundTrip(t *testing.T) {
	ua, sid, err := ParseSubscribeParams(rawJSON(t, SubscribeParams("cgminer/4.11", "deadbeef")))
	require.NoError(t, err)
	assert.Equal(t, [2]string{"cgminer/4.11", "deadbeef"}, [2]string{ua, sid})

	sr := SubscribeResult{Subscriptions: [][2]string{{wire.MethodSetDifficulty, "1"}, {wire.MethodNotify, "1"}}, Extranonce1: "00ff", Extranonce2Size: 3}
	got, err := ParseSubscribeResult(rawJSON(t, sr.Result()))
	require.NoError(t, err)
	sr.SessionID = "1"
	assert.Equal(t, sr, got)

	u, p, err := ParseAuthorizeParams(rawJSON(t, AuthorizeParams("wallet.rig1", "x,d=8")))
	require.NoError(t, err)
	assert.Equal(t, [2]string{"wallet.rig1", "x,d=8"}, [2]string{u, p})

	for _, sub := range []work.Submit{
		{Worker: "w", JobID: "bf", Extranonce2: "01000000", NTime: "504e86ed", Nonce: "00000001"},
		{Worker: "w", JobID: "B9OwZ1S45VrRdA68xCxngG", Extranonce2: "0100", NTime: "504e86ed", Nonce: "b2957c02", VersionBits: "1fffe000"},
	} {
		back, err := ParseSubmitParams(rawJSON(t, sub.Params()))
		require.NoError(t, err)
		assert.Equal(t, sub, back)
	}

	req, err := ParseConfigureParams(rawJSON(t, ConfigureParams(work.BIP320Mask, 2)))
	require.NoError(t, err)
	assert.True(t, req.VersionRolling)
	assert.Equal(t, work.BIP320Mask, req.Mask)
	assert.Equal(t, 2, req.MinBitCount)
	rolling, mask, err := ParseConfigureResult(rawJSON(t, ConfigureResult(req, true, 0x00ffe000)))
	require.NoError(t, err)
	assert.True(t, rolling)
	assert.Equal(t, uint32(0x00ffe000), mask)
	rolling, _, err = ParseConfigureResult(rawJSON(t, ConfigureResult(req, false, 0)))
	require.NoError(t, err)
	assert.False(t, rolling)

	vs, err := vectors.Builtin()
	require.NoError(t, err)
	for _, v := range vs {
		jp, err := v.JobParams()
		if err != nil {
			continue
		}
		back, err := ParseNotify(rawJSON(t, NotifyParams(jp)))
		require.NoError(t, err, v.Label())
		jp.Extranonce1, jp.Extranonce2Size, jp.Difficulty = "", 0, 0
		if jp.MerkleBranch == nil {
			jp.MerkleBranch = []string{}
		}
		assert.Equal(t, jp, back, v.Label())
	}

	d, err := ParseDifficulty(rawJSON(t, DifficultyParams(0.001)))
	require.NoError(t, err)
	assert.Equal(t, 0.001, d)
	en1, size, err := ParseSetExtranonce(rawJSON(t, SetExtranonceParams("0a0b", 2)))
	require.NoError(t, err)
	assert.Equal(t, "0a0b", en1)
	assert.Equal(t, 2, size)
	m, err := ParseVersionMask(rawJSON(t, VersionMaskParams(0x0000e000)))
	require.NoError(t, err)
	assert.Equal(t, uint32(0x0000e000), m)
	for _, r := range []Reconnect{{}, {Host: "pool.example", Port: "3333", Wait: 5}, {Port: "4444"}} {
		back, err := ParseReconnect(rawJSON(t, ReconnectParams(r)))
		require.NoError(t, err)
		assert.Equal(t, r, back)
	}
	e := ParseError(rawJSON(t, wire.NewError(wire.CodeDuplicate, "Duplicate share")), "")
	require.NotNil(t, e)
	assert.Equal(t, wire.CodeDuplicate, e.Code)
	assert.Equal(t, "Duplicate share", e.Message)

	line, err := wire.EncodeNotification(wire.MethodNotify, NotifyParams(work.JobParams{JobID: "1"}))
	require.NoError(t, err)
	msg, err := wire.Decode(line[:len(line)-1])
	require.NoError(t, err)
	assert.Equal(t, wire.KindNotification, msg.Kind)
	line, err = wire.EncodeResponse(nil, true, nil)
	require.NoError(t, err)
	assert.JSONEq(t, `{"id":null,"result":true,"error":null}`, string(line))
}

// mining.submit cut at every param boundary, and each param of a wrong type.
func TestParseSubmitParamsAtEveryBoundary(t *testing.T) {
	full := []any{"w", "job", "00000001", "504e86ed", "00000001", "00002000"}
	for n := 0; n <= len(full); n++ {
		_, err := ParseSubmitParams(rawJSON(t, full[:n]))
		if n < 5 {
			assert.Error(t, err, "%d params", n)
		} else {
			assert.NoError(t, err, "%d params", n)
		}
	}
	_, err := ParseSubmitParams(rawJSON(t, append(full, "extra")))
	assert.Error(t, err, "7 params")
	for i := range full {
		for _, bad := range []any{nil, 1, true, []any{}, map[string]any{}, string(make([]byte, 300))} {
			p := append([]any(nil), full...)
			p[i] = bad
			_, err := ParseSubmitParams(rawJSON(t, p))
			assert.Error(t, err, "param %d = %v", i, bad)
		}
	}
	for _, raw := range []string{"", "null", "{}", `"x"`, "[", "[[]]"} {
		_, err := ParseSubmitParams(json.RawMessage(raw))
		assert.Error(t, err, raw)
	}
}

// mining.configure in the shapes miners send.
func TestParseConfigureParamsShapes(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		ok   bool
		mask uint32
		roll bool
	}{
		{`[["version-rolling"],{"version-rolling.mask":"1fffe000","version-rolling.min-bit-count":2}]`, true, 0x1fffe000, true},
		{`[["version-rolling"]]`, true, 0xffffffff, true},
		{`[["minimum-difficulty","subscribe-extranonce"],{"minimum-difficulty.value":2048}]`, true, 0xffffffff, false},
		{`[["version-rolling"],{"version-rolling.mask":12}]`, false, 0, false},
		{`[["version-rolling"],{"version-rolling.mask":"zz"}]`, false, 0, false},
		{`["version-rolling"]`, false, 0, false},
		{`[]`, false, 0, false},
		{`[["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"]]`, false, 0, false},
	} {
		r, err := ParseConfigureParams(json.RawMessage(tc.raw))
		if !tc.ok {
			assert.Error(t, err, tc.raw)
			continue
		}
		require.NoError(t, err, tc.raw)
		assert.Equal(t, tc.mask, r.Mask, tc.raw)
		assert.Equal(t, tc.roll, r.VersionRolling, tc.raw)
	}
	res := ConfigureResult(ConfigureRequest{Extensions: []string{"version-rolling", "minimum-difficulty"}, VersionRolling: true}, true, 0x1fffe000)
	assert.Equal(t, false, res["minimum-difficulty"], "an extension the server does not do is refused, not ignored")
}
