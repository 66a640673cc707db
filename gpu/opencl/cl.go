package opencl

/*
#cgo LDFLAGS: -ldl
#include "cl_shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"unsafe"
)

// The OpenCL constants this package needs, from the Khronos cl.h.
const (
	clSuccess = 0

	clPlatformVersion = 0x0901
	clPlatformName    = 0x0902
	clPlatformVendor  = 0x0903

	clDeviceTypeCPU         = 1 << 1
	clDeviceTypeGPU         = 1 << 2
	clDeviceTypeAccelerator = 1 << 3
	clDeviceTypeAll         = 0xFFFFFFFF

	clDeviceType                    = 0x1000
	clDeviceMaxComputeUnits         = 0x1002
	clDeviceMaxWorkGroupSize        = 0x1004
	clDevicePreferredVectorWidthInt = 0x1008
	clDeviceGlobalMemSize           = 0x101F
	clDeviceName                    = 0x102B
	clDeviceVendor                  = 0x102C
	clDriverVersion                 = 0x102D
	clDeviceVersion                 = 0x102F

	clContextPlatform = 0x1084

	clMemReadWrite    = 1 << 0
	clMemReadOnly     = 1 << 2
	clMemAllocHostPtr = 1 << 4

	clMapRead  = 1 << 0
	clMapWrite = 1 << 1

	clQueueProfilingEnable = 1 << 1

	clProgramNumDevices  = 0x1162
	clProgramBinarySizes = 0x1165
	clProgramBinaries    = 0x1166
	clProgramBuildLog    = 0x1183

	clInvalidWorkGroupSize = -54
	clPlatformNotFoundKHR  = -1001
)

var (
	loadOnce sync.Once
	loadErr  error
)

// ErrNoRuntime is wrapped by Load's error when no OpenCL runtime library
// could be opened, so callers can tell "no OpenCL here" from real failures.
var ErrNoRuntime = errors.New("OpenCL runtime not found")

// LibraryEnv names an environment variable that, when set, is the only
// OpenCL library Load tries: a way to pick one runtime on machines with
// several, and for tests to simulate a machine with none.
const LibraryEnv = "CLMINER_OPENCL_LIB"

// Load opens the OpenCL runtime (libOpenCL.so.1, then libOpenCL.so, or the
// library named by $CLMINER_OPENCL_LIB) and resolves the functions this
// package calls. It is idempotent and safe for concurrent use; every other
// entry point calls it.
func Load() error {
	loadOnce.Do(func() {
		var only *C.char
		if lib := os.Getenv(LibraryEnv); lib != "" {
			only = C.CString(lib)
			defer C.free(unsafe.Pointer(only))
		}
		if msg := C.cl_load(only); msg != nil {
			loadErr = fmt.Errorf("%w: %s", ErrNoRuntime, C.GoString(msg))
		}
	})
	return loadErr
}

// Error is an OpenCL call that failed.
type Error struct {
	// Func is the OpenCL function, e.g. "clBuildProgram".
	Func string
	// Code is the cl_int status it returned.
	Code int32
	// Log is the compiler output for build failures.
	Log string
}

func (e *Error) Error() string {
	s := e.Func + ": " + ErrorName(e.Code)
	if e.Log != "" {
		s += "\nbuild log:\n" + e.Log
	}
	return s
}

func clErr(fn string, code C.cl_int) error {
	if code == clSuccess {
		return nil
	}
	return &Error{Func: fn, Code: int32(code)}
}
