package stratum

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/stratum/wire"
	"clminer/work/health"
	"clminer/work/retry"
)

func TestDecodeLineClassifies(t *testing.T) {
	for _, tc := range []struct {
		line   string
		kind   wire.Kind
		method string
	}{
		{`{"id":null,"method":"mining.notify","params":[]}`, wire.KindNotification, wire.MethodNotify},
		{`{"method":"mining.set_difficulty","params":[2]}`, wire.KindNotification, wire.MethodSetDifficulty},
		{`{"id":42,"method":"mining.ping","params":[]}`, wire.KindRequest, wire.MethodPing},
		{`{"id":"abc","method":"client.get_version","params":[]}`, wire.KindRequest, wire.MethodGetVersion},
		{`{"id":1,"result":true,"error":null}`, wire.KindResponse, ""},
		{`{"id":1,"result":true}`, wire.KindResponse, ""},
		{`{"jsonrpc":"2.0","id":3,"result":false,"error":{"code":-1,"message":"x"}}`, wire.KindResponse, ""},
		{"  {\"id\":1,\"result\":true}\r", wire.KindResponse, ""},
	} {
		m, err := wire.Decode([]byte(tc.line))
		require.NoError(t, err, tc.line)
		assert.Equal(t, tc.kind, m.Kind, tc.line)
		assert.Equal(t, tc.method, m.Method, tc.line)
	}
}

func TestDecodeLineMalformed(t *testing.T) {
	for _, line := range []string{
		``, `   `, `garbage`, `[1,2,3]`, `"str"`, `null`, `{`, `{"id":1`, `{}`, `{"id":null}`,
		`{"method":5,"params":[]}`, `{"method":"","id":1}`, `{"method":["x"]}`, "\x00\xff{}",
		`{"id":1,"result":tru}`, strings.Repeat("{", 10000),
	} {
		m, err := wire.Decode([]byte(line))
		assert.Error(t, err, "%q", line)
		assert.Nil(t, m)
		if err != nil {
			assert.True(t, errors.Is(err, wire.ErrNotMessage), "%q: %v", line, err)
		}
	}
}

func TestNumID(t *testing.T) {
	for raw, want := range map[string]uint64{`7`: 7, `"12"`: 12, `0`: 0} {
		m := &wire.Message{ID: json.RawMessage(raw)}
		got, ok := m.NumID()
		assert.True(t, ok, raw)
		assert.Equal(t, want, got)
	}
	for _, raw := range []string{`-1`, `1.5`, `"x"`, `{}`, `[]`, `true`} {
		m := &wire.Message{ID: json.RawMessage(raw)}
		_, ok := m.NumID()
		assert.False(t, ok, raw)
	}
}

// Every error format of stratum/PROTOCOL.md#errors.
func TestParseErrorFormats(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		code       int
		hasCode    bool
		contains   string
	}{
		{"array3", `{"id":4,"result":null,"error":[21,"Job not found",null]}`, 21, true, "Job not found"},
		{"array3 data", `{"id":4,"result":false,"error":[21,"Job not found",""]}`, 21, true, "Job not found"},
		{"array2 nomp", `{"id":4,"result":false,"error":[23,"low difficulty share of 0.5"]}`, 23, true, "low difficulty"},
		{"minus2", `{"id":4,"result":null,"error":[-2,"Job 'bf' not found",null]}`, -2, true, "Job 'bf' not found"},
		{"object", `{"id":4,"result":false,"error":{"code":-401,"message":"bad share"}}`, -401, true, "bad share"},
		{"string", `{"id":4,"result":false,"error":"No nonce"}`, 0, false, "No nonce"},
		{"bool", `{"id":4,"result":false,"error":true}`, 0, false, "true"},
		{"ckpool", `{"id":4,"result":false,"error":null,"reject-reason":"Stale"}`, 0, false, "Stale"},
		{"array with tb", `{"id":4,"result":null,"error":[-3,"Method not found","Traceback..."]}`, -3, true, "Method not found"},
		{"float code", `{"id":4,"result":false,"error":[20.0,"Other"]}`, 20, true, "Other"},
		{"string code", `{"id":4,"result":false,"error":["E1","oops"]}`, 0, false, "oops"},
		{"number", `{"id":4,"result":false,"error":5}`, 0, false, "5"},
		{"empty array", `{"id":4,"result":false,"error":[]}`, 0, false, "unspecified"},
		{"empty object", `{"id":4,"result":false,"error":{}}`, 0, false, "{}"},
	} {
		m, err := wire.Decode([]byte(tc.line))
		require.NoError(t, err, tc.name)
		assert.False(t, IsTrue(m.Result), tc.name)
		e := ParseError(m.Error, m.RejectReason)
		require.NotNil(t, e, tc.name)
		assert.Equal(t, tc.code, e.Code, tc.name)
		assert.Equal(t, tc.hasCode, e.HasCode, tc.name)
		assert.Contains(t, e.Error(), tc.contains, tc.name)
	}
	// missing error key and null error: no wire.Error, but not accepted either
	for _, line := range []string{`{"id":4,"result":false}`, `{"id":4,"result":null,"error":null}`, `{"id":4}`} {
		m, err := wire.Decode([]byte(line))
		require.NoError(t, err)
		assert.Nil(t, ParseError(m.Error, m.RejectReason))
		assert.False(t, IsTrue(m.Result))
	}
}

func TestParseSubscribeShapes(t *testing.T) {
	for _, tc := range []struct {
		name, result, en1, sid string
		size                   int
	}{
		{"slush", `[[["mining.set_difficulty","b4b6"],["mining.notify","ae68"]],"08000002",4]`, "08000002", "ae68", 4},
		{"antpool notify first", `[[["mining.notify","n1"],["mining.set_difficulty","d1"]],"0a0b0c0d",8]`, "0a0b0c0d", "n1", 8},
		{"notify only", `[[["mining.notify","abc"]],"00000001",4]`, "00000001", "abc", 4},
		{"p2pool single pair", `[["mining.notify","ae6812eb4cd7735a302a8a9dd95cf71f"],"",4]`, "", "ae6812eb4cd7735a302a8a9dd95cf71f", 4},
		{"empty subs", `[[],"01020304",4]`, "01020304", "", 4},
		{"null subs", `[null,"01020304",4]`, "01020304", "", 4},
		{"nicehash", `[[["mining.notify","x"]],"0102030405",3]`, "0102030405", "x", 3},
		{"upper hex", `[[["mining.notify","x"]],"ABCDEF",4]`, "abcdef", "x", 4},
		{"numeric sid", `[[["mining.notify",17]],"ab",4]`, "ab", "17", 4},
		{"string size", `[[["mining.notify","x"]],"ab","4"]`, "ab", "x", 4},
		{"28 byte en1", `[[["mining.notify","x"]],"` + strings.Repeat("ab", 28) + `",4]`, strings.Repeat("ab", 28), "x", 4},
	} {
		r, err := ParseSubscribeResult(json.RawMessage(tc.result))
		require.NoError(t, err, tc.name)
		assert.Equal(t, tc.en1, r.Extranonce1, tc.name)
		assert.Equal(t, tc.sid, r.SessionID, tc.name)
		assert.Equal(t, tc.size, r.Extranonce2Size, tc.name)
	}
	for _, bad := range []string{`null`, `true`, `{}`, `[]`, `[[],"ab"]`, `[[],5,4]`, `[[],"zz",4]`, `[[],"abc",4]`,
		`[[],"ab",0]`, `[[],"ab",17]`, `[[],"ab",-1]`, `[[],"ab",4.5]`, `[[],"ab",null]`, `[[],"` + strings.Repeat("ab", 65) + `",4]`} {
		_, err := ParseSubscribeResult(json.RawMessage(bad))
		assert.Error(t, err, bad)
	}
}

const slushNotify = `["bf","4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000","01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20020862062f503253482f04b8864e5008","072f736c7573682f000000000100f2052a010000001976a914d23fcdf86f7e756a64a7a9688ef9903327048ed988ac00000000",[],"00000002","1c2ac4af","504e86b9",false]`

func TestParseNotify(t *testing.T) {
	p, err := ParseNotify(json.RawMessage(slushNotify))
	require.NoError(t, err)
	assert.Equal(t, "bf", p.JobID)
	assert.Equal(t, "504e86b9", p.NTime)
	assert.False(t, p.CleanJobs)
	assert.Empty(t, p.MerkleBranch)

	for _, bad := range []string{
		`null`, `{}`, `[]`, `["bf"]`,
		strings.Replace(slushNotify, `"bf"`, `17`, 1),
		strings.Replace(slushNotify, `"00000002"`, `-2`, 1),
		strings.Replace(slushNotify, `[]`, `"nope"`, 1),
		strings.Replace(slushNotify, `[]`, `[1,2]`, 1),
		strings.Replace(slushNotify, `false]`, `"yes"]`, 1),
		strings.Replace(slushNotify, `"bf"`, `null`, 1),
	} {
		_, err := ParseNotify(json.RawMessage(bad))
		assert.Error(t, err, bad)
	}
	// clean_jobs as 0/1, and a null branch list, are tolerated
	p, err = ParseNotify(json.RawMessage(strings.Replace(strings.Replace(slushNotify, `false]`, `1]`, 1), `[]`, `null`, 1)))
	require.NoError(t, err)
	assert.True(t, p.CleanJobs)
}

func TestParseSmallMethods(t *testing.T) {
	for raw, want := range map[string]float64{`[4096]`: 4096, `[0.01]`: 0.01, `[1024.0]`: 1024, `[1.999969]`: 1.999969, `["8"]`: 8} {
		d, err := ParseDifficulty(json.RawMessage(raw))
		require.NoError(t, err, raw)
		assert.Equal(t, want, d)
	}
	for _, raw := range []string{`[0]`, `[-1]`, `[]`, `null`, `["x"]`, `[null]`, `{}`, `[1e999]`} {
		_, err := ParseDifficulty(json.RawMessage(raw))
		assert.Error(t, err, raw)
	}
	en1, size, err := ParseSetExtranonce(json.RawMessage(`["AABB",3]`))
	require.NoError(t, err)
	assert.Equal(t, "aabb", en1)
	assert.Equal(t, 3, size)
	_, size, err = ParseSetExtranonce(json.RawMessage(`["aabb"]`))
	require.NoError(t, err)
	assert.Equal(t, 0, size)
	for _, raw := range []string{`[]`, `[5]`, `["zz",4]`, `["aa",0]`, `["aa",99]`} {
		_, _, err := ParseSetExtranonce(json.RawMessage(raw))
		assert.Error(t, err, raw)
	}
	m, err := ParseVersionMask(json.RawMessage(`["1fffe000"]`))
	require.NoError(t, err)
	assert.Equal(t, uint32(0x1fffe000), m)
	for _, raw := range []string{`[]`, `[1]`, `["xyz"]`, `["123456789"]`} {
		_, err := ParseVersionMask(json.RawMessage(raw))
		assert.Error(t, err, raw)
	}
	ok, mask, err := ParseConfigureResult(json.RawMessage(`{"version-rolling":true,"version-rolling.mask":"5fffe000"}`))
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, uint32(0x5fffe000), mask)
	ok, mask, err = ParseConfigureResult(json.RawMessage(`{"version-rolling":true}`))
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, uint32(0xffffffff), mask)
	ok, _, err = ParseConfigureResult(json.RawMessage(`{"version-rolling":false}`))
	require.NoError(t, err)
	assert.False(t, ok)
	_, _, err = ParseConfigureResult(json.RawMessage(`null`))
	assert.Error(t, err)

	for raw, want := range map[string]Reconnect{
		`[]`: {}, `null`: {}, `["pool.example.com","3333",0]`: {Host: "pool.example.com", Port: "3333"},
		`["pool.example.com",3334,5]`: {Host: "pool.example.com", Port: "3334", Wait: 5}, `[null,null,2]`: {Wait: 2},
	} {
		r, err := ParseReconnect(json.RawMessage(raw))
		require.NoError(t, err, raw)
		assert.Equal(t, want, r, raw)
	}
	for _, raw := range []string{`[5]`, `["h","x"]`, `["h",70000]`, `["h",1,-3]`} {
		_, err := ParseReconnect(json.RawMessage(raw))
		assert.Error(t, err, raw)
	}
	assert.Equal(t, "hello", ParseShowMessage(json.RawMessage(`["hello"]`)))
	assert.Equal(t, "", ParseShowMessage(json.RawMessage(`5`)))
}

func TestParsePoolURL(t *testing.T) {
	u, err := ParsePoolURL("stratum+tcp://pool.example.com:3333")
	require.NoError(t, err)
	assert.Equal(t, PoolURL{Scheme: "stratum+tcp", Host: "pool.example.com", Port: "3333"}, u)
	u, err = ParsePoolURL("stratum+ssl://[::1]:443")
	require.NoError(t, err)
	assert.True(t, u.TLS)
	assert.Equal(t, "[::1]:443", u.Addr())
	u, err = ParsePoolURL("stratum+tls://pool:3334")
	require.NoError(t, err)
	assert.True(t, u.TLS)
	for in, msg := range map[string]string{
		"":                                 "empty",
		"pool.example.com:3333":            "no scheme",
		"http://pool:3333":                 "unknown scheme",
		"stratum+tcp://pool":               "no port",
		"stratum+tcp://:3333":              "no host",
		"stratum+tcp://pool:99999":         "1..65535",
		"stratum+tcp://pool:abc":           "",
		"stratum+tcp://u:secret@pool:3333": "user/pass",
		"stratum+tcp://pool:3333/path":     "path",
	} {
		_, err := ParsePoolURL(in)
		require.Error(t, err, in)
		assert.Contains(t, err.Error(), msg, in)
		assert.NotContains(t, err.Error(), "\n")
		assert.NotContains(t, err.Error(), "secret")
	}
}

func TestFingerprint(t *testing.T) {
	fp := strings.Repeat("ab", 32)
	_, err := ParseFingerprint(fp)
	require.NoError(t, err)
	colons := strings.TrimSuffix(strings.Repeat("AB:", 32), ":")
	b, err := ParseFingerprint(colons)
	require.NoError(t, err)
	assert.Len(t, b, 32)
	_, err = ParseFingerprint("abcd")
	assert.Error(t, err)
}

func TestLineReader(t *testing.T) {
	in := "a\nbb\r\n\n" + strings.Repeat("x", 5000) + "\nlast"
	lr := newLineReader(strings.NewReader(in), 8192)
	var got []string
	for {
		l, err := lr.ReadLine()
		if err != nil {
			break
		}
		got = append(got, string(l))
	}
	assert.Equal(t, []string{"a", "bb", "", strings.Repeat("x", 5000)}, got)

	lr = newLineReader(strings.NewReader(strings.Repeat("y", 100000)+"\n"), 64<<10)
	_, err := lr.ReadLine()
	assert.ErrorIs(t, err, ErrLineTooLong)
	assert.LessOrEqual(t, cap(lr.buf), 128<<10)

	// exactly at the cap is fine
	lr = newLineReader(bytes.NewReader([]byte(strings.Repeat("z", 1000)+"\r\n")), 1000)
	l, err := lr.ReadLine()
	require.NoError(t, err)
	assert.Len(t, l, 1000)
}

// The pool list's backoff and sick rule are work/retry's and work/health's
// with the numbers README promises: 1 s doubling to 60 s with jitter; 5
// timeouts in a row, 30 s unanswered, 5 rejects in a row.
func TestClientRetryAndHealthDefaults(t *testing.T) {
	var o Options
	o.defaults()
	assert.Equal(t, retry.Backoff{Initial: time.Second, Max: time.Minute, Multiplier: 2, Jitter: 0.2}, o.Retry)
	assert.Equal(t, health.Rule{TimeoutStreak: 5, Unanswered: 30 * time.Second, RejectStreak: 5}, o.healthRule())
	o = Options{Retry: retry.Backoff{Initial: time.Second, Max: time.Millisecond}}
	o.defaults()
	assert.Equal(t, time.Second, o.Retry.Max, "a cap below the first delay is raised to it")
}

func TestSameDomain(t *testing.T) {
	assert.True(t, sameDomain("eu.pool.com", "us.pool.com"))
	assert.True(t, sameDomain("pool.com", "stratum.pool.com"))
	assert.True(t, sameDomain("127.0.0.1", "127.0.0.1"))
	assert.False(t, sameDomain("eu.pool.com", "evil.com"))
	assert.False(t, sameDomain("pool.com", "pool.com.evil.net"))
	assert.False(t, sameDomain("127.0.0.1", "10.0.0.1"))
	assert.False(t, sameDomain("127.0.0.1", "localhost"))
}

func TestPoolConfigStringHidesPassword(t *testing.T) {
	p := PoolConfig{URL: "stratum+tcp://p:1", User: "u", Pass: "hunter2"}
	assert.NotContains(t, p.String(), "hunter2")
	assert.NotContains(t, fmt.Sprintf("%v %+v", p, p), "hunter2")
}

// A pool's error text of any size or encoding comes out of ParseError as
// readable text within the log clip: the wire package keeps the text as
// sent, so the clip is this package's.
func TestParseErrorClipsPoolText(t *testing.T) {
	long := strings.Repeat("x", 5000)
	for _, tc := range []struct{ raw, reason string }{
		{`[21,"` + long + `","` + long + `"]`, ""},
		{`{"code":23,"message":"` + long + `"}`, ""},
		{`{"code":23,"data":"` + long + `"}`, ""},
		{`"` + long + "\xff" + `"`, ""},
		{`[20,"bad"]`, long + "\xff"},
		{`null`, long},
		{"{\"x\":\"\xff\xfe\"}", ""},
	} {
		e := ParseError(json.RawMessage(tc.raw), tc.reason)
		require.NotNil(t, e, "%.40s", tc.raw)
		assert.LessOrEqual(t, len(e.Message), 200, "%.40s", tc.raw)
		assert.NotEmpty(t, e.Message)
		assert.True(t, utf8.ValidString(e.Message), "%.40s", tc.raw)
	}
}
