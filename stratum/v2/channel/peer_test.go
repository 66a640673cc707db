package channel

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"clminer/stratum/v2/noise"
	"clminer/stratum/v2/v2peer"
	"clminer/work/source"
)

// Against the independent Node.js pool: the handshake, the framing and
// the share encoding must agree with another implementation of the spec,
// which re-hashes and checks every share it accepts.
func TestIndependentPeer(t *testing.T) {
	p := v2peer.Start(t, "--batch", "2")
	s, sk := run(t, Config{URL: p.URL(), User: "acct.rig", VersionRolling: true}, Options{})
	open := p.WaitEvent(t, "open", wait)
	require.Equal(t, "acct.rig", open.User)
	j := sk.job(t)
	for _, got := range sendAll(t, s, j, 6) {
		require.Equal(t, source.Accepted, got.Kind, got.Reason)
	}
	acc, rej := p.Counts()
	require.Equal(t, 6, acc)
	require.Zero(t, rej)
	// A share that misses the target is refused by the peer, by sequence.
	bad := share(t, j)
	for bad.Unit.Check(bad.Nonce).MeetsShare {
		bad.Nonce++
	}
	got := reply(t, send(s, bad))
	require.Equal(t, source.Rejected, got.Kind)
	require.Equal(t, "difficulty-too-low", got.Reason)
}

func TestIndependentPeerRefused(t *testing.T) {
	p := v2peer.Start(t)
	other := v2peer.Start(t)
	wrong := "stratum2+tcp://127.0.0.1:" + itoa(p.Port) + "/" + other.Key
	_, sk := run(t, Config{URL: wrong, User: "u"}, Options{})
	require.ErrorIs(t, sk.waitEvent(t, source.EventAuthFailed).Err, noise.ErrAuthority)

	exp := v2peer.Start(t, "--cert-expired")
	_, sk = run(t, Config{URL: exp.URL(), User: "u"}, Options{})
	require.ErrorIs(t, sk.waitEvent(t, source.EventAuthFailed).Err, noise.ErrCertExpired)
}

func itoa(n int) string { return strconv.Itoa(n) }

// A pool that requires extended channels: the client opens one, rolls the
// extranonce, and the peer rebuilds each coinbase and merkle root.
func TestIndependentPeerExtended(t *testing.T) {
	p := v2peer.Start(t, "--extended", "--batch", "3")
	s, sk := run(t, Config{URL: p.URL(), User: "acct.rig", VersionRolling: true}, Options{})
	j := sk.job(t)
	require.Equal(t, 8, j.Job.Extranonce2Size)
	for _, got := range sendAll(t, s, j, 6) {
		require.Equal(t, source.Accepted, got.Kind, got.Reason)
		require.Len(t, got.Extranonce2, 16)
	}
	acc, rej := p.Counts()
	require.Equal(t, 6, acc)
	require.Zero(t, rej)
}

// sendAll submits n shares of j at once (so acknowledgements batch) and
// returns their replies in order.
func sendAll(t *testing.T, s *Source, j *source.Job, n int) []source.Reply {
	t.Helper()
	var chs []chan source.Reply
	for range n {
		chs = append(chs, send(s, share(t, j)))
	}
	out := make([]source.Reply, n)
	for i, ch := range chs {
		out[i] = reply(t, ch)
	}
	return out
}
