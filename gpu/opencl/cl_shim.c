// cl_shim.c resolves the OpenCL API with dlopen/dlsym at run time, so the
// binary starts on machines without OpenCL and reports why it cannot mine.
#include "cl_shim.h"
#include <dlfcn.h>
#include <stdio.h>

// cgo cannot call through function pointers, so each one gets a wrapper.
#define CL_PTR(ret, name, params, args) static ret (*p_##name) params;
#define CL_WRAP(ret, name, params, args) ret w_##name params { return p_##name args; }
CL_FUNCS(CL_PTR)
CL_FUNCS(CL_WRAP)

static void *cl_lib;

const char *cl_load(const char *only) {
	static char msg[512];
	const char *names[] = {"libOpenCL.so.1", "libOpenCL.so"};
	int count = 2;
	const char *first = NULL;
	if (only) {
		names[0] = only;
		count = 1;
	}
	msg[0] = 0;
	for (int i = 0; i < count && !cl_lib; i++) {
		cl_lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
		if (!cl_lib && !first) {
			const char *e = dlerror();
			if (e) {
				snprintf(msg, sizeof msg, "%s", e);
				first = msg;
			}
		}
	}
	if (!cl_lib) {
		return first ? first : "libOpenCL.so.1: cannot be opened";
	}
#define CL_SYM(ret, name, params, args) \
	p_##name = (ret (*) params)dlsym(cl_lib, #name); \
	if (!p_##name) { snprintf(msg, sizeof msg, "symbol %s missing from the OpenCL runtime", #name); return msg; }
	CL_FUNCS(CL_SYM)
	return NULL;
}

cl_int w_reset_counter(cl_command_queue q, cl_mem m) {
	const cl_uint zero = 0;
	return p_clEnqueueFillBuffer(q, m, &zero, sizeof zero, 0, sizeof zero, 0, NULL, NULL);
}

#define CL_PROFILING_COMMAND_START 0x1282
#define CL_PROFILING_COMMAND_END 0x1283
cl_ulong w_kernel_ns(cl_event e) {
	cl_ulong start = 0, end = 0;
	if (p_clGetEventProfilingInfo(e, CL_PROFILING_COMMAND_START, sizeof start, &start, NULL) != 0 ||
	    p_clGetEventProfilingInfo(e, CL_PROFILING_COMMAND_END, sizeof end, &end, NULL) != 0 || end <= start) {
		return 0;
	}
	return end - start;
}
