package vectors

import (
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"clminer/work"
)

// The whole vector set lives in the repository and the binary: tests,
// `make selftest` and `clminer selftest` need nothing beside the checkout.
//
//go:embed builtin/*.json
var builtinFS embed.FS

// Vector is one Stratum job with what a correct miner must compute.
type Vector struct {
	Name            string          `json:"name"`
	File            string          `json:"-"`
	Kind            string          `json:"kind"`
	SubscribeResult SubscribeResult `json:"subscribe_result"`
	SetDifficulty   float64         `json:"set_difficulty"`
	NotifyParams    []any           `json:"notify_params"`
	SubmitParams    []any           `json:"submit_params"`
	Expected        Expected        `json:"expected"`
}

// SubscribeResult is the part of the subscribe reply a job depends on.
type SubscribeResult struct {
	Extranonce1     string `json:"extranonce1"`
	Extranonce2Size int    `json:"extranonce2_size"`
}

// Expected holds the values a vector pins; absent ones are empty.
type Expected struct {
	Coinbase        string  `json:"coinbase_tx_nonwitness_hex"`
	MerkleRoot      string  `json:"merkle_root_internal_hex"`
	Header          string  `json:"header_hex"`
	BlockHash       string  `json:"block_hash"`
	HeaderHash      string  `json:"header_hash"`
	NBitsTarget     string  `json:"nbits_target_hex"`
	ShareDifficulty float64 `json:"share_difficulty"`
	MidstateLE      string  `json:"midstate_words_le_hex"`
	MeetsNetwork    *bool   `json:"meets_network_target"`
}

// Hash returns the expected block hash in display hex, whichever key the
// file used.
func (e Expected) Hash() string {
	if e.BlockHash != "" {
		return e.BlockHash
	}
	return e.HeaderHash
}

// HasNonce reports whether the vector carries a real solved nonce (some only
// pin a header built with nonce 0).
func (v *Vector) HasNonce() bool { return v.Expected.Hash() != "" }

type file struct {
	Vector
	Cases []Vector `json:"cases"`
}

// Builtin returns the vectors compiled into the binary.
func Builtin() ([]Vector, error) { return load(builtinFS, "builtin") }

// BuiltinFiles is the built-in vector files themselves (*.json at its
// root), for tests that hand them to something reading the file format.
func BuiltinFiles() fs.FS {
	sub, err := fs.Sub(builtinFS, "builtin")
	if err != nil {
		panic(err) // a constant, valid path into the embedded tree
	}
	return sub
}

// LoadDir reads every *.json vector file in dir.
func LoadDir(dir string) ([]Vector, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("vectors directory: %w", err)
	}
	return load(os.DirFS(dir), ".")
}

func load(fsys fs.FS, dir string) ([]Vector, error) {
	names, err := fs.Glob(fsys, filepath.ToSlash(filepath.Join(dir, "*.json")))
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no *.json vector files in %s", dir)
	}
	sort.Strings(names)
	var out []Vector
	for _, name := range names {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		var f file
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		base := filepath.Base(name)
		if len(f.Cases) > 0 {
			for _, c := range f.Cases {
				c.File = base
				out = append(out, c)
			}
			continue
		}
		f.Vector.File = base
		out = append(out, f.Vector)
	}
	return out, nil
}

// JobParams turns the vector's Stratum fields into work.JobParams.
func (v *Vector) JobParams() (work.JobParams, error) {
	p := v.NotifyParams
	if len(p) != 9 {
		return work.JobParams{}, fmt.Errorf("%s: notify_params has %d entries, want 9", v.Name, len(p))
	}
	str := func(i int) (string, error) {
		s, ok := p[i].(string)
		if !ok {
			return "", fmt.Errorf("%s: notify_params[%d] is %T, want string", v.Name, i, p[i])
		}
		return s, nil
	}
	var jp work.JobParams
	var err error
	for i, dst := range []*string{&jp.JobID, &jp.PrevHash, &jp.Coinb1, &jp.Coinb2} {
		if *dst, err = str(i); err != nil {
			return jp, err
		}
	}
	branch, ok := p[4].([]any)
	if !ok {
		return jp, fmt.Errorf("%s: merkle branch is %T, want list", v.Name, p[4])
	}
	for _, b := range branch {
		s, ok := b.(string)
		if !ok {
			return jp, fmt.Errorf("%s: merkle branch entry is %T, want string", v.Name, b)
		}
		jp.MerkleBranch = append(jp.MerkleBranch, s)
	}
	for i, dst := range []*string{&jp.Version, &jp.NBits, &jp.NTime} {
		if *dst, err = str(5 + i); err != nil {
			return jp, err
		}
	}
	jp.CleanJobs, _ = p[8].(bool)
	jp.Extranonce1 = v.SubscribeResult.Extranonce1
	jp.Extranonce2Size = v.SubscribeResult.Extranonce2Size
	jp.Difficulty = v.SetDifficulty
	return jp, nil
}

// Solution is the unit a vector's submit belongs to, and its nonce.
type Solution struct {
	Job   *work.Job
	Unit  *work.Unit
	Nonce uint32
}

// Solution rebuilds the job and the unit from the submit params: the
// extranonce2 and ntime the miner actually hashed, and the rolled version when
// a sixth param (version_bits) is present.
func (v *Vector) Solution() (*Solution, error) {
	jp, err := v.JobParams()
	if err != nil {
		return nil, err
	}
	job, err := work.NewJob(jp)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", v.Name, err)
	}
	sp := make([]string, len(v.SubmitParams))
	for i, x := range v.SubmitParams {
		sp[i], _ = x.(string) // the worker may be null; only 2.. are used
	}
	if len(sp) < 5 {
		return nil, fmt.Errorf("%s: submit_params has %d entries, want 5 or 6", v.Name, len(sp))
	}
	en2, err := hex.DecodeString(sp[2])
	if err != nil {
		return nil, fmt.Errorf("%s: submit extranonce2: %w", v.Name, err)
	}
	ntime, err := work.ParseUint32Hex("submit ntime", sp[3])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", v.Name, err)
	}
	nonce, err := work.ParseUint32Hex("submit nonce", sp[4])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", v.Name, err)
	}
	version := job.Version
	if len(sp) > 5 && sp[5] != "" {
		bits, err := work.ParseUint32Hex("submit version_bits", sp[5])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", v.Name, err)
		}
		version = (job.Version &^ work.BIP320Mask) | (bits & work.BIP320Mask)
	}
	unit, err := job.NewUnit(en2, version, ntime)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", v.Name, err)
	}
	return &Solution{Job: job, Unit: unit, Nonce: nonce}, nil
}

// Label is a short name for output lines.
func (v *Vector) Label() string {
	if v.File != "" && !strings.Contains(v.File, "sessions") {
		return strings.TrimSuffix(v.File, ".json")
	}
	return v.Name
}
