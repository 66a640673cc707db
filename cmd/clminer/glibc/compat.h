/*
 * compat.h is force-included (gcc -include, through CGO_CFLAGS in the
 * Makefile) into every C file of the portable build, runtime/cgo's included.
 *
 * Why: a binary linked against glibc 2.34+ binds each libc call to the
 * newest version of the symbol (pthread_create@GLIBC_2.34, dlopen@GLIBC_2.34)
 * and no longer starts on Ubuntu 18.04/20.04 (glibc 2.27/2.31), which is what
 * Hive OS and most rig images run. Every function clminer's C code and the Go
 * runtime call has existed since glibc 2.2.5 (x86-64's first version) with an
 * unchanged ABI; glibc 2.34 only moved the pthread and dl* functions from
 * libpthread/libdl into libc and gave them a new version. Binding to the old
 * version runs on old and new glibc alike (new glibc keeps the old version as
 * a compatibility symbol). The Makefile also links libpthread.so.0 and
 * libdl.so.2 (stubs on new glibc, the real libraries on old ones), and
 * glibc_compat.go wraps __libc_start_main, which crt1.o calls.
 *
 * A newly used libc function with a post-2.27 version makes `make
 * glibc-check` (run by `make test`) fail: add it here.
 */
#if defined(__x86_64__) && defined(__linux__) && !defined(__ASSEMBLER__)
__asm__(".symver pthread_create,pthread_create@GLIBC_2.2.5");
__asm__(".symver pthread_key_create,pthread_key_create@GLIBC_2.2.5");
__asm__(".symver pthread_setspecific,pthread_setspecific@GLIBC_2.2.5");
__asm__(".symver pthread_getspecific,pthread_getspecific@GLIBC_2.2.5");
__asm__(".symver pthread_attr_getstack,pthread_attr_getstack@GLIBC_2.2.5");
__asm__(".symver pthread_attr_getstacksize,pthread_attr_getstacksize@GLIBC_2.2.5");
__asm__(".symver pthread_attr_setstacksize,pthread_attr_setstacksize@GLIBC_2.2.5");
__asm__(".symver pthread_getattr_np,pthread_getattr_np@GLIBC_2.2.5");
__asm__(".symver pthread_sigmask,pthread_sigmask@GLIBC_2.2.5");
__asm__(".symver pthread_detach,pthread_detach@GLIBC_2.2.5");
__asm__(".symver pthread_mutex_trylock,pthread_mutex_trylock@GLIBC_2.2.5");
__asm__(".symver dlopen,dlopen@GLIBC_2.2.5");
__asm__(".symver dlsym,dlsym@GLIBC_2.2.5");
__asm__(".symver dlclose,dlclose@GLIBC_2.2.5");
__asm__(".symver dlerror,dlerror@GLIBC_2.2.5");
__asm__(".symver dlinfo,dlinfo@GLIBC_2.3.3");
#endif
