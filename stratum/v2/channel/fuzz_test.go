package channel

import (
	"testing"

	"clminer/stratum/v2/codec"
	"clminer/work/source"
)

// FuzzSessionSequence feeds any sequence of pool messages to one session's
// state machine: it must end in an error or keep its bounds (future jobs,
// jobs), publish jobs only on a known prevhash, answer every share at most
// once, and never panic.
func FuzzSessionSequence(f *testing.F) {
	enc := func(ms ...codec.Message) []byte {
		var out []byte
		for _, m := range ms {
			h, p, err := codec.Encode(m)
			if err != nil {
				f.Fatal(err)
			}
			out = append(out, h.Append(nil)...)
			out = append(out, p...)
		}
		return out
	}
	nt := uint32(1700000000)
	f.Add(enc(
		&codec.NewMiningJob{ChannelID: 7, JobID: 1, Version: 0x20000000},
		&codec.SetNewPrevHash{ChannelID: 7, JobID: 1, MinNTime: nt, NBits: 0x207fffff},
		&codec.NewMiningJob{ChannelID: 7, JobID: 2, MinNTime: &nt, Version: 0x20000000},
		&codec.SetTarget{ChannelID: 7, MaximumTarget: [32]byte{31: 0x0f}},
		&codec.SubmitSharesSuccess{ChannelID: 7, LastSequenceNumber: 2},
		&codec.SubmitSharesError{ChannelID: 7, SequenceNumber: 1, ErrorCode: "x"},
		&codec.SetExtranoncePrefix{ChannelID: 7, ExtranoncePrefix: []byte{1}},
		&codec.CloseChannel{ChannelID: 7},
	))
	f.Add(enc(&codec.SetNewPrevHash{ChannelID: 7, JobID: 9}))
	f.Add(enc(&codec.Reconnect{NewHost: "h", NewPort: 1}))
	f.Add(append([]byte{0x80, 0, 0, 0, 0, 0}, enc(
		&codec.NewExtendedMiningJob{ChannelID: 7, JobID: 1, Version: 0x20000000, CoinbaseTxPrefix: []byte{1}, CoinbaseTxSuffix: []byte{2}},
		&codec.SetNewPrevHash{ChannelID: 7, JobID: 1, MinNTime: nt, NBits: 0x207fffff},
		&codec.SetExtranoncePrefix{ChannelID: 7, ExtranoncePrefix: []byte{3}},
		&codec.NewExtendedMiningJob{ChannelID: 7, JobID: 2, MinNTime: &nt, Version: 0x20000000, MerklePath: [][32]byte{{1}}},
	)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := New(Config{URL: "stratum2+tcp://127.0.0.1:1/9bXiEd8boQVhq7WddEcERUL5tyyJVFYdU8th3HfbNXK3Yw6GRXh"}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		ss := &session{id: 1, channel: 7, futures: map[uint32]spec{}, pending: map[uint32]*pending{}, space: "7/"}
		ss.target[31] = 0x7f
		if len(b) > 0 && b[0]&0x80 != 0 { // the top bit of the first byte picks an extended channel
			ss.extended, ss.en2size, ss.prefix = true, 4, []byte{1, 2}
		}
		answered := map[uint32]int{}
		for seq := uint32(1); seq <= 4; seq++ {
			seq := seq
			ss.pending[seq] = &pending{done: func(source.Reply) { answered[seq]++ }}
		}
		ss.seq = 4
		sk := newSink()
		for len(b) >= codec.HeaderLen {
			h, _ := codec.ParseHeader(b[:codec.HeaderLen])
			b = b[codec.HeaderLen:]
			n := min(int(h.Length), len(b))
			h.Length = uint32(n)
			m, err := codec.Decode(h, b[:n])
			b = b[n:]
			if err != nil {
				continue
			}
			if _, err := s.handle(ss, sk, m); err != nil {
				break
			}
			if len(ss.futures) > maxFutureJobs || s.ldgr.Len() > maxJobs {
				t.Fatalf("bounds: %d futures, %d jobs", len(ss.futures), s.ldgr.Len())
			}
			for len(sk.jobs) > 0 {
				j := <-sk.jobs
				if !ss.havePrev || j.Job.PrevHash != ss.prev {
					t.Fatal("job published without its prevhash")
				}
			}
		}
		for seq, n := range answered {
			if n > 1 {
				t.Fatalf("share %d answered %d times", seq, n)
			}
		}
	})
}
