package v2peer

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"clminer/internal/testkit"
)

// The independent peer's crypto against BIP 324's vectors (read from the
// project's vector folder, testkit.VectorsDir; never copied into the
// repository).
func TestPeerCryptoVectors(t *testing.T) {
	if why := Available(); why != "" {
		if os.Getenv("CLMINER_REQUIRE_V2PEER") == "1" {
			t.Fatalf("v2peer required: %s", why)
		}
		t.Skip(why)
	}
	dir := testkit.VectorsDir(t, "bip324")
	out, err := exec.Command("node", filepath.Join(Dir(), "vectors.mjs"), dir).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "ok ") {
		t.Fatalf("peer crypto vectors: %v\n%s", err, out)
	}
	t.Log(strings.TrimSpace(string(out)))
}
