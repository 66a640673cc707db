package opencl

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// OnCompile brackets the program build: once when it starts, once when it
// ends, saying whether the disk cache served it.
func TestOnCompileReportsStartAndEnd(t *testing.T) {
	dir := t.TempDir() // a fresh cache: the first open compiles
	for _, wantCached := range []bool{false, true} {
		var mu sync.Mutex
		var evs []CompileEvent
		openTest(t, Options{Intensity: 12, CacheDir: dir, OnCompile: func(ev CompileEvent) {
			mu.Lock()
			evs = append(evs, ev)
			mu.Unlock()
		}})
		mu.Lock()
		require.Len(t, evs, 2)
		assert.False(t, evs[0].Done)
		assert.NotEmpty(t, evs[0].Device)
		assert.True(t, evs[1].Done)
		assert.NoError(t, evs[1].Err)
		assert.Equal(t, wantCached, evs[1].Cached, "cached")
		assert.Positive(t, evs[1].Elapsed)
		mu.Unlock()
	}
}
