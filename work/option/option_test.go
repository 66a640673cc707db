package option

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestDefault(t *testing.T) {
	for _, c := range []struct {
		in, want time.Duration
	}{
		{0, time.Second},
		{-time.Millisecond, time.Second},
		{time.Millisecond, time.Millisecond},
	} {
		d := c.in
		Default(&d, time.Second)
		assert.Equal(t, c.want, d, "from %v", c.in)
	}
	n := 0
	Default(&n, 64)
	assert.Equal(t, 64, n)
	n = 3
	Default(&n, 64)
	assert.Equal(t, 3, n)
	f := -0.5
	Default(&f, 0.2)
	assert.Equal(t, 0.2, f)
}
