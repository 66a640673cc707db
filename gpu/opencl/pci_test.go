package opencl

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func le32(vs ...uint32) []byte {
	b := make([]byte, 4*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint32(b[4*i:], v)
	}
	return b
}

// Each vendor's answer decodes to the address lspci and sysfs print; an
// answer no PCI bus can have is dropped rather than shown.
func TestPCIDecoding(t *testing.T) {
	a, ok := pciFromKHR(le32(0, 0x0a, 0, 0))
	require.True(t, ok)
	assert.Equal(t, "0000:0a:00.0", a.String())
	a, ok = pciFromKHR(le32(0x10000, 0xc1, 0x1f, 7))
	require.True(t, ok)
	assert.Equal(t, "10000:c1:1f.7", a.String(), "VMD domains are wider than 16 bits")
	_, ok = pciFromKHR(le32(0, 0x100, 0, 0))
	assert.False(t, ok, "bus past 8 bits")
	_, ok = pciFromKHR(le32(0, 1, 0))
	assert.False(t, ok, "short answer")

	// NVIDIA's slot is device<<3 | function.
	a, ok = pciFromNV(0, 0x03, 0x00)
	require.True(t, ok)
	assert.Equal(t, "0000:03:00.0", a.String())
	a, ok = pciFromNV(1, 0x81, 2<<3|1)
	require.True(t, ok)
	assert.Equal(t, "0001:81:02.1", a.String())
	_, ok = pciFromNV(0, 0x1ff, 0)
	assert.False(t, ok)

	topo := make([]byte, 24)
	binary.LittleEndian.PutUint32(topo, clDeviceTopologyTypePCIeAMD)
	topo[21], topo[22], topo[23] = 0x0a, 0, 0
	a, ok = pciFromAMD(topo)
	require.True(t, ok)
	assert.Equal(t, "0000:0a:00.0", a.String())
	binary.LittleEndian.PutUint32(topo, 2) // not PCIe
	_, ok = pciFromAMD(topo)
	assert.False(t, ok)
	_, ok = pciFromAMD(topo[:20])
	assert.False(t, ok)

	assert.True(t, hasExtension("cl_khr_fp64 cl_khr_pci_bus_info  cl_khr_icd", "cl_khr_pci_bus_info"))
	assert.False(t, hasExtension("cl_khr_pci_bus_info_ext", "cl_khr_pci_bus_info"))
}

// A PCI address the runtime reports names a device the kernel knows.
// (CPU runtimes report none: this checks the GPU runtimes that do.)
func TestPlatformsPCIIsReal(t *testing.T) {
	needDevice(t)
	ps, err := Platforms()
	require.NoError(t, err)
	for _, p := range ps {
		for _, d := range p.Devices {
			t.Logf("%s / %s: %s %q", p.Name, d.Name, d.Type, d.PCIBusID)
			if d.PCIBusID == "" {
				continue
			}
			if _, err := os.Stat("/sys/bus/pci/devices"); err != nil {
				continue // not Linux, or no sysfs in this container
			}
			_, err := os.Stat(filepath.Join("/sys/bus/pci/devices", d.PCIBusID))
			assert.NoError(t, err, "%s reports PCI %s, which sysfs does not list", d.Name, d.PCIBusID)
		}
	}
}
