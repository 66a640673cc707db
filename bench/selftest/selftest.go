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

	"clminer/work"
	"clminer/work/device"
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
	// Versions is how many rolled versions the device hashed per nonce (1:
	// the single-version check); VersionIndex is where in them the block's
	// own version was.
	Versions     int     `json:"versions"`
	VersionIndex int     `json:"version_index"`
	Hashes       uint64  `json:"hashes"`
	Shares       uint64  `json:"shares"`
	HWErrors     uint64  `json:"hw_errors"`
	Seconds      float64 `json:"seconds"`
}

// String is the one-line form `clminer selftest` prints.
func (r Result) String() string {
	verdict := "PASS"
	if !r.Pass {
		verdict = "FAIL"
	}
	s := fmt.Sprintf("%s %-12s %-40s", verdict, r.Device, r.Vector)
	if r.Versions > 1 {
		s += fmt.Sprintf(" [version %d of %d rolled]", r.VersionIndex, r.Versions)
	}
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
func Run(ctx context.Context, devs []device.Device, vecs []vectors.Vector, window uint64) []Result {
	var out []Result
	RunEach(ctx, devs, vecs, window, func(r Result) { out = append(out, r) })
	return out
}

// RunEach is Run calling each with every result as soon as it is known, so
// a long run shows its progress.
func RunEach(ctx context.Context, devs []device.Device, vecs []vectors.Vector, window uint64, each func(Result)) {
	if window == 0 {
		window = DefaultWindow
	}
	window = min(window, 1<<32)
	for _, v := range vecs {
		for _, d := range devs {
			each(check(ctx, d, &v, window, 1, 0))
			// A multi-version device must find the block at the index its
			// version has among the rolled versions of a unit, whichever.
			if k := device.VersionsOf(d); k > 1 && v.HasNonce() {
				for at := 0; at < k; at++ {
					each(check(ctx, d, &v, window, k, at))
				}
			}
		}
	}
}

func check(ctx context.Context, dev device.Device, v *vectors.Vector, window uint64, versions, at int) Result {
	r := Result{Vector: v.Label(), Device: dev.Info().ID, Versions: versions, VersionIndex: at}
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
	units, err := work.VersionGroup(sol.Unit, versions, at)
	if err != nil {
		return fail("%v", err)
	}
	var mu sync.Mutex
	var blocks, elsewhere []uint32
	began := time.Now()
	res, err := device.SweepVerifiedVersions(ctx, dev, units, start, window, func(u *work.Unit) device.Verdicts {
		return device.Verdicts{
			Share: func(c work.Check) {
				if c.MeetsNetwork {
					mu.Lock()
					if u == sol.Unit {
						blocks = append(blocks, c.Nonce)
					} else {
						elsewhere = append(elsewhere, c.Nonce)
					}
					mu.Unlock()
				}
			},
		}
	})
	r.Seconds = time.Since(began).Seconds()
	r.Hashes, r.Shares, r.HWErrors = res.Hashes, res.Shares, res.HWErrors
	if err != nil {
		return fail("sweep: %v", err)
	}
	if want := window * uint64(versions); res.Hashes != want {
		fail("device hashed %d of %d hashes", res.Hashes, want)
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
	if len(elsewhere) > 0 {
		fail("blocks reported for the other rolled versions: %s", hexList(elsewhere))
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
