package stratum

import (
	"encoding/json"
	"testing"

	"clminer/work"
)

// FuzzDecodeLine feeds arbitrary lines through the codec and every typed
// parser; none may panic, and a decoded message must be classified.
func FuzzDecodeLine(f *testing.F) {
	f.Add([]byte(`{"id":1,"result":[[["mining.notify","ae68"]],"08000002",4],"error":null}`))
	f.Add([]byte(`{"id":4,"result":false,"error":null,"reject-reason":"Stale"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := DecodeLine(line)
		if err != nil {
			return
		}
		switch m.Kind {
		case KindNotification, KindRequest:
			if m.Method == "" {
				t.Fatal("request without method")
			}
		case KindResponse:
			if m.ID == nil {
				t.Fatal("response without id")
			}
		default:
			t.Fatalf("kind %v", m.Kind)
		}
		_, _ = m.NumID()
		if e := ParseError(m.Error, m.RejectReason); e != nil && e.Error() == "" {
			t.Fatal("empty error text")
		}
		_ = IsTrue(m.Result)
		_, _ = ParseSubscribeResult(m.Result)
		_, _, _ = ParseConfigureResult(m.Result)
		_, _ = ParseNotify(m.Params)
		_, _ = ParseDifficulty(m.Params)
		_, _, _ = ParseSetExtranonce(m.Params)
		_, _ = ParseVersionMask(m.Params)
		_, _ = ParseReconnect(m.Params)
		_ = ParseShowMessage(m.Params)
	})
}

// FuzzNotifyToJob runs notify params through work.NewJob and, for a valid
// job, builds a unit and submit params; nothing may panic.
func FuzzNotifyToJob(f *testing.F) {
	f.Add([]byte(slushNotify), "08000002", 4, 1.0)
	f.Fuzz(func(t *testing.T, params []byte, en1 string, en2size int, diff float64) {
		p, err := ParseNotify(json.RawMessage(params))
		if err != nil {
			return
		}
		p.Extranonce1, p.Extranonce2Size, p.Difficulty = en1, en2size, diff
		j, err := work.NewJob(p)
		if err != nil {
			return
		}
		if j.ID != p.JobID || j.Extranonce2Size != en2size {
			t.Fatal("job does not match its params")
		}
		u, err := j.NewUnit(make([]byte, j.Extranonce2Size), j.Version, j.NTime)
		if err != nil {
			t.Fatalf("valid job, bad unit: %v", err)
		}
		_ = u.Check(0)
		s, err := u.Submit("w", 0, 0)
		if err != nil || len(s.Params()) != 5 {
			t.Fatalf("submit: %v", err)
		}
	})
}
