package v2peer

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The independent peer's crypto against BIP 324's vectors (read from
// ../shared/vectors, never copied into the repository).
func TestPeerCryptoVectors(t *testing.T) {
	if why := Available(); why != "" {
		if os.Getenv("CLMINER_REQUIRE_V2PEER") == "1" {
			t.Fatalf("v2peer required: %s", why)
		}
		t.Skip(why)
	}
	dir, err := filepath.Abs(filepath.Join(Dir(), "../../../../shared/vectors/bip324"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		// A cross-check where the project's vector folder is beside the
		// checkout (CI runs it there with CLMINER_REQUIRE_VECTORS=1).
		if os.Getenv("CLMINER_REQUIRE_VECTORS") != "" {
			t.Fatalf("vectors: %v", err)
		}
		t.Skipf("vectors not available: %v", err)
	}
	out, err := exec.Command("node", filepath.Join(Dir(), "vectors.mjs"), dir).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "ok ") {
		t.Fatalf("peer crypto vectors: %v\n%s", err, out)
	}
	t.Log(strings.TrimSpace(string(out)))
}
