package proxy

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/stratum/wire"
	"clminer/work"
	"clminer/work/ledger"
	"clminer/work/source"
)

// judgeFixture is a job of a pool with an 8-byte extranonce2 space, of
// which the miner holds a 2-byte prefix and rolls the other 6 (2*6 hex).
type judgeFixture struct {
	sp      *space
	pj      *pjob
	upj     *source.Job
	entry   *ledger.Entry
	l       *ledger.Ledger
	version uint32
	ntime   uint32
}

// newJudgeFixture makes the job; target is what the pool judges it at.
func newJudgeFixture(t *testing.T, target work.Target, local bool) *judgeFixture {
	t.Helper()
	const ntime, version = 0x66000000, 0x20000000
	l := ledger.New(4)
	e, err := l.JobAtTarget("space", "j1", 8, target)
	require.NoError(t, err)
	j := &work.Job{ID: "j1", Coinb1: []byte{1, 2, 3}, Extranonce1: []byte{9, 9, 9, 9}, Coinb2: []byte{4, 5},
		Version: version, NBits: 0x1d00ffff, NTime: ntime, Extranonce2Size: 8, ShareTarget: target, NetworkTarget: work.Diff1Target}
	sp := &space{size: 8}
	upj := &source.Job{Job: j, Entry: e, RollingMask: 0x1fffe000}
	return &judgeFixture{sp: sp, pj: &pjob{id: "1", seq: 1, up: upj, sp: sp, local: local}, upj: upj, entry: e, l: l,
		version: version, ntime: ntime}
}

// state is an authorized, subscribed miner rolling the 0x1fffe000 mask.
func (f *judgeFixture) state() shareState {
	return shareState{subscribed: true, authorized: true, en2Size: 6, rolling: true, mask: 0x1fffe000,
		prefix: []byte{0, 1}, ntimeRoll: 600, pj: f.pj, upj: f.upj, sp: f.sp}
}

func okSubmit() work.Submit {
	return work.Submit{Worker: "rig", JobID: "1", Extranonce2: "000000000001", NTime: "66000010", Nonce: "deadbeef"}
}

// TestJudgeShare: every way a share is refused on the host, with the
// outcome, code and reason the miner is answered with.
func TestJudgeShare(t *testing.T) {
	type want struct {
		outcome Outcome
		code    int
		reason  string // the whole reason, or its start when prefix
		prefix  bool
		worker  string
	}
	refused := func(o Outcome, code int, reason string) want { return want{o, code, reason, false, "rig"} }
	cases := []struct {
		name string
		sub  func(*work.Submit)
		st   func(*shareState, *judgeFixture)
		want want
	}{
		{"not subscribed", nil, func(s *shareState, _ *judgeFixture) { s.subscribed, s.authorized = false, false },
			want{Invalid, wire.CodeNotSubscribed, "Not subscribed", false, ""}},
		{"unauthorized worker", nil, func(s *shareState, _ *judgeFixture) { s.authorized = false },
			want{Invalid, wire.CodeUnauthorized, "Unauthorized worker", false, ""}},
		{"unknown job", nil, func(s *shareState, _ *judgeFixture) { s.pj, s.upj = nil, nil },
			refused(Stale, wire.CodeJobNotFound, "Job not found")},
		{"job of an older extranonce space", nil, func(s *shareState, _ *judgeFixture) { s.sp = &space{size: 8} },
			refused(Stale, wire.CodeJobNotFound, "Stale")},
		{"job the pool dropped", nil, func(_ *shareState, f *judgeFixture) { f.l.Reset() },
			refused(Stale, wire.CodeJobNotFound, "Stale")},
		{"extranonce2 too short", func(s *work.Submit) { s.Extranonce2 = "0001" }, nil,
			refused(Invalid, wire.CodeOther, "Incorrect size of extranonce2")},
		{"extranonce2 not hex", func(s *work.Submit) { s.Extranonce2 = "00000000000z" }, nil,
			refused(Invalid, wire.CodeOther, "extranonce2 is not hex")},
		{"short nonce", func(s *work.Submit) { s.Nonce = "beef" }, nil,
			refused(Invalid, wire.CodeOther, "ntime and nonce must be 8 hex chars")},
		{"short ntime", func(s *work.Submit) { s.NTime = "6600" }, nil,
			refused(Invalid, wire.CodeOther, "ntime and nonce must be 8 hex chars")},
		{"nonce not hex", func(s *work.Submit) { s.Nonce = "deadbeeg" }, nil,
			refused(Invalid, wire.CodeOther, "ntime and nonce must be hex")},
		{"ntime before the job's", func(s *work.Submit) { s.NTime = "65ffffff" }, nil,
			refused(Invalid, wire.CodeOther, "Ntime out of range")},
		{"ntime past the roll", func(s *work.Submit) { s.NTime = "66000259" }, nil,
			refused(Invalid, wire.CodeOther, "Ntime out of range")},
		{"version bits without rolling", func(s *work.Submit) { s.VersionBits = "00002000" },
			func(s *shareState, _ *judgeFixture) { s.rolling = false },
			refused(Invalid, wire.CodeVersionMask, "version rolling not negotiated")},
		{"version bits outside the granted mask", func(s *work.Submit) { s.VersionBits = "00002000" },
			func(s *shareState, _ *judgeFixture) { s.mask = 0x00004000 },
			refused(Invalid, wire.CodeVersionMask, "Invalid version mask")},
		{"version bits outside the pool's mask", func(s *work.Submit) { s.VersionBits = "20000000" },
			func(s *shareState, _ *judgeFixture) { s.mask = 0xffffffff },
			refused(Invalid, wire.CodeVersionMask, "Invalid version mask")},
		{"version bits not hex", func(s *work.Submit) { s.VersionBits = "0000200z" }, nil,
			refused(Invalid, wire.CodeVersionMask, "Invalid version mask")},
		{"pool's extranonce space shrank", nil, func(s *shareState, f *judgeFixture) { f.sp.size, s.sp = 7, f.sp },
			refused(Stale, wire.CodeJobNotFound, "Stale: the pool changed its extranonce space")},
		{"unit cannot be built", nil, func(_ *shareState, f *judgeFixture) { f.upj.Job.Extranonce2Size = 4 },
			want{Invalid, wire.CodeOther, work.ErrExtranonce2Size.Error(), true, "rig"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newJudgeFixture(t, work.MaxTarget, false)
			sub, st := okSubmit(), f.state()
			if tc.sub != nil {
				tc.sub(&sub)
			}
			if tc.st != nil {
				tc.st(&st, f)
			}
			d := judgeShare(sub, st)
			require.Equal(t, refuseShare, d.action)
			assert.Equal(t, tc.want.outcome, d.outcome)
			assert.Equal(t, tc.want.code, d.code)
			if tc.want.prefix {
				assert.True(t, strings.HasPrefix(d.reason, tc.want.reason), "reason %q", d.reason)
			} else {
				assert.Equal(t, tc.want.reason, d.reason)
			}
			assert.Equal(t, tc.want.worker, d.worker)
			assert.Nil(t, d.unit)
		})
	}
}

// TestJudgeShareLowDifficulty: a share under the pool's difficulty is
// answered with its own difficulty.
func TestJudgeShareLowDifficulty(t *testing.T) {
	f := newJudgeFixture(t, work.Target{}, false) // no hash meets a zero target
	d := judgeShare(okSubmit(), f.state())
	require.Equal(t, refuseShare, d.action)
	assert.Equal(t, LowDifficulty, d.outcome)
	assert.Equal(t, wire.CodeLowDifficulty, d.code)
	assert.True(t, strings.HasPrefix(d.reason, "Low difficulty share of "), d.reason)
	assert.Equal(t, "rig", d.worker)
}

// TestJudgeShareForward: a share that meets the pool's target goes on with
// the unit it solves: the miner's prefix, its extranonce2 and zero padding
// to the pool's size, its ntime and its rolled version bits.
func TestJudgeShareForward(t *testing.T) {
	f := newJudgeFixture(t, work.MaxTarget, false)
	sub := okSubmit()
	sub.VersionBits = "00006000"
	d := judgeShare(sub, f.state())
	require.Equal(t, forwardShare, d.action, "%+v", d)
	assert.Equal(t, "rig", d.worker)
	assert.Equal(t, []byte{0, 1, 0, 0, 0, 0, 0, 1}, d.unit.Extranonce2)
	assert.Equal(t, uint32(0x66000010), d.unit.NTime)
	assert.Equal(t, uint32(0x20006000), d.unit.Version)
	assert.Equal(t, uint32(0xdeadbeef), d.nonce)
	assert.Equal(t, d.unit.Check(0xdeadbeef), d.chk)
	assert.Equal(t, f.entry.Difficulty(), d.judged)
	assert.Zero(t, d.outcome)

	// The same share of a blocks-only upstream's job is judged later, at
	// the miner's own difficulty: even a zero pool target lets it through.
	f = newJudgeFixture(t, work.Target{}, true)
	d = judgeShare(okSubmit(), f.state())
	require.Equal(t, keepLocal, d.action, "%+v", d)
	assert.Equal(t, uint32(0x20000000), d.unit.Version)
	assert.Equal(t, d.unit.Check(0xdeadbeef), d.chk)
}
