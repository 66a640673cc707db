package registry

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var rig = []Entry{
	{ID: "opencl:0:0", Kind: "opencl", Type: "CPU"},
	{ID: "opencl:1:0", Kind: "opencl", Type: "GPU"},
	{ID: "opencl:1:1", Kind: "opencl", Type: "GPU"},
	{ID: "cpu", Kind: "cpu", Type: "CPU"},
}

var laptop = []Entry{{ID: "cpu", Kind: "cpu", Type: "CPU"}}

func TestResolve(t *testing.T) {
	tests := []struct {
		spec    string
		entries []Entry
		want    []string
		err     string
	}{
		{"", rig, []string{"opencl:1:0", "opencl:1:1"}, ""},
		{"auto", laptop, []string{"cpu"}, ""},
		{"cpu", rig, []string{"cpu"}, ""},
		{"gpu", rig, []string{"opencl:1:0", "opencl:1:1"}, ""},
		{"opencl", rig, []string{"opencl:0:0", "opencl:1:0", "opencl:1:1"}, ""},
		{"all", rig, []string{"opencl:0:0", "opencl:1:0", "opencl:1:1", "cpu"}, ""},
		{"opencl:1:1, cpu,opencl:1:1", rig, []string{"opencl:1:1", "cpu"}, ""},
		{"OpenCL:01:0", rig, []string{"opencl:1:0"}, ""},
		{"gpu", laptop, nil, "no OpenCL GPU"},
		{"opencl", laptop, nil, "no OpenCL device"},
		{"opencl:2:0", rig, nil, "no such OpenCL device"},
		{"opencl:x:0", rig, nil, "must be numbers"},
		{"opencl:1", rig, nil, "want opencl:PLATFORM:DEVICE"},
		{"cuda", rig, nil, "unknown device"},
	}
	for _, tc := range tests {
		got, err := Resolve(tc.spec, tc.entries)
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, tc.spec)
			continue
		}
		require.NoError(t, err, tc.spec)
		assert.Equal(t, tc.want, got, tc.spec)
	}
}
