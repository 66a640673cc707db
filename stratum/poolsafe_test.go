package stratum

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestPoolSafe: the one worker-key filter, dropping or replacing what
// pools refuse, and bounded.
func TestPoolSafe(t *testing.T) {
	for _, tc := range []struct {
		in   string
		sub  byte
		want string
	}{
		{"rig1", 0, "rig1"},
		{"Rig_1-a", 0, "Rig_1-a"},
		{"rig 1.é", 0, "rig1"},
		{"opencl:0:1", '-', "opencl-0-1"},
		{"a b", '_', "a_b"},
		{"", '-', ""},
		{"日本", 0, ""},
		{strings.Repeat("x", 40), 0, strings.Repeat("x", MaxWorkerKeyLen)},
		{strings.Repeat("é", 40), '-', strings.Repeat("-", MaxWorkerKeyLen)},
	} {
		assert.Equal(t, tc.want, PoolSafe(tc.in, tc.sub), "%q", tc.in)
	}
}
