//go:build amd64 && !purego

#include "textflag.h"

// func cpuid(leaf, sub uint32) (a, b, c, d uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL leaf+0(FP), AX
	MOVL sub+4(FP), CX
	CPUID
	MOVL AX, a+8(FP)
	MOVL BX, b+12(FP)
	MOVL CX, c+16(FP)
	MOVL DX, d+20(FP)
	RET

// func spin(n uint64)
// Runs 24n cycles of dependent IMULQ (3 cycles each): a clock reference
// for the cycles-per-hash benchmarks.
TEXT ·spin(SB), NOSPLIT, $0-8
	MOVQ n+0(FP), CX
	MOVQ $3, DX
	XORQ AX, AX
spinloop:
	IMULQ DX, AX
	IMULQ DX, AX
	IMULQ DX, AX
	IMULQ DX, AX
	IMULQ DX, AX
	IMULQ DX, AX
	IMULQ DX, AX
	IMULQ DX, AX
	DECQ CX
	JNE spinloop
	RET
