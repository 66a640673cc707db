package pooltest

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"clminer/work/vectors"
)

// NotifyParams are the nine mining.notify params as a pool sends them.
type NotifyParams struct {
	JobID        string
	PrevHash     string
	Coinb1       string
	Coinb2       string
	MerkleBranch []string
	Version      string
	NBits        string
	NTime        string
	CleanJobs    bool
}

// Array is the JSON params array.
func (p NotifyParams) Array() []any {
	br := p.MerkleBranch
	if br == nil {
		br = []string{}
	}
	return []any{p.JobID, p.PrevHash, p.Coinb1, p.Coinb2, br, p.Version, p.NBits, p.NTime, p.CleanJobs}
}

// ParseNotifyParams reads a notify params array (test helper; strict).
func ParseNotifyParams(raw json.RawMessage) (NotifyParams, error) {
	var arr []json.RawMessage
	var p NotifyParams
	if err := json.Unmarshal(raw, &arr); err != nil || len(arr) != 9 {
		return p, fmt.Errorf("notify params: want an array of 9")
	}
	dst := []any{&p.JobID, &p.PrevHash, &p.Coinb1, &p.Coinb2, &p.MerkleBranch, &p.Version, &p.NBits, &p.NTime, &p.CleanJobs}
	for i, d := range dst {
		if err := json.Unmarshal(arr[i], d); err != nil {
			return p, fmt.Errorf("notify param %d: %v", i, err)
		}
	}
	return p, nil
}

// Vector is a work/vectors block file (or one case of
// stratum_sessions.json) reduced to what a pool and a miner need.
type Vector struct {
	Name            string
	Notify          NotifyParams
	Extranonce1     string
	Extranonce2Size int
	Difficulty      float64
	Submit          []string // worker, job_id, extranonce2, ntime, nonce
}

// FromVector is what a pool sends for v (vectors reads the files, so there
// is one reader of their format).
func FromVector(v vectors.Vector) (Vector, error) {
	raw, err := json.Marshal(v.NotifyParams)
	if err != nil {
		return Vector{}, fmt.Errorf("%s: %w", v.Name, err)
	}
	n, err := ParseNotifyParams(raw)
	if err != nil {
		return Vector{}, fmt.Errorf("%s: %w", v.Name, err)
	}
	d := v.SetDifficulty
	if d == 0 {
		d = 1
	}
	sub := make([]string, len(v.SubmitParams))
	for i, x := range v.SubmitParams {
		sub[i], _ = x.(string) // the worker may be null
	}
	return Vector{Name: v.Name, Notify: n, Extranonce1: v.SubscribeResult.Extranonce1,
		Extranonce2Size: v.SubscribeResult.Extranonce2Size, Difficulty: d, Submit: sub}, nil
}

// BuiltinVector is the first built-in vector whose label (file name without
// .json, or the session case's name) is label.
func BuiltinVector(label string) (Vector, error) {
	vs, err := vectors.Builtin()
	if err != nil {
		return Vector{}, err
	}
	for _, v := range vs {
		if v.Label() == label {
			return FromVector(v)
		}
	}
	return Vector{}, fmt.Errorf("no built-in vector %q", label)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// GenerateJob makes a random but realistic job: a coinbase split around the
// extranonces inside the scriptSig (BIP 34 height first), one P2PKH output,
// 0..3 merkle branches, version 0x20000000 and nbits 1d00ffff (network difficulty 1), so that
// low-difficulty shares are not blocks but a lucky one can be.
func GenerateJob(id string, en1Size, en2Size int, clean bool) NotifyParams {
	var hb [4]byte
	_, _ = rand.Read(hb[:])
	height := binary.LittleEndian.Uint32(hb[:])%800000 + 1
	heightPush := []byte{3, byte(height), byte(height >> 8), byte(height >> 16)}
	tag := []byte("/pooltest/")
	tagPush := append([]byte{byte(len(tag))}, tag...)
	scriptLen := len(heightPush) + en1Size + en2Size + len(tagPush)
	coinb1 := "01000000" + "01" + hex.EncodeToString(make([]byte, 32)) + "ffffffff" +
		hex.EncodeToString([]byte{byte(scriptLen)}) + hex.EncodeToString(heightPush)
	coinb2 := hex.EncodeToString(tagPush) + "ffffffff" + "01" + "00f2052a01000000" +
		"1976a914" + randHex(20) + "88ac" + "00000000"
	var nb [1]byte
	_, _ = rand.Read(nb[:])
	branches := make([]string, int(nb[0])%4)
	for i := range branches {
		branches[i] = randHex(32)
	}
	var t [4]byte
	binary.BigEndian.PutUint32(t[:], uint32(time.Now().Unix()))
	return NotifyParams{JobID: id, PrevHash: randHex(32), Coinb1: coinb1, Coinb2: coinb2, MerkleBranch: branches,
		Version: "20000000", NBits: "1d00ffff", NTime: hex.EncodeToString(t[:]), CleanJobs: clean}
}
