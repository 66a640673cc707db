package stratum

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"clminer/stratum/wire"
	"clminer/work"
	"clminer/work/safetext"
)

// ParseError turns the error member (any JSON type, wire.DecodeError) and
// ckpool's reject-reason into a wire.Error whose text is clipped for logs
// and metric labels; nil when there is neither.
func ParseError(raw json.RawMessage, rejectReason string) *wire.Error {
	e := wire.DecodeError(raw)
	if e != nil {
		e.Message = clip(e.Message)
	}
	if rejectReason = clip(rejectReason); rejectReason != "" {
		if e == nil {
			e = &wire.Error{}
		}
		if e.Message == "" {
			e.Message = rejectReason
		} else if !strings.Contains(e.Message, rejectReason) {
			e.Message = clip(rejectReason + ": " + e.Message)
		}
	}
	return e
}

func rawText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return clip(s)
	}
	return clip(string(raw))
}

// clip keeps pool text short enough for a log line, and valid UTF-8 (a
// reason becomes a metric label): package safetext's one rule.
func clip(s string) string { return safetext.Clip(s, 200) }

// IsTrue reports whether a result is the JSON literal true.
func IsTrue(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "true" }

// SubscribeResult is the parsed reply to mining.subscribe.
type SubscribeResult struct {
	// Subscriptions as (method, id) pairs; may be empty.
	Subscriptions [][2]string
	// SessionID is the mining.notify subscription id (cgminer's "sessionid"),
	// sent back on reconnect to resume; "" when the pool gave none.
	SessionID       string
	Extranonce1     string // lower-case hex, may be empty (p2pool)
	Extranonce2Size int
}

// ParseSubscribeResult accepts every shape seen: a list of pairs, a single
// pair (p2pool), notify only, no subscriptions at all, an empty extranonce1.
func ParseSubscribeResult(raw json.RawMessage) (SubscribeResult, error) {
	var r SubscribeResult
	var arr []json.RawMessage
	if err := json.Unmarshal(raw, &arr); err != nil {
		return r, fmt.Errorf("subscribe result is not an array: %s", clip(string(raw)))
	}
	if len(arr) < 3 {
		return r, fmt.Errorf("subscribe result has %d elements, want 3", len(arr))
	}
	r.Subscriptions = parseSubscriptions(arr[0])
	for _, s := range r.Subscriptions {
		if s[0] == wire.MethodNotify || (r.SessionID == "" && s[0] == wire.MethodSetDifficulty) {
			r.SessionID = s[1]
		}
	}
	if err := json.Unmarshal(arr[1], &r.Extranonce1); err != nil {
		return r, fmt.Errorf("subscribe result: extranonce1 is not a string: %s", clip(string(arr[1])))
	}
	en1, err := hex.DecodeString(r.Extranonce1)
	if err != nil {
		return r, fmt.Errorf("subscribe result: extranonce1 %q is not hex", clip(r.Extranonce1))
	}
	if len(en1) > work.MaxExtranonce1Len {
		return r, fmt.Errorf("subscribe result: extranonce1 of %d bytes is over the limit of %d", len(en1), work.MaxExtranonce1Len)
	}
	r.Extranonce1 = hex.EncodeToString(en1)
	size, err := parseInt(arr[2])
	if err != nil {
		return r, fmt.Errorf("subscribe result: extranonce2_size: %v", err)
	}
	if size < work.MinExtranonce2Size || size > work.MaxExtranonce2Size {
		return r, fmt.Errorf("subscribe result: extranonce2_size %d is outside %d..%d", size, work.MinExtranonce2Size, work.MaxExtranonce2Size)
	}
	r.Extranonce2Size = size
	return r, nil
}

func parseSubscriptions(raw json.RawMessage) [][2]string {
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil {
		return nil
	}
	if pair, ok := stringPair(list); ok { // p2pool: a single pair
		return [][2]string{pair}
	}
	var out [][2]string
	for _, item := range list {
		var inner []json.RawMessage
		if json.Unmarshal(item, &inner) != nil {
			continue
		}
		if pair, ok := stringPair(inner); ok {
			out = append(out, pair)
		}
	}
	return out
}

func stringPair(list []json.RawMessage) ([2]string, bool) {
	if len(list) != 2 {
		return [2]string{}, false
	}
	var m string
	if json.Unmarshal(list[0], &m) != nil || !strings.Contains(m, ".") {
		return [2]string{}, false
	}
	var id string
	if json.Unmarshal(list[1], &id) != nil {
		// ids may be numbers
		var n json.Number
		if json.Unmarshal(list[1], &n) != nil {
			return [2]string{}, false
		}
		id = string(n)
	}
	return [2]string{m, id}, true
}

func parseInt(raw json.RawMessage) (int, error) {
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return 0, fmt.Errorf("not a number: %s", clip(string(raw)))
		}
		n = json.Number(s)
	}
	i, err := strconv.ParseInt(string(n), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("not an integer: %s", clip(string(raw)))
	}
	return int(i), nil
}

func paramsArray(raw json.RawMessage, method string) ([]json.RawMessage, error) {
	var arr []json.RawMessage
	if wire.IsNull(raw) {
		return nil, nil
	}
	if err := json.Unmarshal(raw, &arr); err != nil {
		return nil, fmt.Errorf("%s: params are not an array", method)
	}
	return arr, nil
}

// ParseNotify reads the nine mining.notify params into work.JobParams; the
// session fills in extranonce1, extranonce2_size and difficulty.
func ParseNotify(raw json.RawMessage) (work.JobParams, error) {
	var p work.JobParams
	arr, err := paramsArray(raw, wire.MethodNotify)
	if err != nil {
		return p, err
	}
	if len(arr) < 9 {
		return p, fmt.Errorf("mining.notify: %d params, want 9", len(arr))
	}
	fields := []struct {
		name string
		dst  *string
	}{{"job_id", &p.JobID}, {"prevhash", &p.PrevHash}, {"coinb1", &p.Coinb1}, {"coinb2", &p.Coinb2},
		{"version", &p.Version}, {"nbits", &p.NBits}, {"ntime", &p.NTime}}
	idx := []int{0, 1, 2, 3, 5, 6, 7}
	for i, f := range fields {
		if err := json.Unmarshal(arr[idx[i]], f.dst); err != nil || wire.IsNull(arr[idx[i]]) {
			return p, fmt.Errorf("mining.notify: %s is not a string: %s", f.name, clip(string(arr[idx[i]])))
		}
	}
	if !wire.IsNull(arr[4]) {
		if err := json.Unmarshal(arr[4], &p.MerkleBranch); err != nil {
			return p, fmt.Errorf("mining.notify: merkle_branch is not a list of strings")
		}
	}
	if len(p.MerkleBranch) > work.MaxMerkleBranches {
		return p, fmt.Errorf("mining.notify: %d merkle branches is over the limit of %d", len(p.MerkleBranch), work.MaxMerkleBranches)
	}
	if err := json.Unmarshal(arr[8], &p.CleanJobs); err != nil {
		// tolerate 0/1
		n, nerr := parseInt(arr[8])
		if nerr != nil {
			return p, fmt.Errorf("mining.notify: clean_jobs is not a boolean: %s", clip(string(arr[8])))
		}
		p.CleanJobs = n != 0
	}
	return p, nil
}

// ParseDifficulty reads mining.set_difficulty; values <= 0 or not finite are
// an error (the caller ignores them, as cgminer does).
func ParseDifficulty(raw json.RawMessage) (float64, error) {
	arr, err := paramsArray(raw, wire.MethodSetDifficulty)
	if err != nil {
		return 0, err
	}
	if len(arr) < 1 {
		return 0, fmt.Errorf("mining.set_difficulty: no params")
	}
	var f float64
	if err := json.Unmarshal(arr[0], &f); err != nil {
		var s string
		if json.Unmarshal(arr[0], &s) != nil {
			return 0, fmt.Errorf("mining.set_difficulty: not a number: %s", clip(string(arr[0])))
		}
		if f, err = strconv.ParseFloat(s, 64); err != nil {
			return 0, fmt.Errorf("mining.set_difficulty: not a number: %q", clip(s))
		}
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 {
		return 0, fmt.Errorf("mining.set_difficulty: %v is not a positive difficulty", f)
	}
	return f, nil
}

// ParseSetExtranonce reads mining.set_extranonce; size is 0 when the pool
// left it out (keep the current one).
func ParseSetExtranonce(raw json.RawMessage) (en1 string, size int, err error) {
	arr, err := paramsArray(raw, wire.MethodSetExtranonce)
	if err != nil {
		return "", 0, err
	}
	if len(arr) < 1 {
		return "", 0, fmt.Errorf("mining.set_extranonce: no params")
	}
	if json.Unmarshal(arr[0], &en1) != nil {
		return "", 0, fmt.Errorf("mining.set_extranonce: extranonce1 is not a string")
	}
	b, herr := hex.DecodeString(en1)
	if herr != nil || len(b) > work.MaxExtranonce1Len {
		return "", 0, fmt.Errorf("mining.set_extranonce: bad extranonce1 %q", clip(en1))
	}
	if len(arr) > 1 && !wire.IsNull(arr[1]) {
		if size, err = parseInt(arr[1]); err != nil {
			return "", 0, fmt.Errorf("mining.set_extranonce: extranonce2_size: %v", err)
		}
		if size < work.MinExtranonce2Size || size > work.MaxExtranonce2Size {
			return "", 0, fmt.Errorf("mining.set_extranonce: extranonce2_size %d is outside %d..%d", size, work.MinExtranonce2Size, work.MaxExtranonce2Size)
		}
	}
	return hex.EncodeToString(b), size, nil
}

// ParseVersionMask reads mining.set_version_mask.
func ParseVersionMask(raw json.RawMessage) (uint32, error) {
	arr, err := paramsArray(raw, wire.MethodSetVersionMask)
	if err != nil {
		return 0, err
	}
	if len(arr) < 1 {
		return 0, fmt.Errorf("mining.set_version_mask: no params")
	}
	var s string
	if json.Unmarshal(arr[0], &s) != nil {
		return 0, fmt.Errorf("mining.set_version_mask: mask is not a string")
	}
	return parseMask(s)
}

func parseMask(s string) (uint32, error) {
	if len(s) == 0 || len(s) > 8 {
		return 0, fmt.Errorf("version mask %q: want up to 8 hex chars", clip(s))
	}
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("version mask %q is not hex", clip(s))
	}
	return uint32(v), nil
}

// ParseConfigureResult reads the version-rolling part of a mining.configure
// reply: whether rolling was granted and the mask (ffffffff when left out).
func ParseConfigureResult(raw json.RawMessage) (rolling bool, mask uint32, err error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return false, 0, fmt.Errorf("mining.configure result is not an object: %s", clip(string(raw)))
	}
	v, ok := m["version-rolling"]
	if !ok || !IsTrue(v) {
		return false, 0, nil
	}
	mask = 0xffffffff
	if mr, ok := m["version-rolling.mask"]; ok {
		var s string
		if json.Unmarshal(mr, &s) != nil {
			return false, 0, fmt.Errorf("mining.configure: version-rolling.mask is not a string")
		}
		if mask, err = parseMask(s); err != nil {
			return false, 0, err
		}
	}
	return true, mask, nil
}

// Reconnect is a parsed client.reconnect; empty Host or Port mean unchanged.
type Reconnect struct {
	Host string
	Port string
	Wait int // seconds
}

// ParseReconnect reads client.reconnect([host[, port[, wait]]]); the port may
// be a number or a string, host and port may be null.
func ParseReconnect(raw json.RawMessage) (Reconnect, error) {
	var r Reconnect
	arr, err := paramsArray(raw, wire.MethodReconnect)
	if err != nil {
		return r, err
	}
	if len(arr) > 0 && !wire.IsNull(arr[0]) {
		if json.Unmarshal(arr[0], &r.Host) != nil {
			return r, fmt.Errorf("client.reconnect: host is not a string")
		}
	}
	if len(arr) > 1 && !wire.IsNull(arr[1]) {
		p, err := parseInt(arr[1])
		if err != nil || p <= 0 || p > 65535 {
			return r, fmt.Errorf("client.reconnect: bad port %s", clip(string(arr[1])))
		}
		r.Port = strconv.Itoa(p)
	}
	if len(arr) > 2 && !wire.IsNull(arr[2]) {
		w, err := parseInt(arr[2])
		if err != nil || w < 0 {
			return r, fmt.Errorf("client.reconnect: bad wait %s", clip(string(arr[2])))
		}
		r.Wait = w
	}
	return r, nil
}

// ParseShowMessage returns client.show_message's text.
func ParseShowMessage(raw json.RawMessage) string {
	arr, err := paramsArray(raw, wire.MethodShowMessage)
	if err != nil || len(arr) == 0 {
		return ""
	}
	return rawText(arr[0])
}

// The server side of the same messages: parsers for what a miner sends and
// builders for what a pool sends, each the pair of a client-side builder or
// parser above, so a proxy and the client agree on every field by
// construction (codec_test round-trips each pair).

// MaxWorkerLen bounds a worker name a miner may send (pools cap them too).
const MaxWorkerLen = 128

// maxParamLen bounds any one string param a miner sends the server; the
// longest real one is a job id (work.MaxJobIDLen).
const maxParamLen = work.MaxJobIDLen

// SubscribeParams builds mining.subscribe's params; session is "" for a
// fresh subscription.
func SubscribeParams(userAgent, session string) []any {
	p := []any{userAgent}
	if session != "" {
		p = append(p, session)
	}
	return p
}

// ParseSubscribeParams reads mining.subscribe([user_agent[, session]]); both
// are optional and any non-string is ignored, as pools do.
func ParseSubscribeParams(raw json.RawMessage) (userAgent, session string, err error) {
	arr, err := paramsArray(raw, wire.MethodSubscribe)
	if err != nil {
		return "", "", err
	}
	if len(arr) > 0 {
		_ = json.Unmarshal(arr[0], &userAgent)
	}
	if len(arr) > 1 {
		_ = json.Unmarshal(arr[1], &session)
	}
	return clip(userAgent), clip(session), nil
}

// Result is the subscribe reply's result array; ParseSubscribeResult reads
// it back.
func (r SubscribeResult) Result() []any {
	subs := make([]any, 0, len(r.Subscriptions))
	for _, s := range r.Subscriptions {
		subs = append(subs, []any{s[0], s[1]})
	}
	return []any{subs, r.Extranonce1, r.Extranonce2Size}
}

// AuthorizeParams builds mining.authorize's params.
func AuthorizeParams(user, pass string) []any { return []any{user, pass} }

// ParseAuthorizeParams reads mining.authorize(user[, pass]): the user must be
// a non-empty string of at most MaxWorkerLen bytes; a missing or non-string
// password is "".
func ParseAuthorizeParams(raw json.RawMessage) (user, pass string, err error) {
	arr, err := paramsArray(raw, wire.MethodAuthorize)
	if err != nil {
		return "", "", err
	}
	if len(arr) < 1 || json.Unmarshal(arr[0], &user) != nil || user == "" {
		return "", "", fmt.Errorf("mining.authorize: the worker name is not a non-empty string")
	}
	if len(user) > MaxWorkerLen {
		return "", "", fmt.Errorf("mining.authorize: worker name of %d bytes is over the limit of %d", len(user), MaxWorkerLen)
	}
	if len(arr) > 1 {
		_ = json.Unmarshal(arr[1], &pass)
	}
	return user, pass, nil
}

// ParseSubmitParams reads mining.submit(worker, job_id, extranonce2, ntime,
// nonce[, version_bits]), the pair of work.Submit.Params. Every param must be
// a string of bounded length; the hex inside is the caller's to judge
// against the job.
func ParseSubmitParams(raw json.RawMessage) (work.Submit, error) {
	var s work.Submit
	arr, err := paramsArray(raw, wire.MethodSubmit)
	if err != nil {
		return s, err
	}
	if len(arr) < 5 || len(arr) > 6 {
		return s, fmt.Errorf("mining.submit: %d params, want 5 or 6", len(arr))
	}
	names := [...]string{"worker", "job_id", "extranonce2", "ntime", "nonce", "version_bits"}
	dst := [...]*string{&s.Worker, &s.JobID, &s.Extranonce2, &s.NTime, &s.Nonce, &s.VersionBits}
	for i, r := range arr {
		if json.Unmarshal(r, dst[i]) != nil || wire.IsNull(r) {
			return work.Submit{}, fmt.Errorf("mining.submit: %s is not a string", names[i])
		}
		if len(*dst[i]) > maxParamLen {
			return work.Submit{}, fmt.Errorf("mining.submit: %s of %d bytes is too long", names[i], len(*dst[i]))
		}
	}
	if len(arr) == 6 && s.VersionBits == "" {
		return work.Submit{}, fmt.Errorf("mining.submit: version_bits is empty")
	}
	return s, nil
}

// ConfigureRequest is what a miner asks for in mining.configure.
type ConfigureRequest struct {
	Extensions     []string
	VersionRolling bool
	// Mask is the miner's version-rolling.mask (ffffffff when left out,
	// BIP 310's default).
	Mask        uint32
	MinBitCount int
}

// maxExtensions bounds the extension list a miner may send.
const maxExtensions = 16

// ConfigureParams builds mining.configure's params asking for version
// rolling under mask.
func ConfigureParams(mask uint32, minBitCount int) []any {
	return []any{
		[]any{"version-rolling"},
		map[string]any{"version-rolling.mask": fmt.Sprintf("%08x", mask), "version-rolling.min-bit-count": minBitCount},
	}
}

// ParseConfigureParams reads mining.configure([extensions], {params}).
func ParseConfigureParams(raw json.RawMessage) (ConfigureRequest, error) {
	var r ConfigureRequest
	arr, err := paramsArray(raw, wire.MethodConfigure)
	if err != nil {
		return r, err
	}
	if len(arr) < 1 || json.Unmarshal(arr[0], &r.Extensions) != nil {
		return r, fmt.Errorf("mining.configure: extensions are not a list of strings")
	}
	if len(r.Extensions) > maxExtensions {
		return ConfigureRequest{}, fmt.Errorf("mining.configure: %d extensions is over the limit of %d", len(r.Extensions), maxExtensions)
	}
	for i, e := range r.Extensions {
		r.Extensions[i] = clip(e)
		if e == "version-rolling" {
			r.VersionRolling = true
		}
	}
	r.Mask = 0xffffffff
	if len(arr) > 1 && !wire.IsNull(arr[1]) {
		var m map[string]json.RawMessage
		if json.Unmarshal(arr[1], &m) != nil {
			return ConfigureRequest{}, fmt.Errorf("mining.configure: extension params are not an object")
		}
		if v, ok := m["version-rolling.mask"]; ok {
			var s string
			if json.Unmarshal(v, &s) != nil {
				return ConfigureRequest{}, fmt.Errorf("mining.configure: version-rolling.mask is not a string")
			}
			if r.Mask, err = parseMask(s); err != nil {
				return ConfigureRequest{}, err
			}
		}
		if v, ok := m["version-rolling.min-bit-count"]; ok {
			if n, err := parseInt(v); err == nil && n >= 0 && n <= 32 {
				r.MinBitCount = n
			}
		}
	}
	return r, nil
}

// ConfigureResult builds the mining.configure result: version rolling
// granted under mask (or refused), every other extension asked for refused.
// ParseConfigureResult reads it back.
func ConfigureResult(req ConfigureRequest, rolling bool, mask uint32) map[string]any {
	out := map[string]any{}
	for _, e := range req.Extensions {
		if e != "version-rolling" {
			out[e] = false
		}
	}
	if req.VersionRolling {
		out["version-rolling"] = rolling
		if rolling {
			out["version-rolling.mask"] = fmt.Sprintf("%08x", mask)
		}
	}
	return out
}

// NotifyParams builds mining.notify's nine params; ParseNotify reads them
// back (session fields are not part of the message).
func NotifyParams(p work.JobParams) []any {
	br := p.MerkleBranch
	if br == nil {
		br = []string{}
	}
	return []any{p.JobID, p.PrevHash, p.Coinb1, p.Coinb2, br, p.Version, p.NBits, p.NTime, p.CleanJobs}
}

// DifficultyParams builds mining.set_difficulty's params.
func DifficultyParams(d float64) []any { return []any{d} }

// SetExtranonceParams builds mining.set_extranonce's params.
func SetExtranonceParams(en1 string, size int) []any { return []any{en1, size} }

// VersionMaskParams builds mining.set_version_mask's params.
func VersionMaskParams(mask uint32) []any { return []any{fmt.Sprintf("%08x", mask)} }

// ReconnectParams builds client.reconnect's params; an empty host and port
// (ckpool's []) mean "this server again".
func ReconnectParams(r Reconnect) []any {
	if r.Host == "" && r.Port == "" && r.Wait == 0 {
		return []any{}
	}
	var host, port any
	if r.Host != "" {
		host = r.Host
	}
	if r.Port != "" {
		port = r.Port
	}
	return []any{host, port, r.Wait}
}

// LineReader frames newline-terminated lines with a hard cap: the client's
// own reader, for a server reading miners.
type LineReader struct{ lr *lineReader }

// NewLineReader reads lines of at most max bytes from r.
func NewLineReader(r io.Reader, max int) *LineReader {
	return &LineReader{lr: newLineReader(r, max)}
}

// ReadLine returns the next line without "\n" or "\r\n", valid until the
// next call; ErrLineTooLong past the cap.
func (l *LineReader) ReadLine() ([]byte, error) { return l.lr.ReadLine() }
