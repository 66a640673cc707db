// cl_shim.h: the subset of the OpenCL 1.2 C API that package opencl uses,
// declared here so the build needs no OpenCL headers or library.
#ifndef CLMINER_CL_SHIM_H
#define CLMINER_CL_SHIM_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef int32_t cl_int;
typedef uint32_t cl_uint;
typedef uint64_t cl_ulong;
typedef cl_ulong cl_bitfield;
typedef cl_uint cl_bool;
typedef cl_bitfield cl_device_type;
typedef cl_bitfield cl_command_queue_properties;
typedef cl_bitfield cl_mem_flags;
typedef cl_uint cl_platform_info;
typedef cl_uint cl_device_info;
typedef cl_uint cl_program_info;
typedef cl_uint cl_program_build_info;
typedef intptr_t cl_context_properties;
typedef struct _cl_platform_id *cl_platform_id;
typedef struct _cl_device_id *cl_device_id;
typedef struct _cl_context *cl_context;
typedef struct _cl_command_queue *cl_command_queue;
typedef struct _cl_mem *cl_mem;
typedef struct _cl_program *cl_program;
typedef struct _cl_kernel *cl_kernel;
typedef struct _cl_event *cl_event;

#define CL_FUNCS(X) \
	X(cl_int, clGetPlatformIDs, (cl_uint n, cl_platform_id *p, cl_uint *num), (n, p, num)) \
	X(cl_int, clGetPlatformInfo, (cl_platform_id p, cl_platform_info i, size_t sz, void *v, size_t *ret), (p, i, sz, v, ret)) \
	X(cl_int, clGetDeviceIDs, (cl_platform_id p, cl_device_type t, cl_uint n, cl_device_id *d, cl_uint *num), (p, t, n, d, num)) \
	X(cl_int, clGetDeviceInfo, (cl_device_id d, cl_device_info i, size_t sz, void *v, size_t *ret), (d, i, sz, v, ret)) \
	X(cl_context, clCreateContext, (const cl_context_properties *props, cl_uint n, const cl_device_id *d, void *notify, void *user, cl_int *err), (props, n, d, notify, user, err)) \
	X(cl_command_queue, clCreateCommandQueue, (cl_context c, cl_device_id d, cl_command_queue_properties props, cl_int *err), (c, d, props, err)) \
	X(cl_program, clCreateProgramWithSource, (cl_context c, cl_uint n, const char **src, const size_t *len, cl_int *err), (c, n, src, len, err)) \
	X(cl_program, clCreateProgramWithBinary, (cl_context c, cl_uint n, const cl_device_id *d, const size_t *len, const unsigned char **bin, cl_int *status, cl_int *err), (c, n, d, len, bin, status, err)) \
	X(cl_int, clBuildProgram, (cl_program p, cl_uint n, const cl_device_id *d, const char *opts, void *notify, void *user), (p, n, d, opts, notify, user)) \
	X(cl_int, clGetProgramBuildInfo, (cl_program p, cl_device_id d, cl_program_build_info i, size_t sz, void *v, size_t *ret), (p, d, i, sz, v, ret)) \
	X(cl_int, clGetProgramInfo, (cl_program p, cl_program_info i, size_t sz, void *v, size_t *ret), (p, i, sz, v, ret)) \
	X(cl_kernel, clCreateKernel, (cl_program p, const char *name, cl_int *err), (p, name, err)) \
	X(cl_mem, clCreateBuffer, (cl_context c, cl_mem_flags f, size_t sz, void *host, cl_int *err), (c, f, sz, host, err)) \
	X(cl_int, clSetKernelArg, (cl_kernel k, cl_uint i, size_t sz, const void *v), (k, i, sz, v)) \
	X(cl_int, clEnqueueNDRangeKernel, (cl_command_queue q, cl_kernel k, cl_uint dim, const size_t *off, const size_t *global, const size_t *local, cl_uint nev, const cl_event *wait, cl_event *ev), (q, k, dim, off, global, local, nev, wait, ev)) \
	X(cl_int, clEnqueueReadBuffer, (cl_command_queue q, cl_mem m, cl_bool block, size_t off, size_t sz, void *p, cl_uint nev, const cl_event *wait, cl_event *ev), (q, m, block, off, sz, p, nev, wait, ev)) \
	X(cl_int, clEnqueueWriteBuffer, (cl_command_queue q, cl_mem m, cl_bool block, size_t off, size_t sz, const void *p, cl_uint nev, const cl_event *wait, cl_event *ev), (q, m, block, off, sz, p, nev, wait, ev)) \
	X(cl_int, clEnqueueFillBuffer, (cl_command_queue q, cl_mem m, const void *pat, size_t patsz, size_t off, size_t sz, cl_uint nev, const cl_event *wait, cl_event *ev), (q, m, pat, patsz, off, sz, nev, wait, ev)) \
	X(void *, clEnqueueMapBuffer, (cl_command_queue q, cl_mem m, cl_bool block, cl_bitfield flags, size_t off, size_t sz, cl_uint nev, const cl_event *wait, cl_event *ev, cl_int *err), (q, m, block, flags, off, sz, nev, wait, ev, err)) \
	X(cl_int, clEnqueueUnmapMemObject, (cl_command_queue q, cl_mem m, void *p, cl_uint nev, const cl_event *wait, cl_event *ev), (q, m, p, nev, wait, ev)) \
	X(cl_int, clGetEventProfilingInfo, (cl_event e, cl_uint param, size_t sz, void *v, size_t *ret), (e, param, sz, v, ret)) \
	X(cl_int, clFlush, (cl_command_queue q), (q)) \
	X(cl_int, clFinish, (cl_command_queue q), (q)) \
	X(cl_int, clWaitForEvents, (cl_uint n, const cl_event *ev), (n, ev)) \
	X(cl_int, clReleaseEvent, (cl_event e), (e)) \
	X(cl_int, clReleaseMemObject, (cl_mem m), (m)) \
	X(cl_int, clReleaseKernel, (cl_kernel k), (k)) \
	X(cl_int, clReleaseProgram, (cl_program p), (p)) \
	X(cl_int, clReleaseCommandQueue, (cl_command_queue q), (q)) \
	X(cl_int, clReleaseContext, (cl_context c), (c))


#define CL_DECL(ret, name, params, args) ret w_##name params;
CL_FUNCS(CL_DECL)

// cl_load opens the runtime (only the library named by only, when not NULL)
// and resolves every function. It returns NULL on success, else a message
// that stays valid for the life of the process.
const char *cl_load(const char *only);
// w_reset_counter zeroes a candidate counter without blocking
// (clEnqueueFillBuffer copies the pattern before it returns).
cl_int w_reset_counter(cl_command_queue q, cl_mem m);
// w_kernel_ns is the run time of a profiled command in ns, or 0 when the
// runtime cannot say.
cl_ulong w_kernel_ns(cl_event e);
#endif
