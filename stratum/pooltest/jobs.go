package pooltest

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"time"
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

// Vector is a shared/vectors block file (or one case of
// stratum_sessions.json) reduced to what a pool and a miner need.
type Vector struct {
	Name            string
	Notify          NotifyParams
	Extranonce1     string
	Extranonce2Size int
	Difficulty      float64
	Submit          []string // worker, job_id, extranonce2, ntime, nonce
}

type vectorFile struct {
	Name            string `json:"name"`
	SubscribeResult struct {
		Extranonce1     string `json:"extranonce1"`
		Extranonce2Size int    `json:"extranonce2_size"`
	} `json:"subscribe_result"`
	SetDifficulty float64         `json:"set_difficulty"`
	NotifyParams  json.RawMessage `json:"notify_params"`
	SubmitParams  []string        `json:"submit_params"`
	Cases         []vectorFile    `json:"cases"`
}

// LoadVectors reads a vector file; a sessions file yields one Vector per case.
func LoadVectors(path string) ([]Vector, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f vectorFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	files := f.Cases
	if len(files) == 0 {
		files = []vectorFile{f}
	}
	var out []Vector
	for _, vf := range files {
		n, err := ParseNotifyParams(vf.NotifyParams)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", path, vf.Name, err)
		}
		d := vf.SetDifficulty
		if d == 0 {
			d = 1
		}
		out = append(out, Vector{Name: vf.Name, Notify: n, Extranonce1: vf.SubscribeResult.Extranonce1,
			Extranonce2Size: vf.SubscribeResult.Extranonce2Size, Difficulty: d, Submit: vf.SubmitParams})
	}
	return out, nil
}

// LoadVector reads the first vector of a file.
func LoadVector(path string) (Vector, error) {
	v, err := LoadVectors(path)
	if err != nil {
		return Vector{}, err
	}
	return v[0], nil
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
