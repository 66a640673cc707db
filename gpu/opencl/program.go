package opencl

// #include "cl_shim.h"
import "C"

import (
	"errors"
	"fmt"
	"time"
	"unsafe"
)

// buildProgram loads the program from the disk cache or compiles it,
// storing the binary for next time. A failed compile returns the build log.
func (d *Device) buildProgram(src, options string) (err error) {
	if f := d.opts.OnCompile; f != nil {
		began := time.Now()
		f(CompileEvent{Device: d.id, Name: d.info.Name})
		defer func() {
			f(CompileEvent{Device: d.id, Name: d.info.Name, Done: true, Cached: d.cacheHit, Elapsed: time.Since(began), Err: err})
		}()
	}
	dir := resolveCacheDir(d.opts.CacheDir)
	key := cacheKey(d.platform, d.info.Name, d.info.DriverVersion, d.info.Version, options, src)
	copts := C.CString(options)
	defer C.free(unsafe.Pointer(copts))

	if bin := readCache(dir, key); bin != nil {
		if p, err := d.programFromBinary(bin, copts); err == nil {
			d.prog, d.cacheHit = p, true
			return nil
		}
		// A stale or corrupt binary is not fatal: rebuild and overwrite it.
	}

	csrc := C.CString(src)
	defer C.free(unsafe.Pointer(csrc))
	length := C.size_t(len(src))
	var rc C.cl_int
	p := C.w_clCreateProgramWithSource(d.ctx, 1, &csrc, &length, &rc)
	if err := clErr("clCreateProgramWithSource", rc); err != nil {
		return err
	}
	if rc := C.w_clBuildProgram(p, 1, &d.did, copts, nil, nil); rc != clSuccess {
		e := &Error{Func: "clBuildProgram", Code: int32(rc), Log: d.buildLog(p)}
		C.w_clReleaseProgram(p)
		return e
	}
	d.prog = p
	if bin, err := d.programBinary(); err == nil {
		// A cache that cannot be written only costs a rebuild next start.
		_ = writeCache(dir, key, bin)
	}
	return nil
}

func (d *Device) programFromBinary(bin []byte, copts *C.char) (C.cl_program, error) {
	cbin := (*C.uchar)(C.CBytes(bin))
	defer C.free(unsafe.Pointer(cbin))
	length := C.size_t(len(bin))
	var status, rc C.cl_int
	p := C.w_clCreateProgramWithBinary(d.ctx, 1, &d.did, &length, &cbin, &status, &rc)
	if err := clErr("clCreateProgramWithBinary", rc); err != nil {
		return nil, err
	}
	if err := clErr("clCreateProgramWithBinary", status); err != nil {
		C.w_clReleaseProgram(p)
		return nil, err
	}
	if rc := C.w_clBuildProgram(p, 1, &d.did, copts, nil, nil); rc != clSuccess {
		C.w_clReleaseProgram(p)
		return nil, clErr("clBuildProgram", rc)
	}
	return p, nil
}

func (d *Device) buildLog(p C.cl_program) string {
	var sz C.size_t
	if C.w_clGetProgramBuildInfo(p, d.did, clProgramBuildLog, 0, nil, &sz) != clSuccess || sz == 0 {
		return ""
	}
	buf := make([]byte, sz)
	if C.w_clGetProgramBuildInfo(p, d.did, clProgramBuildLog, sz, unsafe.Pointer(&buf[0]), nil) != clSuccess {
		return ""
	}
	return cString(buf)
}

// programBinary returns the device binary of the built program.
func (d *Device) programBinary() ([]byte, error) {
	var ndev C.cl_uint
	if rc := C.w_clGetProgramInfo(d.prog, clProgramNumDevices, C.size_t(unsafe.Sizeof(ndev)), unsafe.Pointer(&ndev), nil); rc != clSuccess {
		return nil, clErr("clGetProgramInfo", rc)
	}
	if ndev != 1 {
		return nil, fmt.Errorf("opencl: program has %d devices, want 1", ndev)
	}
	var size C.size_t
	if rc := C.w_clGetProgramInfo(d.prog, clProgramBinarySizes, C.size_t(unsafe.Sizeof(size)), unsafe.Pointer(&size), nil); rc != clSuccess {
		return nil, clErr("clGetProgramInfo", rc)
	}
	if size == 0 {
		return nil, errors.New("opencl: runtime returned an empty program binary")
	}
	// The runtime writes through the pointer array, so both the array and
	// the buffer it points to must be C memory.
	buf := C.malloc(size)
	if buf == nil {
		return nil, errors.New("opencl: out of host memory")
	}
	defer C.free(buf)
	ptrs := (*unsafe.Pointer)(C.malloc(C.size_t(unsafe.Sizeof(buf))))
	if ptrs == nil {
		return nil, errors.New("opencl: out of host memory")
	}
	defer C.free(unsafe.Pointer(ptrs))
	*ptrs = buf
	if rc := C.w_clGetProgramInfo(d.prog, clProgramBinaries, C.size_t(unsafe.Sizeof(buf)), unsafe.Pointer(ptrs), nil); rc != clSuccess {
		return nil, clErr("clGetProgramInfo", rc)
	}
	return C.GoBytes(buf, C.int(size)), nil
}
