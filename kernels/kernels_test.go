package kernels

import (
	"strings"
	"testing"
)

func TestSourceEmbedded(t *testing.T) {
	if !strings.Contains(SHA256d, "__kernel void "+SHA256dEntry+"(") {
		t.Fatalf("embedded source lacks kernel %s", SHA256dEntry)
	}
	for _, w := range []string{"VECSIZE", "atomic_inc", "bitselect", "rotate"} {
		if !strings.Contains(SHA256d, w) {
			t.Errorf("embedded source lacks %q", w)
		}
	}
}
