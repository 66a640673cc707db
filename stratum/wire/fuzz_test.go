package wire

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"
)

// FuzzDecode feeds arbitrary lines to Decode and, as an error member, to
// DecodeError: neither may panic, a decoded message must be classified, an
// error always has text, and what decodes re-encodes to the same message
// (the envelope and the error's code and text survive a round trip).
func FuzzDecode(f *testing.F) {
	for _, l := range validLines {
		f.Add([]byte(l))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		if e := DecodeError(line); e != nil && e.Message == "" {
			t.Fatal("an error without text")
		}
		var u Error
		if err := u.UnmarshalJSON(line); err != nil {
			t.Fatalf("UnmarshalJSON failed: %v", err)
		}
		m, err := Decode(line)
		if err != nil {
			if m != nil {
				t.Fatal("a message with an error")
			}
			return
		}
		_, _ = m.NumID()
		var again []byte
		switch m.Kind {
		case KindNotification, KindRequest:
			if m.Method == "" {
				t.Fatal("request without method")
			}
			if m.Kind == KindRequest && m.ID == nil {
				t.Fatal("request without id")
			}
			again, err = EncodeNotification(m.Method, nil)
		case KindResponse:
			if m.ID == nil {
				t.Fatal("response without id")
			}
			e := DecodeError(m.Error)
			if e != nil && e.Message == "" {
				t.Fatal("an error without text")
			}
			again, err = EncodeResponse(m.ID, m.Result, e)
			if err != nil {
				t.Fatalf("re-encoding %q: %v", line, err)
			}
			back, err := Decode(again)
			if err != nil || back.Kind != KindResponse {
				t.Fatalf("re-encoded %q does not decode as a response: %v", again, err)
			}
			if !sameJSON(back.ID, m.ID) || !sameJSON(back.Result, orNull(m.Result)) {
				t.Fatalf("id or result changed: %q -> %q", line, again)
			}
			b := DecodeError(back.Error)
			if (e == nil) != (b == nil) {
				t.Fatalf("error lost or invented: %q -> %q", line, again)
			}
			if e != nil && utf8.ValidString(e.Message) && (b.Code != e.Code || b.HasCode != e.HasCode || b.Message != e.Message) {
				t.Fatalf("error %+v came back as %+v", e, b)
			}
			return
		default:
			t.Fatalf("kind %v", m.Kind)
		}
		if err != nil {
			t.Fatalf("re-encoding %q: %v", line, err)
		}
		back, err := Decode(again)
		if err != nil || back.Method != m.Method {
			t.Fatalf("method %q came back as %v, %v", m.Method, back, err)
		}
	})
}

func orNull(r json.RawMessage) json.RawMessage {
	if len(r) == 0 {
		return json.RawMessage("null")
	}
	return r
}

// sameJSON compares two raw values as values: json.Marshal compacts and
// HTML-escapes a RawMessage it writes ("&" becomes "\u0026").
func sameJSON(a, b json.RawMessage) bool {
	va, oka := decodeValue(a)
	vb, okb := decodeValue(b)
	return oka && okb && reflect.DeepEqual(va, vb)
}

func decodeValue(r json.RawMessage) (any, bool) {
	d := json.NewDecoder(bytes.NewReader(r))
	d.UseNumber()
	var v any
	return v, d.Decode(&v) == nil
}
