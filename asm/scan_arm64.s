//go:build !purego

#include "textflag.h"

// The scan kernels on arm64 (NEON): one loop shared by the three exported
// kernels, which differ only in their classification table
// (scanFieldValueTab, scanTokenTab, scanCleanPathTab in scan.go).
//
// Classification (Langdale's "vectorized classification", as in simdjson):
// a table string holds lo (16 bytes) then hi (16 bytes); the class of a
// byte c is lo[c&15] & hi[c>>4], and the scan stops at the first byte whose
// class is zero. Per 16-byte vector: USHR #4 gives the high nibbles, AND
// 0x0f the low ones, two single-register TBLs look both up, and CMTST
// (AND, then "not zero") leaves 0xff on every accepted byte and 0x00 on
// every stopping byte.
//
// Per iteration 64 bytes (four vectors): the four masks are ANDed into
// one, whose two 64-bit halves (UMOV to general registers) are ANDed: -1
// means the whole block is accepted. Otherwise the first vector with a
// stopping byte is found, its halves inverted (stopping bytes become 0xff),
// and RBIT + CLZ of the first non-zero half, divided by 8, is the byte's
// offset. (The usual SHRN-by-4 movemask would save an instruction per
// block, but Go's assembler has no SHRN and the UMOV pair costs about the
// same.)
//
// Tails, with no load past the end of s (nor before its start): when
// fewer than a block remains, the last block is loaded again so that it
// ends exactly at len(s). It overlaps bytes already accepted, so its first
// stopping byte is still the first of s. Strings of 16 to 63 bytes go 16
// bytes at a time the same way; strings of 8 to 15 bytes as one vector of
// their first 8 and last 8 bytes (two 64-bit loads); shorter ones a byte
// at a time with the same tables.
//
// Registers: R0 = s.base, R1 = len(s), R2 = table, R3 = offset of the
// current block, R4 = offset of the last full block (len(s) - block, may be
// negative), R5-R8 scratch. Vectors: V29 = 0x0f in every byte, V30 = lo
// table, V31 = hi table, V0-V5 data and masks.

// CLASSIFY turns the 16 bytes of v into 0xff (class not zero: accepted) or
// 0x00 (stop); t is clobbered.
#define CLASSIFY(v, t) \
	VUSHR  $4, v.B16, t.B16; \
	VAND   V29.B16, v.B16, v.B16; \
	VTBL   t.B16, [V31.B16], t.B16; \
	VTBL   v.B16, [V30.B16], v.B16; \
	VCMTST t.B16, v.B16, v.B16

// func scanNibbleNEON(s, tab string) int
TEXT ·scanNibbleNEON(SB), NOSPLIT, $0-40
	MOVD s_base+0(FP), R0
	MOVD s_len+8(FP), R1
	MOVD tab_base+16(FP), R2
	CMP  $8, R1
	BLT  scalar

	VLD1  (R2), [V30.B16, V31.B16]
	VMOVI $15, V29.B16
	CMP   $16, R1
	BLT   len8
	MOVD  $0, R3
	SUBS  $64, R1, R4
	BLT   len16

loop64:
	// 64 bytes at R3: V0-V3 become masks.
	ADD  R0, R3, R5
	VLD1 (R5), [V0.B16, V1.B16, V2.B16, V3.B16]
	CLASSIFY(V0, V4)
	CLASSIFY(V1, V5)
	CLASSIFY(V2, V4)
	CLASSIFY(V3, V5)
	VAND V0.B16, V1.B16, V4.B16
	VAND V2.B16, V3.B16, V5.B16
	VAND V4.B16, V5.B16, V4.B16
	VMOV V4.D[0], R6
	VMOV V4.D[1], R7
	AND  R6, R7, R6
	CMN  $1, R6
	BNE  found64
	ADD  $64, R3
	CMP  R4, R3
	BLE  loop64

	// Fewer than 64 bytes left: none, or the last 64 of s once more.
	CMP  R1, R3
	BEQ  retlen
	MOVD R4, R3
	B    loop64

found64:
	// A stopping byte in V0-V3: shift the vectors down until it is in V0.
	VMOV V0.D[0], R6
	VMOV V0.D[1], R7
	AND  R6, R7, R8
	CMN  $1, R8
	BNE  found16
	VMOV V1.B16, V0.B16
	VMOV V2.B16, V1.B16
	VMOV V3.B16, V2.B16
	ADD  $16, R3
	B    found64

len16:
	// 16 <= len(s) < 64: 16 bytes at a time, the last 16 of s once more.
	SUB $16, R1, R4

loop16:
	ADD  R0, R3, R5
	VLD1 (R5), [V0.B16]
	CLASSIFY(V0, V4)
	VMOV V0.D[0], R6
	VMOV V0.D[1], R7
	AND  R6, R7, R8
	CMN  $1, R8
	BNE  found16
	ADD  $16, R3
	CMP  R4, R3
	BLE  loop16
	CMP  R1, R3
	BEQ  retlen
	MOVD R4, R3
	B    loop16

found16:
	// R6, R7: the mask halves of the 16 bytes at R3, which hold a
	// stopping byte (0x00). Invert, and find the lowest non-zero byte.
	MVN  R6, R6
	CBZ  R6, high
	RBIT R6, R6
	CLZ  R6, R6
	ADD  R6>>3, R3, R3
	MOVD R3, ret+32(FP)
	RET

high:
	MVN  R7, R7
	RBIT R7, R7
	CLZ  R7, R7
	ADD  $8, R3
	ADD  R7>>3, R3, R3
	MOVD R3, ret+32(FP)
	RET

len8:
	// 8 <= len(s) < 16: the 8 bytes at 0 (low half) and the 8 at
	// len(s)-8 (high half) as one vector.
	MOVD  (R0), R6
	ADD   R0, R1, R5
	MOVD  -8(R5), R7
	VMOV  R6, V0.D[0]
	VMOV  R7, V0.D[1]
	CLASSIFY(V0, V4)
	VMOV  V0.D[0], R6
	VMOV  V0.D[1], R7
	MVN   R6, R6
	CBZ   R6, len8high
	RBIT  R6, R6
	CLZ   R6, R6
	LSR   $3, R6
	MOVD  R6, ret+32(FP)
	RET

len8high:
	MVN  R7, R7
	CBZ  R7, retlen
	RBIT R7, R7
	CLZ  R7, R7
	SUB  $8, R1, R3
	ADD  R7>>3, R3, R3
	MOVD R3, ret+32(FP)
	RET

scalar:
	// len(s) < 8: one byte at a time, class = lo[c&15] & hi[c>>4].
	MOVD $0, R3
	ADD  $16, R2, R8

scalarloop:
	CMP   R1, R3
	BEQ   retlen
	MOVBU (R0)(R3), R5
	AND   $15, R5, R6
	LSR   $4, R5, R7
	MOVBU (R2)(R6), R6
	MOVBU (R8)(R7), R7
	TST   R6, R7
	BEQ   scalarfound
	ADD   $1, R3
	B     scalarloop

scalarfound:
	MOVD R3, ret+32(FP)
	RET

retlen:
	MOVD R1, ret+32(FP)
	RET
