package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// selftestChildEnv marks the test binary run as a child with the OpenCL
// set-up of one case (the ICD loader reads its configuration once per
// process).
const selftestChildEnv = "CLMINER_TEST_SELFTEST_CHILD"

// `selftest --device all` never reads as success on the CPU alone without
// saying so: no OpenCL at all is a WARN line and part of the summary; a
// driver declared but failing fails the selftest. --device gpu and opencl
// fail when OpenCL offers nothing.
func TestSelftestSaysWhenOpenCLIsNotTested(t *testing.T) {
	if mode := os.Getenv(selftestChildEnv); mode != "" {
		selftestChild(t, mode)
		return
	}
	none := t.TempDir()
	broken := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(broken, "broken.icd"), []byte("/nonexistent/libbroken-opencl.so\n"), 0o644))
	absentEnv := []string{"OCL_ICD_VENDORS=" + none, "OCL_ICD_FILENAMES=", "CLMINER_OPENCL_LIB=/nonexistent/libOpenCL.so.1"}
	brokenEnv := []string{"OCL_ICD_VENDORS=" + broken, "OCL_ICD_FILENAMES="}
	for mode, env := range map[string][]string{
		"absent/all": absentEnv, "absent/gpu": absentEnv, "absent/opencl": absentEnv,
		"broken/all": brokenEnv, "broken/cpu": brokenEnv,
	} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestSelftestSaysWhenOpenCLIsNotTested$", "-test.v")
			cmd.Env = append(append(os.Environ(), selftestChildEnv+"="+mode), env...)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s:\n%s", mode, out)
			require.Contains(t, string(out), "--- PASS", "%s:\n%s", mode, out)
		})
	}
}

func selftestChild(t *testing.T, mode string) {
	device := filepath.Base(mode)
	r, err := runApp(t, "selftest", "--device", device, "--window", "4096", "--kernel-versions", "1")
	switch mode {
	case "absent/all":
		require.NoError(t, err)
		assert.Contains(t, r.stdout, "selftest: 7 passed, 0 failed; OpenCL not tested: OpenCL runtime not found")
		assert.Contains(t, r.stderr, "OpenCL not tested: OpenCL runtime not found")
		assert.Contains(t, r.stderr, "selftest.opencl_untested")
	case "absent/gpu":
		require.Error(t, err)
		assert.Contains(t, err.Error(), "--device gpu: no OpenCL GPU found")
	case "absent/opencl":
		require.Error(t, err)
		assert.Contains(t, err.Error(), "--device opencl: no OpenCL device found")
	case "broken/all":
		require.Error(t, err)
		assert.Contains(t, err.Error(), "selftest --device all: OpenCL not tested: OpenCL drivers are installed (")
		assert.Contains(t, err.Error(), "broken.icd) but not working")
		assert.Contains(t, err.Error(), "--device cpu")
		assert.NotContains(t, err.Error(), "\n")
		assert.Empty(t, r.stdout, "nothing is tested: the failure comes first")
	case "broken/cpu":
		require.NoError(t, err)
		assert.Contains(t, r.stdout, "selftest: 7 passed, 0 failed\n")
		assert.NotContains(t, r.stdout+r.stderr, "OpenCL not tested")
	default:
		t.Fatalf("unknown mode %q", mode)
	}
}
