package selftest

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestWindowStartStaysInNonceSpace(t *testing.T) {
	tests := []struct {
		nonce  uint32
		window uint64
		want   uint32
	}{
		{0x10572b0f, 1 << 20, 0x10572b0f - 1<<19},
		{5, 1 << 20, 0},
		{0xfffffff0, 1 << 20, 0xfff00000},
		{0x80000000, 1 << 32, 0},
	}
	for _, tc := range tests {
		got := windowStart(tc.nonce, tc.window)
		assert.Equal(t, tc.want, got)
		assert.LessOrEqual(t, uint64(got)+tc.window, uint64(1<<32))
		assert.GreaterOrEqual(t, uint64(tc.nonce), uint64(got))
		assert.Less(t, uint64(tc.nonce), uint64(got)+tc.window)
	}
}
