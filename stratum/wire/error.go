package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// Error is the error member of a response. It is written in the most
// widely parsed shape, [code, "message", null], and read from any shape a
// pool sends (see DecodeError).
type Error struct {
	Code int
	// HasCode is false when the pool sent no numeric code (a bare string,
	// a boolean, ckpool's reject-reason); Code is 0 then.
	HasCode bool
	Message string
}

// NewError is the error member [code, msg, null].
func NewError(code int, msg string) *Error {
	return &Error{Code: code, HasCode: true, Message: msg}
}

func (e *Error) Error() string {
	if e.HasCode {
		return fmt.Sprintf("%s (code %d)", e.Message, e.Code)
	}
	return e.Message
}

// MarshalJSON writes [code, "message", null]; an error without a code is
// written as its bare message (as ckpool does), so that it reads back
// without one.
func (e *Error) MarshalJSON() ([]byte, error) {
	if e == nil {
		return []byte("null"), nil
	}
	if !e.HasCode {
		return json.Marshal(e.Message)
	}
	return json.Marshal([]any{e.Code, e.Message, nil})
}

// UnmarshalJSON reads any shape (DecodeError) and never fails: a pool's
// odd error member must not turn its reject into a protocol error. null
// leaves e unchanged, as encoding/json does for other types.
func (e *Error) UnmarshalJSON(b []byte) error {
	if d := DecodeError(b); d != nil {
		*e = *d
	}
	return nil
}

// DecodeError reads the error member in any of the shapes of
// stratum/PROTOCOL.md#errors: [code, "message", data], [code, "message"],
// a JSON-RPC 2 object {code, message}, a bare string, a boolean, a number.
// It is nil for null or an absent member, and otherwise always has a
// non-empty Message. The text is kept as sent (not clipped).
func DecodeError(raw json.RawMessage) *Error {
	if IsNull(raw) {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return &Error{Message: string(raw)}
	}
	e := &Error{}
	switch t := v.(type) {
	case []any:
		if len(t) > 0 {
			e.Code, e.HasCode = numberToInt(t[0])
			if !e.HasCode {
				e.Message = valueText(t[0])
			}
		}
		if len(t) > 1 {
			e.Message = joinText(e.Message, valueText(t[1]))
		}
		if len(t) > 2 && t[2] != nil {
			if s := valueText(t[2]); s != "" {
				e.Message = joinText(e.Message, s)
			}
		}
	case map[string]any:
		if c, ok := t["code"]; ok {
			e.Code, e.HasCode = numberToInt(c)
		}
		for _, k := range []string{"message", "msg", "reason"} {
			if m, ok := t[k]; ok {
				e.Message = valueText(m)
				break
			}
		}
		if e.Message == "" {
			e.Message = string(raw)
		}
	case string:
		e.Message = t
	case bool:
		e.Message = fmt.Sprintf("error: %v", t)
	default:
		e.Message = string(raw)
	}
	if e.Message == "" {
		e.Message = "unspecified error"
	}
	return e
}

func joinText(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + ": " + b
}

// numberToInt reads a code written as an integer or an integral float
// (20.0) that fits 32 bits.
func numberToInt(v any) (int, bool) {
	if n, ok := v.(json.Number); ok {
		if i, err := strconv.ParseInt(string(n), 10, 32); err == nil {
			return int(i), true
		}
		if f, err := strconv.ParseFloat(string(n), 64); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<31 {
			return int(f), true
		}
	}
	return 0, false
}

func valueText(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case json.Number:
		return string(t)
	case bool:
		return strconv.FormatBool(t)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
