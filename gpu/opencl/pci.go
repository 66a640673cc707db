package opencl

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unsafe"
)

// #include "cl_shim.h"
import "C"

// The vendor queries that say where a device sits on the PCI bus: rig
// managers (Hive OS) and NVML number GPUs by PCI bus, OpenCL in its own
// order, so the bus is what ties a device to the card in a slot.
const (
	clDeviceExtensions = 0x1030
	// cl_khr_pci_bus_info: struct {cl_uint domain, bus, device, function}.
	clDevicePCIBusInfoKHR = 0x410F
	// cl_nv_device_attribute_query: the bus, and the slot as device<<3|function.
	clDevicePCIBusIDNV    = 0x4008
	clDevicePCISlotIDNV   = 0x4009
	clDevicePCIDomainIDNV = 0x400A
	// cl_amd_device_attribute_query: cl_device_topology_amd, 24 bytes: a
	// cl_uint type (1 is PCIe), 17 unused bytes, then bus, device, function.
	clDeviceTopologyAMD         = 0x4037
	clDeviceTopologyTypePCIeAMD = 1
)

// PCIAddress is a device's place on the PCI bus.
type PCIAddress struct {
	Domain, Bus, Device, Function uint32
}

// String is the Linux sysfs form, e.g. 0000:0a:00.0.
func (a PCIAddress) String() string {
	return fmt.Sprintf("%04x:%02x:%02x.%x", a.Domain, a.Bus, a.Device, a.Function)
}

// pciFromKHR decodes CL_DEVICE_PCI_BUS_INFO_KHR.
func pciFromKHR(b []byte) (PCIAddress, bool) {
	if len(b) < 16 {
		return PCIAddress{}, false
	}
	le := binary.LittleEndian
	a := PCIAddress{Domain: le.Uint32(b[0:]), Bus: le.Uint32(b[4:]), Device: le.Uint32(b[8:]), Function: le.Uint32(b[12:])}
	return a, a.valid()
}

// pciFromNV combines NVIDIA's bus, slot and (where the driver has it)
// domain queries.
func pciFromNV(domain, bus, slot uint32) (PCIAddress, bool) {
	a := PCIAddress{Domain: domain, Bus: bus, Device: slot >> 3, Function: slot & 7}
	return a, a.valid()
}

// pciFromAMD decodes CL_DEVICE_TOPOLOGY_AMD; the domain is not in it.
func pciFromAMD(b []byte) (PCIAddress, bool) {
	if len(b) < 24 || binary.LittleEndian.Uint32(b) != clDeviceTopologyTypePCIeAMD {
		return PCIAddress{}, false
	}
	a := PCIAddress{Bus: uint32(b[21]), Device: uint32(b[22]), Function: uint32(b[23])}
	return a, a.valid()
}

// valid rejects what no PCI bus has: bus, device and function are 8, 5
// and 3 bits wide (domains past 16 bits exist, behind Intel's VMD).
func (a PCIAddress) valid() bool {
	return a.Bus <= 0xff && a.Device <= 0x1f && a.Function <= 7
}

func hasExtension(exts, name string) bool {
	for _, e := range strings.Fields(exts) {
		if e == name {
			return true
		}
	}
	return false
}

// deviceBytes reads a fixed-size property; false when the runtime refuses
// it or answers with another size.
func deviceBytes(d C.cl_device_id, param C.cl_uint, size int) ([]byte, bool) {
	buf := make([]byte, size)
	var got C.size_t
	if rc := C.w_clGetDeviceInfo(d, param, C.size_t(size), unsafe.Pointer(&buf[0]), &got); rc != clSuccess || int(got) != size {
		return nil, false
	}
	return buf, true
}

// devicePCI asks the runtime where the device sits, by whichever of the
// three extensions it offers; "" when none says (CPU runtimes, older
// drivers). A failing query is no error: the address only labels.
func devicePCI(d C.cl_device_id, exts string) string {
	if hasExtension(exts, "cl_khr_pci_bus_info") {
		if b, ok := deviceBytes(d, clDevicePCIBusInfoKHR, 16); ok {
			if a, ok := pciFromKHR(b); ok {
				return a.String()
			}
		}
	}
	if hasExtension(exts, "cl_nv_device_attribute_query") {
		bus, bok := deviceBytes(d, clDevicePCIBusIDNV, 4)
		slot, sok := deviceBytes(d, clDevicePCISlotIDNV, 4)
		if bok && sok {
			var domain uint32
			if b, ok := deviceBytes(d, clDevicePCIDomainIDNV, 4); ok {
				domain = binary.LittleEndian.Uint32(b)
			}
			if a, ok := pciFromNV(domain, binary.LittleEndian.Uint32(bus), binary.LittleEndian.Uint32(slot)); ok {
				return a.String()
			}
		}
	}
	if hasExtension(exts, "cl_amd_device_attribute_query") {
		if b, ok := deviceBytes(d, clDeviceTopologyAMD, 24); ok {
			if a, ok := pciFromAMD(b); ok {
				return a.String()
			}
		}
	}
	return ""
}
