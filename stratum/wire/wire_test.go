package wire

import (
	"encoding/json"
	"errors"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Lines of every kind, in the shapes both ends really send.
var validLines = []string{
	`{"id":1,"method":"mining.subscribe","params":["cgminer/4.11.1","ae68"]}`,
	`{"id":null,"method":"mining.notify","params":["bf","4d16b6f8","01","ff",["aa"],"20000000","1705c739","504e86ed",true]}`,
	`{"id":4,"result":null,"error":[21,"Job not found",null]}`,
	`{"id":"7","result":false,"error":{"code":23,"message":"low difficulty"}}`,
	`{"id":5,"result":false,"error":null,"reject-reason":"Stale"}`,
	`{"jsonrpc":"2.0","id":3,"result":[[["mining.notify","ae68"]],"08000002",4]}`,
}

// A line cut at every byte is never a message: a prefix of a JSON object
// is not one, so each cut must be refused as such, never half read.
func TestDecodeTruncatedAtEveryByte(t *testing.T) {
	for _, line := range validLines {
		m, err := Decode([]byte(line))
		require.NoError(t, err, line)
		require.NotNil(t, m)
		for n := 0; n < len(line); n++ {
			m, err := Decode([]byte(line[:n]))
			assert.Nil(t, m, "%q", line[:n])
			assert.True(t, errors.Is(err, ErrNotMessage), "%q: %v", line[:n], err)
		}
	}
}

// Each member of the envelope with a value of every wrong JSON type.
func TestDecodeWrongTypes(t *testing.T) {
	wrong := []string{`5`, `-1`, `1.5`, `true`, `false`, `"x"`, `""`, `[]`, `[1,"a",null]`, `{}`, `{"a":1}`}
	for _, v := range wrong {
		// method must be a non-empty string: anything else is not a message
		if v != `"x"` {
			_, err := Decode([]byte(`{"id":1,"method":` + v + `,"params":[]}`))
			assert.True(t, errors.Is(err, ErrNotMessage), "method %s: %v", v, err)
		}
		// id of any non-null type is kept raw; only a non-negative integer
		// (or a string holding one) reads as a number
		m, err := Decode([]byte(`{"id":` + v + `,"method":"mining.ping","params":[]}`))
		require.NoError(t, err, "id %s", v)
		assert.Equal(t, KindRequest, m.Kind, "id %s", v)
		assert.JSONEq(t, v, string(m.ID))
		if n, ok := m.NumID(); v == `5` {
			assert.Equal(t, uint64(5), n)
		} else {
			assert.False(t, ok, "id %s", v)
		}
		// params, result and error are kept raw for the typed parsers
		m, err = Decode([]byte(`{"id":null,"method":"mining.notify","params":` + v + `}`))
		require.NoError(t, err, "params %s", v)
		assert.Equal(t, KindNotification, m.Kind)
		assert.JSONEq(t, v, string(m.Params))
		m, err = Decode([]byte(`{"id":2,"result":` + v + `,"error":` + v + `}`))
		require.NoError(t, err, "result/error %s", v)
		assert.Equal(t, KindResponse, m.Kind)
		assert.JSONEq(t, v, string(m.Result))
		e := DecodeError(m.Error)
		require.NotNil(t, e, "error %s", v)
		assert.NotEmpty(t, e.Message, "error %s", v)
		// reject-reason of any type is text
		m, err = Decode([]byte(`{"id":2,"result":false,"error":null,"reject-reason":` + v + `}`))
		require.NoError(t, err)
		if v == `""` {
			assert.Empty(t, m.RejectReason)
		} else {
			assert.NotEmpty(t, m.RejectReason, "reject-reason %s", v)
		}
	}
}

func TestDecodeMalformed(t *testing.T) {
	for _, line := range []string{
		``, `   `, `garbage`, `[1,2,3]`, `"str"`, `null`, `5`, `{`, `{"id":1`, `{}`, `{"id":null}`,
		`{"id":null,"result":true}`, `{"method":null}`, `{"method":"","id":1}`, `{"id":1,"result":tru}`,
		`{"id":1}{"id":2}`, `{"id":1,"method":"a"`, `{"id":1,"method":"a","params":[}`,
		"\x00\xff{}", "{\"id\":1,\xff}", strings.Repeat("{", 10000), strings.Repeat("[", 100000),
		`{"id":` + strings.Repeat("[", 20000) + `}`,
	} {
		m, err := Decode([]byte(line))
		assert.Nil(t, m, "%.40q", line)
		if assert.Error(t, err, "%.40q", line) {
			assert.True(t, errors.Is(err, ErrNotMessage), "%.40q: %v", line, err)
			assert.Less(t, len(err.Error()), 400, "the error quotes a bounded part of the line")
		}
	}
}

func TestDecodeHugeIDs(t *testing.T) {
	for raw, want := range map[string]uint64{`0`: 0, `7`: 7, `"12"`: 12, `18446744073709551615`: 1<<64 - 1} {
		m, err := Decode([]byte(`{"id":` + raw + `,"result":true}`))
		require.NoError(t, err)
		got, ok := m.NumID()
		assert.True(t, ok, raw)
		assert.Equal(t, want, got, raw)
	}
	for _, raw := range []string{`18446744073709551616`, `1e400`, `-0`, `1e3`, `"0x10"`, `" 1"`,
		strings.Repeat("9", 100000), `"` + strings.Repeat("9", 100000) + `"`} {
		m, err := Decode([]byte(`{"id":` + raw + `,"result":true}`))
		require.NoError(t, err, "%.30s", raw)
		assert.Equal(t, KindResponse, m.Kind)
		_, ok := m.NumID()
		assert.False(t, ok, "%.30s", raw)
	}
	var m Message
	_, ok := m.NumID()
	assert.False(t, ok, "no id")
}

// Bytes that are not UTF-8 in every text member: decoded, never a panic,
// and the method is what the JSON decoder makes of it (U+FFFD).
func TestDecodeNotUTF8(t *testing.T) {
	m, err := Decode([]byte("{\"id\":1,\"method\":\"mining.\xff\xfe\",\"params\":[\"\xc3\"]}"))
	require.NoError(t, err)
	assert.True(t, utf8.ValidString(m.Method))
	assert.Equal(t, "mining.\uFFFD\uFFFD", m.Method)
	m, err = Decode([]byte("{\"id\":1,\"result\":false,\"error\":[20,\"bad \xff\"],\"reject-reason\":\"\xe2\x82\"}"))
	require.NoError(t, err)
	assert.True(t, utf8.ValidString(m.RejectReason))
	e := DecodeError(m.Error)
	require.NotNil(t, e)
	assert.Equal(t, 20, e.Code)
	assert.Equal(t, "bad \uFFFD", e.Message)
	_, err = Decode([]byte("\xff\xfe"))
	require.Error(t, err)
	assert.True(t, utf8.ValidString(err.Error()), "the quoted line is escaped")
}

// Every error shape of stratum/PROTOCOL.md#errors, and the odd ones.
func TestDecodeErrorShapes(t *testing.T) {
	for _, tc := range []struct {
		raw     string
		code    int
		hasCode bool
		msg     string
	}{
		{`[21,"Job not found",null]`, 21, true, "Job not found"},
		{`[21,"Job not found",""]`, 21, true, "Job not found"},
		{`[23,"low difficulty"]`, 23, true, "low difficulty"},
		{`[-2,"Job 'bf' not found",null]`, -2, true, "Job 'bf' not found"},
		{`[-3,"Method not found","Traceback..."]`, -3, true, "Method not found: Traceback..."},
		{`[20.0,"Other"]`, 20, true, "Other"},
		{`[20.5,"Other"]`, 0, false, "20.5: Other"},
		{`[1e10,"big"]`, 0, false, "1e10: big"},
		{`[2147483648,"x"]`, 0, false, "2147483648: x"},
		{`["E1","oops"]`, 0, false, "E1: oops"},
		{`[null,"x",null]`, 0, false, "x"},
		{`[21]`, 21, true, "unspecified error"},
		{`[]`, 0, false, "unspecified error"},
		{`[21,{"a":1},[2]]`, 21, true, `{"a":1}: [2]`},
		{`{"code":-401,"message":"bad share"}`, -401, true, "bad share"},
		{`{"code":"23","msg":"low"}`, 0, false, "low"},
		{`{"reason":"r"}`, 0, false, "r"},
		{`{}`, 0, false, "{}"},
		{`{"code":22}`, 22, true, `{"code":22}`},
		{`"No nonce"`, 0, false, "No nonce"},
		{`""`, 0, false, "unspecified error"},
		{`true`, 0, false, "error: true"},
		{`false`, 0, false, "error: false"},
		{`5`, 0, false, "5"},
		{`[21,"cut`, 0, false, `[21,"cut`}, // not JSON: kept as text
	} {
		e := DecodeError(json.RawMessage(tc.raw))
		require.NotNil(t, e, tc.raw)
		assert.Equal(t, tc.code, e.Code, tc.raw)
		assert.Equal(t, tc.hasCode, e.HasCode, tc.raw)
		assert.Equal(t, tc.msg, e.Message, tc.raw)
		// the same through UnmarshalJSON, which never fails
		var u Error
		require.NoError(t, u.UnmarshalJSON([]byte(tc.raw)), tc.raw)
		assert.Equal(t, *e, u, tc.raw)
	}
	for _, raw := range []string{``, `null`, ` null `} {
		assert.Nil(t, DecodeError(json.RawMessage(raw)), "%q", raw)
	}
	// as a member of a struct: null and absent leave the pointer nil
	var r struct {
		Error *Error `json:"error"`
	}
	require.NoError(t, json.Unmarshal([]byte(`{"error":null}`), &r))
	assert.Nil(t, r.Error)
	require.NoError(t, json.Unmarshal([]byte(`{"error":{"code":24,"message":"Unauthorized worker"}}`), &r))
	assert.Equal(t, NewError(CodeUnauthorized, "Unauthorized worker"), r.Error)
}

func TestErrorWireShape(t *testing.T) {
	b, err := json.Marshal(NewError(CodeJobNotFound, "Job not found"))
	require.NoError(t, err)
	assert.Equal(t, `[21,"Job not found",null]`, string(b))
	b, err = json.Marshal(&Error{Message: "Stale"})
	require.NoError(t, err)
	assert.Equal(t, `"Stale"`, string(b), "a codeless error stays codeless")
	var nilErr *Error
	b, err = json.Marshal(nilErr)
	require.NoError(t, err)
	assert.Equal(t, `null`, string(b))
	for _, e := range []*Error{NewError(CodeMethodNotFound, "Method 'x' not found"), NewError(0, "zero"),
		NewError(CodeService, `quote " and <tag> & \ backslash`), {Message: "no code"}} {
		b, err := json.Marshal(e)
		require.NoError(t, err)
		assert.Equal(t, e, DecodeError(b), string(b))
	}
	assert.Equal(t, "Duplicate share (code 22)", NewError(CodeDuplicate, "Duplicate share").Error())
	assert.Equal(t, "Stale", (&Error{Message: "Stale"}).Error())
}

// The bytes each end writes: field order and null/[] as pools expect them.
func TestEncode(t *testing.T) {
	b, err := EncodeRequest(3, MethodAuthorize, []any{"w", "x"})
	require.NoError(t, err)
	assert.Equal(t, `{"id":3,"method":"mining.authorize","params":["w","x"]}`+"\n", string(b))
	b, err = EncodeRequest(1<<64-1, MethodSubscribe, nil)
	require.NoError(t, err)
	assert.Equal(t, `{"id":18446744073709551615,"method":"mining.subscribe","params":[]}`+"\n", string(b))
	b, err = EncodeNotification(MethodSetDifficulty, []any{0.5})
	require.NoError(t, err)
	assert.Equal(t, `{"id":null,"method":"mining.set_difficulty","params":[0.5]}`+"\n", string(b))
	b, err = EncodeNotification(MethodReconnect, nil)
	require.NoError(t, err)
	assert.Equal(t, `{"id":null,"method":"client.reconnect","params":[]}`+"\n", string(b))
	b, err = EncodeResponse(json.RawMessage(`"abc"`), true, nil)
	require.NoError(t, err)
	assert.Equal(t, `{"id":"abc","result":true,"error":null}`+"\n", string(b))
	b, err = EncodeResponse(nil, nil, NewError(CodeMethodNotFound, "Method not found"))
	require.NoError(t, err)
	assert.Equal(t, `{"id":null,"result":null,"error":[-3,"Method not found",null]}`+"\n", string(b))

	_, err = EncodeRequest(1, "", nil)
	assert.Error(t, err, "a request without a method would read back as a response")
	_, err = EncodeNotification("", nil)
	assert.Error(t, err)
	_, err = EncodeResponse(json.RawMessage(`{`), true, nil)
	assert.Error(t, err, "an id that is not JSON")
	_, err = EncodeResponse(json.RawMessage(`1`), make(chan int), nil)
	assert.Error(t, err, "a result that is not JSON")
}

// What one end encodes, the other decodes as the same message.
func TestEncodeDecodeRoundTrip(t *testing.T) {
	b, err := EncodeRequest(9, MethodSubmit, []any{"w", "j", "00", "504e86ed", "00000001"})
	require.NoError(t, err)
	m, err := Decode(b)
	require.NoError(t, err)
	assert.Equal(t, KindRequest, m.Kind)
	assert.Equal(t, MethodSubmit, m.Method)
	id, ok := m.NumID()
	assert.True(t, ok)
	assert.EqualValues(t, 9, id)
	assert.JSONEq(t, `["w","j","00","504e86ed","00000001"]`, string(m.Params))

	b, err = EncodeNotification(MethodNotify, nil)
	require.NoError(t, err)
	m, err = Decode(b)
	require.NoError(t, err)
	assert.Equal(t, KindNotification, m.Kind)
	assert.Nil(t, m.ID)

	b, err = EncodeResponse(json.RawMessage(`9`), false, NewError(CodeDuplicate, "Duplicate share"))
	require.NoError(t, err)
	m, err = Decode(b)
	require.NoError(t, err)
	assert.Equal(t, KindResponse, m.Kind)
	assert.Equal(t, NewError(CodeDuplicate, "Duplicate share"), DecodeError(m.Error))
}

// The package is shared by the test pool so that it agrees with the client
// on names and shapes only: it must not grow a dependency on the module
// (the client's logic, package work's policies) or outside it.
func TestImportsOnlyStandardLibrary(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		require.NoError(t, err)
		for _, imp := range af.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			require.NoError(t, err)
			first, _, _ := strings.Cut(path, "/")
			assert.NotContains(t, first, ".", "%s imports %s", f, path)
			assert.NotEqual(t, "clminer", first, "%s imports %s", f, path)
		}
	}
}
