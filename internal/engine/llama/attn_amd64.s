//go:build amd64 && !purego

#include "textflag.h"

// func attnScoresAVX2(q *float32, keys *float32, stride int, hd int, n int, scale float32, att *float32)
// For positions t < n (a multiple of 8) and head size hd (a multiple of 8):
// att[t] = (Σ_i q[i]·k_t[i], summed from 0 in order i = 0, 1, ...) / scale,
// k_t starting stride bytes after k_{t-1}. Eight positions are transposed
// into lanes so each lane performs the scalar loop's exact operations.
TEXT ·attnScoresAVX2(SB), NOSPLIT, $0-56
	MOVQ q+0(FP), R8
	MOVQ keys+8(FP), SI
	MOVQ stride+16(FP), R9
	MOVQ hd+24(FP), R10
	MOVQ n+32(FP), CX
	VBROADCASTSS scale+40(FP), Y14
	MOVQ att+48(FP), DX
	SHRQ $3, R10
	SHRQ $3, CX
	JZ scoresdone
	LEAQ (R9)(R9*2), R11 // 3·stride
scoresblock:
	VXORPS Y12, Y12, Y12
	MOVQ SI, AX   // key of the block's first position, current chunk
	MOVQ R8, BX   // q chunk
	MOVQ R10, R12 // chunks left
scoreschunk:
	MOVQ AX, R13
	VMOVUPS (R13), Y0
	VMOVUPS (R13)(R9*1), Y1
	VMOVUPS (R13)(R9*2), Y2
	VMOVUPS (R13)(R11*1), Y3
	LEAQ (R13)(R9*4), R13
	VMOVUPS (R13), Y4
	VMOVUPS (R13)(R9*1), Y5
	VMOVUPS (R13)(R9*2), Y6
	VMOVUPS (R13)(R11*1), Y7
	VUNPCKLPS Y1, Y0, Y8
	VUNPCKHPS Y1, Y0, Y9
	VUNPCKLPS Y3, Y2, Y10
	VUNPCKHPS Y3, Y2, Y11
	VUNPCKLPS Y5, Y4, Y0
	VUNPCKHPS Y5, Y4, Y1
	VUNPCKLPS Y7, Y6, Y2
	VUNPCKHPS Y7, Y6, Y3
	VSHUFPS $0x44, Y10, Y8, Y4
	VSHUFPS $0xee, Y10, Y8, Y5
	VSHUFPS $0x44, Y11, Y9, Y6
	VSHUFPS $0xee, Y11, Y9, Y7
	VSHUFPS $0x44, Y2, Y0, Y8
	VSHUFPS $0xee, Y2, Y0, Y9
	VSHUFPS $0x44, Y3, Y1, Y10
	VSHUFPS $0xee, Y3, Y1, Y11
	VPERM2F128 $0x20, Y8, Y4, Y0
	VPERM2F128 $0x20, Y9, Y5, Y1
	VPERM2F128 $0x20, Y10, Y6, Y2
	VPERM2F128 $0x20, Y11, Y7, Y3
	VPERM2F128 $0x31, Y8, Y4, Y4
	VPERM2F128 $0x31, Y9, Y5, Y5
	VPERM2F128 $0x31, Y10, Y6, Y6
	VPERM2F128 $0x31, Y11, Y7, Y7
	// Yi now holds element i of the chunk for the eight positions.
	VBROADCASTSS (BX), Y13
	VMULPS Y0, Y13, Y13
	VADDPS Y13, Y12, Y12
	VBROADCASTSS 4(BX), Y13
	VMULPS Y1, Y13, Y13
	VADDPS Y13, Y12, Y12
	VBROADCASTSS 8(BX), Y13
	VMULPS Y2, Y13, Y13
	VADDPS Y13, Y12, Y12
	VBROADCASTSS 12(BX), Y13
	VMULPS Y3, Y13, Y13
	VADDPS Y13, Y12, Y12
	VBROADCASTSS 16(BX), Y13
	VMULPS Y4, Y13, Y13
	VADDPS Y13, Y12, Y12
	VBROADCASTSS 20(BX), Y13
	VMULPS Y5, Y13, Y13
	VADDPS Y13, Y12, Y12
	VBROADCASTSS 24(BX), Y13
	VMULPS Y6, Y13, Y13
	VADDPS Y13, Y12, Y12
	VBROADCASTSS 28(BX), Y13
	VMULPS Y7, Y13, Y13
	VADDPS Y13, Y12, Y12
	ADDQ $32, AX
	ADDQ $32, BX
	DECQ R12
	JNZ scoreschunk
	VDIVPS Y14, Y12, Y12
	VMOVUPS Y12, (DX)
	ADDQ $32, DX
	LEAQ (SI)(R9*8), SI
	DECQ CX
	JNZ scoresblock
scoresdone:
	VZEROUPPER
	RET

// func attnValuesAVX2(att *float32, n int, vals *float32, stride int, hd int, out *float32)
// out[i] = Σ_t att[t]·v_t[i], summed from 0 in order t = 0, 1, ..., for i <
// hd (a multiple of 8), v_t starting stride bytes after v_{t-1}.
TEXT ·attnValuesAVX2(SB), NOSPLIT, $0-48
	MOVQ att+0(FP), R8
	MOVQ n+8(FP), CX
	MOVQ vals+16(FP), SI
	MOVQ stride+24(FP), R9
	MOVQ hd+32(FP), R10
	MOVQ out+40(FP), DX
	SHRQ $3, R10
	JZ valuesdone
valueschunk:
	VXORPS Y0, Y0, Y0
	MOVQ SI, AX
	MOVQ R8, BX
	MOVQ CX, R12
	TESTQ R12, R12
	JZ valuesstore
valuesloop:
	VBROADCASTSS (BX), Y1
	VMULPS (AX), Y1, Y1
	VADDPS Y1, Y0, Y0
	ADDQ $4, BX
	ADDQ R9, AX
	DECQ R12
	JNZ valuesloop
valuesstore:
	VMOVUPS Y0, (DX)
	ADDQ $32, DX
	ADDQ $32, SI
	DECQ R10
	JNZ valueschunk
valuesdone:
	VZEROUPPER
	RET

// func maxAVX2(x *float32, n int) float32
// The largest of x[0:n] (n ≥ 8, a multiple of 8). Equal values may come from
// another position than the scalar loop's first maximum, which can differ
// only in the sign of a zero; softmax uses the maximum only in v − max,
// where that makes no difference to exp.
TEXT ·maxAVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VMOVUPS (SI), Y0
	ADDQ $32, SI
	SHRQ $3, CX
	DECQ CX
	JZ maxred
maxloop:
	VMAXPS (SI), Y0, Y0
	ADDQ $32, SI
	DECQ CX
	JNZ maxloop
maxred:
	VEXTRACTF128 $1, Y0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0x4e, X0, X1
	VMAXPS X1, X0, X0
	VPERMILPS $0xb1, X0, X1
	VMAXPS X1, X0, X0
	VMOVSS X0, ret+16(FP)
	VZEROUPPER
	RET

// func divAVX2(x *float32, n int, d float32)
// x[i] /= d for i < n (a multiple of 8): the same IEEE division per element.
TEXT ·divAVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS d+16(FP), Y1
	SHRQ $3, CX
	JZ divdone
divloop:
	VMOVUPS (SI), Y0
	VDIVPS Y1, Y0, Y0
	VMOVUPS Y0, (SI)
	ADDQ $32, SI
	DECQ CX
	JNZ divloop
divdone:
	VZEROUPPER
	RET

DATA expconst<>+0(SB)/8, $1.4426950408889634073599246810018920
DATA expconst<>+8(SB)/8, $0.69314718055966295651160180568695068359375
DATA expconst<>+16(SB)/8, $0.28235290563031577122588448175013436025525412068e-12
DATA expconst<>+24(SB)/8, $0.0625
DATA expconst<>+32(SB)/8, $2.4801587301587301587e-5
DATA expconst<>+40(SB)/8, $1.9841269841269841270e-4
DATA expconst<>+48(SB)/8, $1.3888888888888888889e-3
DATA expconst<>+56(SB)/8, $8.3333333333333333333e-3
DATA expconst<>+64(SB)/8, $4.1666666666666666667e-2
DATA expconst<>+72(SB)/8, $1.6666666666666666667e-1
DATA expconst<>+80(SB)/8, $0.5
DATA expconst<>+88(SB)/8, $1.0
DATA expconst<>+96(SB)/8, $2.0
DATA expconst<>+104(SB)/8, $-104.0
GLOBL expconst<>(SB), RODATA|NOPTR, $112

#define EXPC(i) expconst<>+(8*i)(SB)

// func expAVX2(x *float32, n int, sub float32)
// x[i] = exp32(x[i] − sub) for i < n (a multiple of 4), where x[i] ≤ sub:
// exp32's operations four lanes at a time in float64 (inputs below −104 are
// raised to −104, whose exp32 is 0 as theirs is; NaN stays NaN).
TEXT ·expAVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS sub+16(FP), X15
	VBROADCASTSD EXPC(13), Y14 // -104
	VBROADCASTSD EXPC(12), Y13 // 2
	VBROADCASTSD EXPC(11), Y12 // 1
	MOVL $1023, AX
	VMOVD AX, X11
	VPBROADCASTD X11, X11
	SHRQ $2, CX
	JZ expdone
exploop:
	VMOVUPS (SI), X0
	VSUBPS X15, X0, X0
	VCVTPS2PD X0, Y0
	VMAXPD Y0, Y14, Y0          // max(-104, x), NaN kept
	VBROADCASTSD EXPC(0), Y1
	VMULPD Y0, Y1, Y1           // log2e·x
	VCVTPD2DQY Y1, X2           // k, rounded to nearest even
	VCVTDQ2PD X2, Y1            // kd
	VBROADCASTSD EXPC(1), Y3
	VMULPD Y1, Y3, Y3
	VSUBPD Y3, Y0, Y0           // r = x − kd·ln2u
	VBROADCASTSD EXPC(2), Y3
	VMULPD Y1, Y3, Y3
	VSUBPD Y3, Y0, Y0           // r −= kd·ln2l
	VBROADCASTSD EXPC(3), Y3
	VMULPD Y3, Y0, Y0           // r ·= 1/16
	VBROADCASTSD EXPC(4), Y4
	VMULPD Y0, Y4, Y4           // p = c8·r
	VADDPD EXPC(5), Y4, Y4
	VMULPD Y0, Y4, Y4
	VBROADCASTSD EXPC(6), Y3
	VADDPD Y3, Y4, Y4
	VMULPD Y0, Y4, Y4
	VBROADCASTSD EXPC(7), Y3
	VADDPD Y3, Y4, Y4
	VMULPD Y0, Y4, Y4
	VBROADCASTSD EXPC(8), Y3
	VADDPD Y3, Y4, Y4
	VMULPD Y0, Y4, Y4
	VBROADCASTSD EXPC(9), Y3
	VADDPD Y3, Y4, Y4
	VMULPD Y0, Y4, Y4
	VBROADCASTSD EXPC(10), Y3
	VADDPD Y3, Y4, Y4
	VMULPD Y0, Y4, Y4
	VADDPD Y12, Y4, Y4          // p + 1
	VMULPD Y4, Y0, Y0           // y = r·p
	VADDPD Y13, Y0, Y3
	VMULPD Y3, Y0, Y0           // y = y·(y+2), four times
	VADDPD Y13, Y0, Y3
	VMULPD Y3, Y0, Y0
	VADDPD Y13, Y0, Y3
	VMULPD Y3, Y0, Y0
	VADDPD Y13, Y0, Y3
	VMULPD Y3, Y0, Y0
	VADDPD Y12, Y0, Y0          // y + 1
	VPADDD X11, X2, X2          // k + 1023 (> 0 for x ≥ −104)
	VPMOVZXDQ X2, Y2
	VPSLLQ $52, Y2, Y2          // 2^k
	VMULPD Y2, Y0, Y0
	VCVTPD2PSY Y0, X0
	VMOVUPS X0, (SI)
	ADDQ $16, SI
	DECQ CX
	JNZ exploop
expdone:
	VZEROUPPER
	RET
