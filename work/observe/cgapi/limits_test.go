package cgapi

import (
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 22 point 9: silent connections (from another address, 127.0.1.1,
// and from the rig manager's own) no longer deny the API: every
// legitimate request is answered, and the silent ones hold a bounded number
// of goroutines.
func TestSilentConnectionsDoNotStarveTheAPI(t *testing.T) {
	s := newServer(t, testState())
	g0 := runtime.NumGoroutine()
	var silent []net.Conn
	for _, ip := range []string{"127.0.1.1", "127.0.0.1"} {
		for i := 0; i < 8; i++ {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
			c, err := d.Dial("tcp", s.Addr())
			require.NoError(t, err)
			silent = append(silent, c)
		}
	}
	defer func() {
		for _, c := range silent {
			c.Close()
		}
	}()
	answered := 0
	for i := 0; i < 99; i++ {
		c, err := net.Dial("tcp", s.Addr())
		require.NoError(t, err)
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = c.Write([]byte("summary"))
		if err == nil {
			b, _ := io.ReadAll(c)
			if strings.HasPrefix(string(b), "STATUS=S") && strings.HasSuffix(string(b), "\x00") {
				answered++
			}
		}
		c.Close()
	}
	assert.Equal(t, 99, answered, "legitimate requests answered with 16 silent connections open")
	assert.Less(t, runtime.NumGoroutine()-g0, 20, "silent connections hold few goroutines")
}
