package stratum

import (
	"context"
	"encoding/hex"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"clminer/stratum/pooltest"
)

// Failed TLS dials say what the operator can do: pin the certificate the CA
// check refused (its fingerprint is in the error), or fix the scheme when
// TLS and plain ports are mixed up.
func TestTLSDialErrorsSayWhatToDo(t *testing.T) {
	plain := pooltest.New(pooltest.Config{})
	require.NoError(t, plain.Start())
	defer plain.Close()
	secure := pooltest.New(pooltest.Config{TLS: true})
	require.NoError(t, secure.Start())
	defer secure.Close()

	dialURL := func(raw string, pc PoolConfig) (net.Conn, error) {
		u, err := ParsePoolURL(raw)
		require.NoError(t, err)
		return dial(context.Background(), defaultDialer(time.Second), 500*time.Millisecond, u, u.Addr(), pc)
	}

	t.Run("CA check fails: the error carries the fingerprint to pin", func(t *testing.T) {
		_, err := dialURL("stratum+tls://"+secure.Addr(), PoolConfig{})
		require.Error(t, err)
		t.Log(err)
		want, ferr := ParseFingerprint(secure.Fingerprint())
		require.NoError(t, ferr)
		assert.Contains(t, err.Error(), colonHex(hex.EncodeToString(want)))
		assert.Contains(t, err.Error(), "pin it with --tls-fingerprint")
		// The printed fingerprint pins the pool.
		conn, err := dialURL("stratum+tls://"+secure.Addr(), PoolConfig{Fingerprint: colonHex(hex.EncodeToString(want))})
		require.NoError(t, err)
		conn.Close()
	})

	t.Run("stratum+tls:// to a plain port", func(t *testing.T) {
		_, err := dialURL("stratum+tls://"+plain.Addr(), PoolConfig{})
		require.Error(t, err)
		t.Log(err)
		assert.Contains(t, err.Error(), "is this a plain stratum+tcp port?")
	})

	t.Run("stratum+tcp:// to a TLS port", func(t *testing.T) {
		conn, err := dialURL("stratum+tcp://"+secure.Addr(), PoolConfig{})
		require.NoError(t, err, "a plain dial succeeds; the mix-up shows on the first read")
		defer conn.Close()
		_, err = conn.Write([]byte(`{"id":1,"method":"mining.subscribe","params":[]}` + "\n"))
		require.NoError(t, err)
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = newLineReader(conn, 1<<20).ReadLine()
		require.Error(t, err)
		t.Log(err)
		assert.True(t, strings.Contains(err.Error(), "stratum+tls://"), "error names the TLS scheme: %v", err)
	})
}
