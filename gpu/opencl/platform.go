package opencl

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"unsafe"
)

// #include "cl_shim.h"
import "C"

// Platform is one installed OpenCL implementation (an ICD).
type Platform struct {
	Index   int
	Name    string
	Vendor  string
	Version string
	Devices []DeviceInfo
}

// DeviceInfo is what the runtime says about one device.
type DeviceInfo struct {
	Index int
	Name  string
	// Type is "CPU", "GPU", "ACCELERATOR" or "OTHER".
	Type          string
	Vendor        string
	DriverVersion string
	// Version is the device's OpenCL version string.
	Version      string
	ComputeUnits int
	GlobalMem    uint64
	// PreferredVectorWidthInt is CL_DEVICE_PREFERRED_VECTOR_WIDTH_INT, what
	// Open uses when Options.VectorWidth is 0.
	PreferredVectorWidthInt int
	MaxWorkGroupSize        int
	// PCIBusID is where the device sits on the PCI bus, 0000:0a:00.0, from
	// cl_khr_pci_bus_info or NVIDIA's or AMD's attribute queries; "" when
	// the runtime does not say (CPU devices).
	PCIBusID string
}

// ErrNoPlatform means the runtime loaded but offers no platform or device.
var ErrNoPlatform = errors.New("no OpenCL platform")

func platformIDs() ([]C.cl_platform_id, error) {
	if err := Load(); err != nil {
		return nil, err
	}
	var n C.cl_uint
	if rc := C.w_clGetPlatformIDs(0, nil, &n); rc != clSuccess {
		if rc == clPlatformNotFoundKHR {
			return nil, fmt.Errorf("%w: the ICD loader found no installed platform (clGetPlatformIDs: CL_PLATFORM_NOT_FOUND_KHR)", ErrNoPlatform)
		}
		return nil, clErr("clGetPlatformIDs", rc)
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: the ICD loader found no installed platform", ErrNoPlatform)
	}
	ids := make([]C.cl_platform_id, n)
	if rc := C.w_clGetPlatformIDs(n, &ids[0], nil); rc != clSuccess {
		return nil, clErr("clGetPlatformIDs", rc)
	}
	return ids, nil
}

func deviceIDs(p C.cl_platform_id) ([]C.cl_device_id, error) {
	var n C.cl_uint
	rc := C.w_clGetDeviceIDs(p, clDeviceTypeAll, 0, nil, &n)
	if rc == -1 { // CL_DEVICE_NOT_FOUND: a platform without devices is not an error
		return nil, nil
	}
	if rc != clSuccess {
		return nil, clErr("clGetDeviceIDs", rc)
	}
	if n == 0 {
		return nil, nil
	}
	ids := make([]C.cl_device_id, n)
	if rc := C.w_clGetDeviceIDs(p, clDeviceTypeAll, n, &ids[0], nil); rc != clSuccess {
		return nil, clErr("clGetDeviceIDs", rc)
	}
	return ids, nil
}

func platformString(p C.cl_platform_id, param C.cl_uint) (string, error) {
	var sz C.size_t
	if rc := C.w_clGetPlatformInfo(p, param, 0, nil, &sz); rc != clSuccess {
		return "", clErr("clGetPlatformInfo", rc)
	}
	if sz == 0 {
		return "", nil
	}
	buf := make([]byte, sz)
	if rc := C.w_clGetPlatformInfo(p, param, sz, unsafe.Pointer(&buf[0]), nil); rc != clSuccess {
		return "", clErr("clGetPlatformInfo", rc)
	}
	return cString(buf), nil
}

func deviceString(d C.cl_device_id, param C.cl_uint) (string, error) {
	var sz C.size_t
	if rc := C.w_clGetDeviceInfo(d, param, 0, nil, &sz); rc != clSuccess {
		return "", clErr("clGetDeviceInfo", rc)
	}
	if sz == 0 {
		return "", nil
	}
	buf := make([]byte, sz)
	if rc := C.w_clGetDeviceInfo(d, param, sz, unsafe.Pointer(&buf[0]), nil); rc != clSuccess {
		return "", clErr("clGetDeviceInfo", rc)
	}
	return cString(buf), nil
}

// deviceUint reads a cl_uint, size_t or cl_ulong property; the runtime says
// which by the size it reports.
func deviceUint(d C.cl_device_id, param C.cl_uint) (uint64, error) {
	var buf [8]byte
	var sz C.size_t
	if rc := C.w_clGetDeviceInfo(d, param, 8, unsafe.Pointer(&buf[0]), &sz); rc != clSuccess {
		return 0, clErr("clGetDeviceInfo", rc)
	}
	var v uint64
	for i := int(sz) - 1; i >= 0; i-- { // little-endian hosts only, like every OpenCL host we target
		v = v<<8 | uint64(buf[i])
	}
	return v, nil
}

func cString(b []byte) string {
	s := string(b)
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

func describeDevice(index int, d C.cl_device_id) (DeviceInfo, error) {
	info := DeviceInfo{Index: index}
	var err error
	str := func(param C.cl_uint) string {
		var s string
		if err == nil {
			s, err = deviceString(d, param)
		}
		return s
	}
	num := func(param C.cl_uint) uint64 {
		var v uint64
		if err == nil {
			v, err = deviceUint(d, param)
		}
		return v
	}
	info.Name = str(clDeviceName)
	info.Vendor = str(clDeviceVendor)
	info.DriverVersion = str(clDriverVersion)
	info.Version = str(clDeviceVersion)
	t := num(clDeviceType)
	info.ComputeUnits = int(num(clDeviceMaxComputeUnits))
	info.GlobalMem = num(clDeviceGlobalMemSize)
	info.PreferredVectorWidthInt = int(num(clDevicePreferredVectorWidthInt))
	info.MaxWorkGroupSize = int(num(clDeviceMaxWorkGroupSize))
	if exts := str(clDeviceExtensions); err == nil {
		info.PCIBusID = devicePCI(d, exts)
	}
	switch {
	case t&clDeviceTypeGPU != 0:
		info.Type = "GPU"
	case t&clDeviceTypeCPU != 0:
		info.Type = "CPU"
	case t&clDeviceTypeAccelerator != 0:
		info.Type = "ACCELERATOR"
	default:
		info.Type = "OTHER"
	}
	return info, err
}

// enumMu serialises enumerating and describing devices. The ICD loader and
// POCL are not safe there: clGetDeviceIDs on one thread while another asks
// clGetDeviceInfo crashed the process (devices opened side by side, a
// listing during an open).
var enumMu sync.Mutex

// findDevice looks up device D of platform P, with its platform and that
// platform's name, and its description.
func findDevice(platform, device int) (pid C.cl_platform_id, pname string, did C.cl_device_id, info DeviceInfo, err error) {
	enumMu.Lock()
	defer enumMu.Unlock()
	pids, err := platformIDs()
	if err != nil {
		return nil, "", nil, info, err
	}
	if platform < 0 || platform >= len(pids) {
		return nil, "", nil, info, fmt.Errorf("opencl: platform %d does not exist (%d found)", platform, len(pids))
	}
	dids, err := deviceIDs(pids[platform])
	if err != nil {
		return nil, "", nil, info, err
	}
	if device < 0 || device >= len(dids) {
		return nil, "", nil, info, fmt.Errorf("opencl: platform %d has no device %d (%d found)", platform, device, len(dids))
	}
	if pname, err = platformString(pids[platform], clPlatformName); err != nil {
		return nil, "", nil, info, err
	}
	info, err = describeDevice(device, dids[device])
	return pids[platform], pname, dids[device], info, err
}

// Platforms lists every platform and its devices. Without a runtime or any
// platform it returns no platforms and one error saying why.
func Platforms() ([]Platform, error) {
	enumMu.Lock()
	defer enumMu.Unlock()
	pids, err := platformIDs()
	if err != nil {
		return nil, err
	}
	var out []Platform
	for i, pid := range pids {
		p := Platform{Index: i}
		if p.Name, err = platformString(pid, clPlatformName); err != nil {
			return nil, err
		}
		if p.Vendor, err = platformString(pid, clPlatformVendor); err != nil {
			return nil, err
		}
		if p.Version, err = platformString(pid, clPlatformVersion); err != nil {
			return nil, err
		}
		dids, err := deviceIDs(pid)
		if err != nil {
			return nil, err
		}
		for j, did := range dids {
			info, err := describeDevice(j, did)
			if err != nil {
				return nil, err
			}
			p.Devices = append(p.Devices, info)
		}
		out = append(out, p)
	}
	return out, nil
}
