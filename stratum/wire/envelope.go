package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Kind says how a decoded line is to be handled.
type Kind int

// The three kinds of JSON-RPC 1.0 messages.
const (
	KindNotification Kind = iota // method, id null or absent
	KindRequest                  // method and a non-null id: must be answered
	KindResponse                 // no method, non-null id
)

func (k Kind) String() string {
	switch k {
	case KindNotification:
		return "notification"
	case KindRequest:
		return "request"
	case KindResponse:
		return "response"
	}
	return "unknown"
}

// Message is one decoded line. Params, Result and Error are kept raw, for
// the typed parsers of the side that reads them.
type Message struct {
	Kind   Kind
	ID     json.RawMessage // raw id as sent; nil for notifications
	Method string
	Params json.RawMessage
	Result json.RawMessage
	Error  json.RawMessage
	// RejectReason is ckpool's "reject-reason" member, as sent.
	RejectReason string
}

// NumID returns the id as an unsigned integer, accepting numbers and numeric
// strings (our ends only send numeric ids).
func (m *Message) NumID() (uint64, bool) {
	if len(m.ID) == 0 {
		return 0, false
	}
	var n json.Number
	d := json.NewDecoder(bytes.NewReader(m.ID))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return 0, false
	}
	switch t := v.(type) {
	case json.Number:
		n = t
	case string:
		n = json.Number(t)
	default:
		return 0, false
	}
	u, err := strconv.ParseUint(string(n), 10, 64)
	if err != nil {
		return 0, false
	}
	return u, true
}

type wireMessage struct {
	ID           json.RawMessage `json:"id"`
	Method       json.RawMessage `json:"method"`
	Params       json.RawMessage `json:"params"`
	Result       json.RawMessage `json:"result"`
	Error        json.RawMessage `json:"error"`
	RejectReason json.RawMessage `json:"reject-reason"`
}

// ErrNotMessage is wrapped by Decode for lines that are not Stratum
// messages.
var ErrNotMessage = errors.New("not a stratum message")

// IsNull reports whether a raw member is absent or the literal null.
func IsNull(r json.RawMessage) bool {
	r = bytes.TrimSpace(r)
	return len(r) == 0 || string(r) == "null"
}

// quoted is how much of a line that is not a message its error quotes.
const quoted = 64

// Decode decodes one line (without its newline) and classifies it: by
// method first, else by id as a response.
func Decode(line []byte) (*Message, error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' {
		// %q escapes what is not printable UTF-8; the precision bounds the
		// runes quoted, so a 1 MiB line costs a short error.
		return nil, fmt.Errorf("%w: want a JSON object, got %.*q", ErrNotMessage, quoted, line)
	}
	var w wireMessage
	if err := json.Unmarshal(line, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotMessage, err)
	}
	m := &Message{Params: w.Params, Result: w.Result, Error: w.Error}
	if !IsNull(w.RejectReason) {
		if json.Unmarshal(w.RejectReason, &m.RejectReason) != nil {
			m.RejectReason = string(w.RejectReason)
		}
	}
	if !IsNull(w.ID) {
		m.ID = w.ID
	}
	if !IsNull(w.Method) {
		if err := json.Unmarshal(w.Method, &m.Method); err != nil || m.Method == "" {
			return nil, fmt.Errorf("%w: method is not a non-empty string", ErrNotMessage)
		}
		if m.ID == nil {
			m.Kind = KindNotification
		} else {
			m.Kind = KindRequest
		}
		return m, nil
	}
	if m.ID == nil {
		return nil, fmt.Errorf("%w: neither method nor id", ErrNotMessage)
	}
	m.Kind = KindResponse
	return m, nil
}

// EncodeRequest is the line of a request with a numeric id:
// {"id":id,"method":method,"params":params}.
func EncodeRequest(id uint64, method string, params []any) ([]byte, error) {
	if method == "" {
		return nil, errNoMethod
	}
	return encode(json.RawMessage(strconv.FormatUint(id, 10)), method, params, nil, nil)
}

// EncodeNotification is the line of a notification:
// {"id":null,"method":method,"params":params}.
func EncodeNotification(method string, params []any) ([]byte, error) {
	if method == "" {
		return nil, errNoMethod
	}
	return encode(nil, method, params, nil, nil)
}

// EncodeResponse is the line answering the request whose raw id is id (null
// when empty): {"id":id,"result":result,"error":rpcErr}.
func EncodeResponse(id json.RawMessage, result any, rpcErr *Error) ([]byte, error) {
	return encode(id, "", nil, result, rpcErr)
}

// errNoMethod refuses a request or notification without a method, which
// would be written as (and read back as) a response.
var errNoMethod = errors.New("stratum: a request or notification needs a method")

// encode writes every line either end sends: a method makes it a request or
// notification, none a response. params nil is written [] (some pools
// refuse a null or absent params).
func encode(id json.RawMessage, method string, params []any, result any, rpcErr *Error) ([]byte, error) {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	var v any
	if method != "" {
		if params == nil {
			params = []any{}
		}
		v = struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params []any           `json:"params"`
		}{id, method, params}
	} else {
		v = struct {
			ID     json.RawMessage `json:"id"`
			Result any             `json:"result"`
			Error  *Error          `json:"error"`
		}{id, result, rpcErr}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
