//go:build !purego

#include "textflag.h"

// The scan kernels on amd64: one loop per vector width, shared by the
// three exported kernels, which differ only in their classification table
// (scanFieldValueTab, scanTokenTab, scanCleanPathTab in scan.go).
//
// Classification (Langdale's "vectorized classification", as in simdjson):
// a table string holds lo (16 bytes) then hi (16 bytes); the class of a
// byte c is lo[c&15] & hi[c>>4], and the scan stops at the first byte whose
// class is zero. PSHUFB looks up 16 (SSE) or 2x16 (AVX2, per 128-bit lane,
// hence the tables broadcast to both lanes) bytes at once. There is no byte
// shift: c>>4 is a 16-bit shift right by 4 then an AND with 0x0f, which
// drops the bits shifted in from the neighbouring byte. The low nibble is
// masked too, so that PSHUFB never sees bit 7 (which would zero the lookup)
// and the tables alone decide bytes 0x80-0xff.
//
// Per block of 2 vectors: classify both, take the unsigned byte minimum
// (zero if either has a zero class), compare it with zero and PMOVMSKB:
// a zero mask means the whole block is accepted. Otherwise the masks of
// both vectors make one 64-bit (AVX2) or 32-bit (SSE) bit map of the
// stopping bytes, whose lowest set bit (BSF) is the answer's offset in the
// block. BSF rather than TZCNT: the mask is never zero there, and BSF needs
// no BMI1.
//
// Tails, with no load past the end of s (nor before its start): when
// fewer than a block remains, the last block is loaded again so that it
// ends exactly at len(s). It overlaps bytes already accepted, so its first
// stopping byte is still the first of s. A string shorter than a block
// takes two overlapping vectors at 0 and len(s)-width; one of 8 to 15
// bytes one vector made of its first 8 and its last 8 bytes (two 64-bit
// loads); one shorter than 8 bytes is scanned a byte at a time with the
// same tables.
//
// Registers: SI = s.base, BX = len(s), AX = table, DX = offset of the
// current block, R9 = offset of the last full block (len(s) - block, may
// be negative), CX and R8 = masks. Vectors: Y11 = 0x0f in every byte,
// Y12 = zero, Y13 = lo table, Y14 = hi table (X11-X14 for SSE).

// CLASSIFY_AVX2 replaces the bytes of x by their classes; t is clobbered.
// It works on Y (32 bytes) or, with X registers, VEX-encoded 16 bytes.
#define CLASSIFY_AVX2(x, t, m, lo, hi) \
	VPSRLW  $4, x, t; \
	VPAND   m, t, t; \
	VPAND   m, x, x; \
	VPSHUFB t, hi, t; \
	VPSHUFB x, lo, x; \
	VPAND   t, x, x

// CLASSIFY_SSE replaces the bytes of x by their classes; t and u are
// clobbered (PSHUFB overwrites its table operand, hence the copies).
#define CLASSIFY_SSE(x, t, u) \
	MOVO   x, t; \
	PSRLW  $4, t; \
	PAND   X11, t; \
	PAND   X11, x; \
	MOVO   X13, u; \
	PSHUFB x, u; \
	MOVO   X14, x; \
	PSHUFB t, x; \
	PAND   u, x

// func scanNibbleAVX2(s, tab string) int
TEXT ·scanNibbleAVX2(SB), NOSPLIT, $0-40
	MOVQ s_base+0(FP), SI
	MOVQ s_len+8(FP), BX
	MOVQ tab_base+16(FP), AX
	CMPQ BX, $8
	JB   scalar

	VBROADCASTI128 (AX), Y13
	VBROADCASTI128 16(AX), Y14
	MOVL           $0x0f, CX
	MOVQ           CX, X11
	VPBROADCASTB   X11, Y11
	VPXOR          Y12, Y12, Y12
	CMPQ           BX, $16
	JB             len8
	CMPQ           BX, $32
	JB             len16

	XORL DX, DX
	MOVQ BX, R9
	SUBQ $64, R9
	JLT  len32

loop64:
	// 64 bytes at DX: Y0 and Y1 become classes.
	VMOVDQU   (SI)(DX*1), Y0
	VMOVDQU   32(SI)(DX*1), Y1
	CLASSIFY_AVX2(Y0, Y2, Y11, Y13, Y14)
	CLASSIFY_AVX2(Y1, Y3, Y11, Y13, Y14)
	VPMINUB   Y0, Y1, Y2
	VPCMPEQB  Y12, Y2, Y2
	VPMOVMSKB Y2, CX
	TESTL     CX, CX
	JNZ       found64
	ADDQ      $64, DX
	CMPQ      DX, R9
	JLE       loop64

	// Fewer than 64 bytes left: none, or the last 64 of s once more.
	CMPQ DX, BX
	JEQ  none
	MOVQ R9, DX
	JMP  loop64

found64:
	VPCMPEQB  Y12, Y0, Y0
	VPMOVMSKB Y0, CX
	VPCMPEQB  Y12, Y1, Y1
	VPMOVMSKB Y1, R8
	SHLQ      $32, R8
	ORQ       R8, CX
	BSFQ      CX, CX
	ADDQ      DX, CX
	VZEROUPPER
	MOVQ      CX, ret+32(FP)
	RET

len32:
	// 32 <= len(s) < 64: the vectors at 0 and len(s)-32.
	VMOVDQU   (SI), Y0
	VMOVDQU   -32(SI)(BX*1), Y1
	CLASSIFY_AVX2(Y0, Y2, Y11, Y13, Y14)
	CLASSIFY_AVX2(Y1, Y3, Y11, Y13, Y14)
	VPCMPEQB  Y12, Y0, Y0
	VPMOVMSKB Y0, CX
	VPCMPEQB  Y12, Y1, Y1
	VPMOVMSKB Y1, R8
	VZEROUPPER
	TESTL     CX, CX
	JNZ       first
	TESTL     R8, R8
	JZ        retlen
	BSFL      R8, R8
	LEAQ      -32(BX)(R8*1), CX
	MOVQ      CX, ret+32(FP)
	RET

len16:
	// 16 <= len(s) < 32: the (VEX-encoded) 16-byte vectors at 0 and
	// len(s)-16.
	VMOVDQU   (SI), X0
	VMOVDQU   -16(SI)(BX*1), X1
	CLASSIFY_AVX2(X0, X2, X11, X13, X14)
	CLASSIFY_AVX2(X1, X3, X11, X13, X14)
	VPCMPEQB  X12, X0, X0
	VPMOVMSKB X0, CX
	VPCMPEQB  X12, X1, X1
	VPMOVMSKB X1, R8
	VZEROUPPER
	TESTL     CX, CX
	JNZ       first
	TESTL     R8, R8
	JZ        retlen
	BSFL      R8, R8
	LEAQ      -16(BX)(R8*1), CX
	MOVQ      CX, ret+32(FP)
	RET

len8:
	// 8 <= len(s) < 16: the 8 bytes at 0 and the 8 at len(s)-8 as one
	// vector. Bits 0-7 of the mask are bytes 0-7, bits 8-15 bytes
	// len(s)-8 to len(s)-1: bit b stands for byte len(s)-16+b.
	VMOVQ       (SI), X0
	VMOVQ       -8(SI)(BX*1), X1
	VPUNPCKLQDQ X1, X0, X0
	CLASSIFY_AVX2(X0, X2, X11, X13, X14)
	VPCMPEQB    X12, X0, X0
	VPMOVMSKB   X0, CX
	VZEROUPPER
	TESTL       $0xff, CX
	JNZ         first
	TESTL       CX, CX
	JZ          retlen
	BSFL        CX, CX
	LEAQ        -16(BX)(CX*1), CX
	MOVQ        CX, ret+32(FP)
	RET

first:
	// The stopping byte is in the vector at offset 0; CX is its mask.
	BSFL CX, CX
	MOVQ CX, ret+32(FP)
	RET

none:
	VZEROUPPER

retlen:
	MOVQ BX, ret+32(FP)
	RET

scalar:
	// len(s) < 8: one byte at a time, class = lo[c&15] & hi[c>>4].
	XORL DX, DX

scalarloop:
	CMPQ    DX, BX
	JEQ     retlen
	MOVBLZX (SI)(DX*1), CX
	MOVL    CX, R8
	ANDL    $15, CX
	SHRL    $4, R8
	MOVBLZX (AX)(CX*1), CX
	ANDB    16(AX)(R8*1), CX
	JZ      scalarfound
	INCQ    DX
	JMP     scalarloop

scalarfound:
	MOVQ DX, ret+32(FP)
	RET

// func scanNibbleSSE(s, tab string) int
TEXT ·scanNibbleSSE(SB), NOSPLIT, $0-40
	MOVQ s_base+0(FP), SI
	MOVQ s_len+8(FP), BX
	MOVQ tab_base+16(FP), AX
	CMPQ BX, $8
	JB   scalar

	MOVOU  (AX), X13
	MOVOU  16(AX), X14
	MOVL   $0x0f0f0f0f, CX
	MOVL   CX, X11
	PSHUFD $0, X11, X11
	PXOR   X12, X12
	CMPQ   BX, $16
	JB     len8

	XORL DX, DX
	MOVQ BX, R9
	SUBQ $32, R9
	JLT  len16

loop32:
	// 32 bytes at DX: X0 and X1 become classes.
	MOVOU    (SI)(DX*1), X0
	MOVOU    16(SI)(DX*1), X1
	CLASSIFY_SSE(X0, X2, X3)
	CLASSIFY_SSE(X1, X4, X5)
	MOVO     X0, X2
	PMINUB   X1, X2
	PCMPEQB  X12, X2
	PMOVMSKB X2, CX
	TESTL    CX, CX
	JNZ      found32
	ADDQ     $32, DX
	CMPQ     DX, R9
	JLE      loop32

	// Fewer than 32 bytes left: none, or the last 32 of s once more.
	CMPQ DX, BX
	JEQ  retlen
	MOVQ R9, DX
	JMP  loop32

found32:
	PCMPEQB  X12, X0
	PMOVMSKB X0, CX
	PCMPEQB  X12, X1
	PMOVMSKB X1, R8
	SHLL     $16, R8
	ORL      R8, CX
	BSFL     CX, CX
	ADDQ     DX, CX
	MOVQ     CX, ret+32(FP)
	RET

len16:
	// 16 <= len(s) < 32: the vectors at 0 and len(s)-16.
	MOVOU    (SI), X0
	MOVOU    -16(SI)(BX*1), X1
	CLASSIFY_SSE(X0, X2, X3)
	CLASSIFY_SSE(X1, X4, X5)
	PCMPEQB  X12, X0
	PMOVMSKB X0, CX
	PCMPEQB  X12, X1
	PMOVMSKB X1, R8
	TESTL    CX, CX
	JNZ      first
	TESTL    R8, R8
	JZ       retlen
	BSFL     R8, R8
	LEAQ     -16(BX)(R8*1), CX
	MOVQ     CX, ret+32(FP)
	RET

len8:
	// 8 <= len(s) < 16: the 8 bytes at 0 and the 8 at len(s)-8 as one
	// vector; bit b of the mask's high byte stands for byte len(s)-16+b.
	MOVQ       (SI), X0
	MOVQ       -8(SI)(BX*1), X1
	PUNPCKLQDQ X1, X0
	CLASSIFY_SSE(X0, X2, X3)
	PCMPEQB    X12, X0
	PMOVMSKB   X0, CX
	TESTL      $0xff, CX
	JNZ        first
	TESTL      CX, CX
	JZ         retlen
	BSFL       CX, CX
	LEAQ       -16(BX)(CX*1), CX
	MOVQ       CX, ret+32(FP)
	RET

first:
	BSFL CX, CX
	MOVQ CX, ret+32(FP)
	RET

retlen:
	MOVQ BX, ret+32(FP)
	RET

scalar:
	// len(s) < 8: one byte at a time, class = lo[c&15] & hi[c>>4].
	XORL DX, DX

scalarloop:
	CMPQ    DX, BX
	JEQ     retlen
	MOVBLZX (SI)(DX*1), CX
	MOVL    CX, R8
	ANDL    $15, CX
	SHRL    $4, R8
	MOVBLZX (AX)(CX*1), CX
	ANDB    16(AX)(R8*1), CX
	JZ      scalarfound
	INCQ    DX
	JMP     scalarloop

scalarfound:
	MOVQ DX, ret+32(FP)
	RET
