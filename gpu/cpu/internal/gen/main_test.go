package main

import (
	"bytes"
	"os"
	"testing"
)

// TestGeneratedFilesAreCurrent: the committed assembly and layout are what
// the generator writes, so an edit to either side cannot drift from the
// other unnoticed (run `go generate ./gpu/cpu/` after changing the
// generator).
func TestGeneratedFilesAreCurrent(t *testing.T) {
	asm, lay, err := generate()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]byte{"../../sha256_amd64.s": asm, "../../layout.go": lay} {
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the generator's output: run go generate ./gpu/cpu/", name)
		}
	}
}

// TestModelCountsEveryKernel: every kernel the generator writes has counts,
// and the loops are multiplied out (a kernel's vector instructions per hash
// are within reason for SHA-256d).
func TestModelCountsEveryKernel(t *testing.T) {
	if _, _, err := generate(); err != nil {
		t.Fatal(err)
	}
	if len(stats) < 10 {
		t.Fatalf("%d kernels counted", len(stats))
	}
	for _, k := range stats {
		vec := k.n["alu"] + k.n["shift"] + k.n["shuf"] + k.n["rnds2"] + k.n["msg1"] + k.n["msg2"]
		per := float64(vec) / float64(k.hashes)
		if per < 100 || per > 1000 {
			t.Errorf("%s: %.1f vector instructions per hash", k.name, per)
		}
	}
}
