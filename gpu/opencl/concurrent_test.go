package opencl

import (
	"os"
	"os/exec"
	"sync"
	"testing"
)

const enumChildEnv = "CLMINER_TEST_ENUM_CHILD"

// The first device listing of a process may come from several goroutines
// at once (devices opened side by side): unserialised, clGetDeviceIDs on
// one thread while another was in clGetDeviceInfo crashed the process
// (ocl-icd with POCL). The race is in the runtime's first enumeration, so
// the test runs it in a fresh process.
func TestConcurrentFirstEnumerationIsSafe(t *testing.T) {
	if os.Getenv(enumChildEnv) == "1" {
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := Platforms(); err != nil {
					t.Errorf("Platforms: %v", err)
				}
			}()
		}
		wg.Wait()
		return
	}
	needDevice(t)
	for range 5 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestConcurrentFirstEnumerationIsSafe$", "-test.count=1")
		cmd.Env = append(os.Environ(), enumChildEnv+"=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("concurrent first enumeration: %v\n%s", err, out)
		}
	}
}
