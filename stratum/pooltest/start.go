package pooltest

// LowDiff is the difficulty Start gives a pool by default: the reference
// device (gpu/gputest, about 1 MH/s, less under -race) finds several
// shares a second at it.
const LowDiff = 0.00002

// TB is the part of testing.TB that Start uses. The package is also the
// demo pool, built into the binary, which has no business importing
// package testing.
type TB interface {
	Helper()
	Cleanup(func())
	Fatalf(format string, args ...any)
}

// Start starts a pool for a test and closes it when the test ends. A zero
// Difficulty is LowDiff: New's default of 1, a real pool's, would give a
// test device no share.
func Start(t TB, cfg Config) *Server {
	t.Helper()
	if cfg.Difficulty == 0 {
		cfg.Difficulty = LowDiff
	}
	s := New(cfg)
	if err := s.Start(); err != nil {
		t.Fatalf("starting the test pool: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}
