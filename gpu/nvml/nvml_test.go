package nvml

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Without the NVIDIA driver (CI) Open says why, wrapped in ErrUnavailable;
// with it, every GPU is listed and reports a temperature.
func TestOpen(t *testing.T) {
	lib, err := Open()
	if err != nil {
		assert.True(t, errors.Is(err, ErrUnavailable), "%v", err)
		t.Logf("no NVML here: %v", err)
		return
	}
	defer lib.Close()
	gpus := lib.GPUs()
	require.NotEmpty(t, gpus)
	for _, g := range gpus {
		r := lib.Read(g.Index)
		require.NotNil(t, r.TempC, "GPU %d %s reports a temperature", g.Index, g.Name)
		t.Logf("GPU %d %s %s: %.0f °C", g.Index, g.Name, g.PCIBusID, *r.TempC)
	}
	assert.True(t, lib.Read(len(gpus)).Empty(), "an index out of range reads nothing")
}

// A sensor that is not reported is absent from JSON, not zero.
func TestReadingJSON(t *testing.T) {
	b, err := json.Marshal(Reading{TempC: Ptr(0), FanPct: Ptr(55)})
	require.NoError(t, err)
	assert.JSONEq(t, `{"temperature_c":0,"fan_percent":55}`, string(b))
	assert.True(t, Reading{}.Empty())
	assert.False(t, Reading{PowerW: Ptr(1)}.Empty())
}

func TestFake(t *testing.T) {
	f := NewFake("A", "B")
	f.Set(1, Reading{TempC: Ptr(70)})
	r := f.Read(1)
	*r.TempC = 99 // a copy: the caller cannot change the fake's state
	assert.Equal(t, 70.0, *f.Read(1).TempC)
	assert.True(t, f.Read(0).Empty())
	assert.Equal(t, "B", f.GPUs()[1].Name)
	f.Close()
	assert.True(t, f.Read(1).Empty(), "closed")
	assert.Equal(t, 4, f.Reads())
}
