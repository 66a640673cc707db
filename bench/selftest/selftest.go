package selftest

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"clminer/gpu"
	"clminer/work"
	"clminer/work/vectors"
)

// DefaultWindow is the default number of nonces swept around each real nonce.
const DefaultWindow = 1 << 20

// Result is one vector on one device.
type Result struct {
	Vector   string   `json:"vector"`
	Device   string   `json:"device"`
	Pass     bool     `json:"pass"`
	Problems []string `json:"problems,omitempty"`
	Nonce    string   `json:"nonce,omitempty"`
	Window   uint64   `json:"window"`
	Hashes   uint64   `json:"hashes"`
	Shares   uint64   `json:"shares"`
	HWErrors uint64   `json:"hw_errors"`
	Seconds  float64  `json:"seconds"`
}

// String is the one-line form `clminer selftest` prints.
func (r Result) String() string {
	verdict := "PASS"
	if !r.Pass {
		verdict = "FAIL"
	}
	s := fmt.Sprintf("%s %-12s %-40s", verdict, r.Device, r.Vector)
	if r.Window > 0 {
		s += fmt.Sprintf(" nonce %s found in %d-nonce window (%d shares, %.2fs)", r.Nonce, r.Window, r.Shares, r.Seconds)
	} else if r.Pass {
		s += " merkle root, header and midstate match (no nonce to sweep)"
	}
	if len(r.Problems) > 0 {
		s += ": " + strings.Join(r.Problems, "; ")
	}
	return s
}

// Run checks every vector on every device; window is the sweep size around
// each real nonce (0 means DefaultWindow).
func Run(ctx context.Context, devs []gpu.Device, vecs []vectors.Vector, window uint64) []Result {
	var out []Result
	RunEach(ctx, devs, vecs, window, func(r Result) { out = append(out, r) })
	return out
}

// RunEach is Run calling each with every result as soon as it is known, so
// a long run shows its progress.
func RunEach(ctx context.Context, devs []gpu.Device, vecs []vectors.Vector, window uint64, each func(Result)) {
	if window == 0 {
		window = DefaultWindow
	}
	window = min(window, 1<<32)
	for _, v := range vecs {
		for _, d := range devs {
			each(check(ctx, d, &v, window))
		}
	}
}

func check(ctx context.Context, dev gpu.Device, v *vectors.Vector, window uint64) Result {
	r := Result{Vector: v.Label(), Device: dev.Info().ID}
	fail := func(format string, args ...any) Result {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
		return r
	}
	sol, err := v.Solution()
	if err != nil {
		return fail("%v", err)
	}
	e := v.Expected
	if root := sol.Unit.Header[36:68]; e.MerkleRoot != "" && hex.EncodeToString(root) != e.MerkleRoot {
		return fail("merkle root %x, want %s", root, e.MerkleRoot)
	}
	if h := sol.Unit.HeaderFor(sol.Nonce); e.Header != "" && hex.EncodeToString(h[:]) != e.Header {
		return fail("header %x, want %s", h, e.Header)
	}
	if e.MidstateLE != "" {
		var le [32]byte
		for i, w := range sol.Unit.Midstate {
			binary.LittleEndian.PutUint32(le[4*i:], w)
		}
		if got := hex.EncodeToString(le[:]); got != e.MidstateLE {
			return fail("midstate %s, want %s", got, e.MidstateLE)
		}
	}
	if !v.HasNonce() {
		r.Pass = true
		return r
	}
	r.Nonce = work.FormatUint32Hex(sol.Nonce)
	r.Window = window
	start := windowStart(sol.Nonce, window)
	var mu sync.Mutex
	var blocks []uint32
	began := time.Now()
	res, err := gpu.SweepVerified(ctx, dev, sol.Unit, start, window, gpu.Verdicts{
		Share: func(c work.Check) {
			if c.MeetsNetwork {
				mu.Lock()
				blocks = append(blocks, c.Nonce)
				mu.Unlock()
			}
		},
	})
	r.Seconds = time.Since(began).Seconds()
	r.Hashes, r.Shares, r.HWErrors = res.Hashes, res.Shares, res.HWErrors
	if err != nil {
		return fail("sweep: %v", err)
	}
	if res.Hashes != window {
		fail("device hashed %d of %d nonces", res.Hashes, window)
	}
	if res.HWErrors > 0 {
		fail("%d hardware errors", res.HWErrors)
	}
	if res.Lost > 0 {
		fail("%d candidates lost", res.Lost)
	}
	slices.Sort(blocks)
	if !slices.Equal(blocks, []uint32{sol.Nonce}) {
		fail("nonces meeting the network target: %s, want exactly %s", hexList(blocks), r.Nonce)
	}
	r.Pass = len(r.Problems) == 0
	return r
}

// windowStart centres the window on the nonce where the nonce space allows.
func windowStart(nonce uint32, window uint64) uint32 {
	start := int64(nonce) - int64(window/2)
	start = max(start, 0)
	start = min(start, int64(1<<32-window))
	return uint32(start)
}

func hexList(ns []uint32) string {
	if len(ns) == 0 {
		return "none"
	}
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = work.FormatUint32Hex(n)
	}
	return strings.Join(s, ",")
}
