//go:build linux && amd64 && cgo && glibc_compat

package main

/*
// crt1.o, precompiled against the build machine's glibc, calls
// __libc_start_main, which glibc 2.34 versioned anew (see glibc/compat.h).
// The portable build links it through this wrapper (-Wl,--wrap) to the
// original version. glibc before 2.34 runs a dynamic executable's own
// constructors through the init function passed here (crt1.o from 2.34 on
// passes none); glibc 2.34 and later still honour one when it is passed, so
// passing ours is right on both.
#include <stddef.h>

extern void (*__init_array_start[])(int, char **, char **) __attribute__((weak));
extern void (*__init_array_end[])(int, char **, char **) __attribute__((weak));
extern void _init(void);

int clminer_libc_start_main_2_2_5(int (*main)(int, char **, char **), int argc, char **argv,
	void (*init)(int, char **, char **), void (*fini)(void), void (*rtld_fini)(void), void *stack_end);
__asm__(".symver clminer_libc_start_main_2_2_5,__libc_start_main@GLIBC_2.2.5");

static void clminer_csu_init(int argc, char **argv, char **envp) {
	_init();
	size_t n = __init_array_end - __init_array_start;
	for (size_t i = 0; i < n; i++) {
		(*__init_array_start[i])(argc, argv, envp);
	}
}

int __wrap___libc_start_main(int (*main)(int, char **, char **), int argc, char **argv,
	void (*init)(int, char **, char **), void (*fini)(void), void (*rtld_fini)(void), void *stack_end) {
	(void)init;
	return clminer_libc_start_main_2_2_5(main, argc, argv, clminer_csu_init, fini, rtld_fini, stack_end);
}
*/
import "C"
