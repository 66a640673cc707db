package device

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A sensor that is not reported is absent from JSON, not zero.
func TestReadingJSON(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	b, err := json.Marshal(Reading{TempC: f(0), FanPct: f(55)})
	require.NoError(t, err)
	assert.JSONEq(t, `{"temperature_c":0,"fan_percent":55}`, string(b))
	assert.True(t, Reading{}.Empty())
	assert.False(t, Reading{PowerW: f(1)}.Empty())
}
