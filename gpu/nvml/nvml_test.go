package nvml

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/work/device"
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

func TestFake(t *testing.T) {
	f := NewFake("A", "B")
	f.Set(1, device.Reading{TempC: Ptr(70)})
	r := f.Read(1)
	*r.TempC = 99 // a copy: the caller cannot change the fake's state
	assert.Equal(t, 70.0, *f.Read(1).TempC)
	assert.True(t, f.Read(0).Empty())
	assert.Equal(t, "B", f.GPUs()[1].Name)
	f.Close()
	assert.True(t, f.Read(1).Empty(), "closed")
	assert.Equal(t, 4, f.Reads())
}
