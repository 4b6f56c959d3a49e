//go:build amd64 && !purego

#include "textflag.h"

// Every kernel keeps one accumulator per lane and multiplies and adds in
// separate instructions (no FMA), so its bits equal the Go code's.

// func dotF32AVX2(a, b *float32, n int, acc *[8]float32)
TEXT ·dotF32AVX2(SB), NOSPLIT, $0-32
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DI
	MOVQ n+16(FP), CX
	MOVQ acc+24(FP), DX
	VMOVUPS (DX), Y0
	SHRQ $3, CX
	JZ f32done
f32loop:
	VMOVUPS (SI), Y1
	VMULPS (DI), Y1, Y1
	VADDPS Y1, Y0, Y0
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ f32loop
f32done:
	VMOVUPS Y0, (DX)
	VZEROUPPER
	RET

// func dotF16AVX2(h *uint16, x *float32, n int, acc *[8]float32)
TEXT ·dotF16AVX2(SB), NOSPLIT, $0-32
	MOVQ h+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ n+16(FP), CX
	MOVQ acc+24(FP), DX
	VMOVUPS (DX), Y0
	SHRQ $3, CX
	JZ f16done
f16loop:
	VCVTPH2PS (SI), Y1
	VMULPS (DI), Y1, Y1
	VADDPS Y1, Y0, Y0
	ADDQ $16, SI
	ADDQ $32, DI
	DECQ CX
	JNZ f16loop
f16done:
	VMOVUPS Y0, (DX)
	VZEROUPPER
	RET

// func dotBF16AVX2(h *uint16, x *float32, n int, acc *[8]float32)
TEXT ·dotBF16AVX2(SB), NOSPLIT, $0-32
	MOVQ h+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ n+16(FP), CX
	MOVQ acc+24(FP), DX
	VMOVUPS (DX), Y0
	SHRQ $3, CX
	JZ bf16done
bf16loop:
	VPMOVZXWD (SI), Y1
	VPSLLD $16, Y1, Y1
	VMULPS (DI), Y1, Y1
	VADDPS Y1, Y0, Y0
	ADDQ $16, SI
	ADDQ $32, DI
	DECQ CX
	JNZ bf16loop
bf16done:
	VMOVUPS Y0, (DX)
	VZEROUPPER
	RET

// func dotQ8_0AVX2(w *byte, xq *int8, xd *float32, nb int, acc *[8]float32)
TEXT ·dotQ8_0AVX2(SB), NOSPLIT, $0-40
	MOVQ w+0(FP), SI
	MOVQ xq+8(FP), DI
	MOVQ xd+16(FP), R8
	MOVQ nb+24(FP), CX
	MOVQ acc+32(FP), DX
	VMOVUPS (DX), Y0
	VPCMPEQW Y15, Y15, Y15
	VPSRLW $15, Y15, Y15 // int16 ones
	TESTQ CX, CX
	JZ q80done
q80loop:
	VMOVDQU 2(SI), Y1       // weight values
	VMOVDQU (DI), Y2        // activation values
	VPSIGNB Y1, Y1, Y3      // |w|
	VPSIGNB Y1, Y2, Y4      // x·sign(w)
	VPMADDUBSW Y4, Y3, Y5   // pairs, int16 (exact: |x| ≤ 127)
	VPMADDWD Y15, Y5, Y5    // quads, int32
	VCVTDQ2PS Y5, Y5
	MOVWLZX (SI), AX
	VMOVD AX, X6
	VCVTPH2PS X6, X6
	VMULSS (R8), X6, X6     // d = half(w.d)·x.d
	VBROADCASTSS X6, Y6
	VMULPS Y6, Y5, Y5
	VADDPS Y5, Y0, Y0
	ADDQ $34, SI
	ADDQ $32, DI
	ADDQ $4, R8
	DECQ CX
	JNZ q80loop
q80done:
	VMOVUPS Y0, (DX)
	VZEROUPPER
	RET

// func dotQ4_0AVX2(w *byte, xq *int8, xd *float32, nb int, acc *[8]float32)
TEXT ·dotQ4_0AVX2(SB), NOSPLIT, $0-40
	MOVQ w+0(FP), SI
	MOVQ xq+8(FP), DI
	MOVQ xd+16(FP), R8
	MOVQ nb+24(FP), CX
	MOVQ acc+32(FP), DX
	VMOVUPS (DX), Y0
	VPCMPEQW Y15, Y15, Y15
	VPSRLW $15, Y15, Y15 // int16 ones
	MOVL $0x0f0f0f0f, AX
	VMOVD AX, X14
	VPBROADCASTD X14, Y14 // low-nibble mask
	MOVL $0x08080808, AX
	VMOVD AX, X13
	VPBROADCASTD X13, Y13 // 8s
	TESTQ CX, CX
	JZ q40done
q40loop:
	VMOVDQU 2(SI), X1
	VPSRLW $4, X1, X2
	VINSERTI128 $1, X2, Y1, Y1
	VPAND Y14, Y1, Y1       // bytes 0-15 low nibbles, 16-31 high nibbles
	VPSUBB Y13, Y1, Y1      // values -8..7
	VMOVDQU (DI), Y2
	VPSIGNB Y1, Y1, Y3
	VPSIGNB Y1, Y2, Y4
	VPMADDUBSW Y4, Y3, Y5
	VPMADDWD Y15, Y5, Y5
	VCVTDQ2PS Y5, Y5
	MOVWLZX (SI), AX
	VMOVD AX, X6
	VCVTPH2PS X6, X6
	VMULSS (R8), X6, X6
	VBROADCASTSS X6, Y6
	VMULPS Y6, Y5, Y5
	VADDPS Y5, Y0, Y0
	ADDQ $18, SI
	ADDQ $32, DI
	ADDQ $4, R8
	DECQ CX
	JNZ q40loop
q40done:
	VMOVUPS Y0, (DX)
	VZEROUPPER
	RET

// func dotQ4KBlockAVX2(q *byte, x *int8, sc *[8]int16) int32
TEXT ·dotQ4KBlockAVX2(SB), NOSPLIT, $0-28
	MOVQ q+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ sc+16(FP), R8
	MOVL $0x0f0f0f0f, AX
	VMOVD AX, X14
	VPBROADCASTD X14, Y14
	VPXOR Y0, Y0, Y0
	MOVQ $4, CX
q4kloop:
	VMOVDQU (SI), Y1
	VPAND Y14, Y1, Y2       // low nibbles: sub-block 2i
	VPSRLW $4, Y1, Y3
	VPAND Y14, Y3, Y3       // high nibbles: sub-block 2i+1
	VPMADDUBSW (DI), Y2, Y4
	VPMADDUBSW 32(DI), Y3, Y5
	VPBROADCASTW (R8), Y6
	VPBROADCASTW 2(R8), Y7
	VPMADDWD Y6, Y4, Y4
	VPMADDWD Y7, Y5, Y5
	VPADDD Y4, Y0, Y0
	VPADDD Y5, Y0, Y0
	ADDQ $32, SI
	ADDQ $64, DI
	ADDQ $4, R8
	DECQ CX
	JNZ q4kloop
	VEXTRACTI128 $1, Y0, X1
	VPADDD X1, X0, X0
	VPSHUFD $0x4e, X0, X1
	VPADDD X1, X0, X0
	VPSHUFD $0xb1, X0, X1
	VPADDD X1, X0, X0
	VMOVD X0, AX
	MOVL AX, ret+24(FP)
	VZEROUPPER
	RET

// func readAVX2(p *byte, n int) uint64
// Adds n bytes (a multiple of 128) as uint64 lanes in four accumulators: a
// load stream limited by memory, not by arithmetic.
TEXT ·readAVX2(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	SHRQ $7, CX
	JZ readdone
readloop:
	VPADDQ (SI), Y0, Y0
	VPADDQ 32(SI), Y1, Y1
	VPADDQ 64(SI), Y2, Y2
	VPADDQ 96(SI), Y3, Y3
	ADDQ $128, SI
	DECQ CX
	JNZ readloop
readdone:
	VPADDQ Y1, Y0, Y0
	VPADDQ Y3, Y2, Y2
	VPADDQ Y2, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDQ X1, X0, X0
	VPSHUFD $0x4e, X0, X1
	VPADDQ X1, X0, X0
	VMOVQ X0, AX
	MOVQ AX, ret+16(FP)
	VZEROUPPER
	RET

// REDUCE8 leaves ((a0+a1)+(a2+a3))+((a4+a5)+(a6+a7)) of Y0 in X0 (sum8's
// order).
#define REDUCE8 \
	VHADDPS Y0, Y0, Y0 \
	VHADDPS Y0, Y0, Y0 \
	VEXTRACTF128 $1, Y0, X1 \
	VADDSS X1, X0, X0

// func dotF32RowsAVX2(w *float32, stride int, rows int, x *float32, n int, out *float32)
// out[r] = Dot(row r, x) for rows rows of n floats (n a multiple of 8) that
// start stride bytes apart.
TEXT ·dotF32RowsAVX2(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), SI
	MOVQ stride+8(FP), R9
	MOVQ rows+16(FP), R10
	MOVQ x+24(FP), R11
	MOVQ n+32(FP), R12
	MOVQ out+40(FP), DX
	SHRQ $3, R12
	TESTQ R10, R10
	JZ f32rdone
f32rrow:
	MOVQ SI, AX
	MOVQ R11, DI
	MOVQ R12, CX
	VXORPS Y0, Y0, Y0
	TESTQ CX, CX
	JZ f32rred
f32rloop:
	VMOVUPS (AX), Y1
	VMULPS (DI), Y1, Y1
	VADDPS Y1, Y0, Y0
	ADDQ $32, AX
	ADDQ $32, DI
	DECQ CX
	JNZ f32rloop
f32rred:
	REDUCE8
	VMOVSS X0, (DX)
	ADDQ $4, DX
	ADDQ R9, SI
	DECQ R10
	JNZ f32rrow
f32rdone:
	VZEROUPPER
	RET

// func dotQ8_0RowsAVX2(w *byte, stride int, rows int, xq *int8, xd *float32, nb int, out *float32)
// out[r] = dotQ8_0IntGo(row r, x) for rows rows of nb blocks, stride bytes
// apart.
TEXT ·dotQ8_0RowsAVX2(SB), NOSPLIT, $0-56
	MOVQ w+0(FP), SI
	MOVQ stride+8(FP), R9
	MOVQ rows+16(FP), R10
	MOVQ xq+24(FP), R11
	MOVQ xd+32(FP), R12
	MOVQ nb+40(FP), R13
	MOVQ out+48(FP), DX
	VPCMPEQW Y15, Y15, Y15
	VPSRLW $15, Y15, Y15
	TESTQ R10, R10
	JZ q8rdone
q8rrow:
	MOVQ SI, BX
	MOVQ R11, DI
	MOVQ R12, R8
	MOVQ R13, CX
	VXORPS Y0, Y0, Y0
	TESTQ CX, CX
	JZ q8rred
q8rloop:
	VMOVDQU 2(BX), Y1
	VMOVDQU (DI), Y2
	VPSIGNB Y1, Y1, Y3
	VPSIGNB Y1, Y2, Y4
	VPMADDUBSW Y4, Y3, Y5
	VPMADDWD Y15, Y5, Y5
	VCVTDQ2PS Y5, Y5
	MOVWLZX (BX), AX
	VMOVD AX, X6
	VCVTPH2PS X6, X6
	VMULSS (R8), X6, X6
	VBROADCASTSS X6, Y6
	VMULPS Y6, Y5, Y5
	VADDPS Y5, Y0, Y0
	ADDQ $34, BX
	ADDQ $32, DI
	ADDQ $4, R8
	DECQ CX
	JNZ q8rloop
q8rred:
	REDUCE8
	VMOVSS X0, (DX)
	ADDQ $4, DX
	ADDQ R9, SI
	DECQ R10
	JNZ q8rrow
q8rdone:
	VZEROUPPER
	RET

// func dotQ6KBlockAVX2(blk *byte, x *int8, sc *[16]int16) int32
// Σ sc·(stored·x) over one Q6_K super-block (dotQ6KBlockGo).
TEXT ·dotQ6KBlockAVX2(SB), NOSPLIT, $0-28
	MOVQ blk+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ sc+16(FP), R8
	MOVL $0x0f0f0f0f, AX
	VMOVD AX, X14
	VPBROADCASTD X14, Y14 // 0x0f
	MOVL $0x30303030, AX
	VMOVD AX, X13
	VPBROADCASTD X13, Y13 // 0x30
	VPXOR Y0, Y0, Y0
	LEAQ 128(SI), R9 // qh
	MOVQ $2, CX
q6kloop:
	VMOVDQU (SI), Y1    // ql[0:32]
	VMOVDQU 32(SI), Y2  // ql[32:64]
	VMOVDQU (R9), Y3    // qh[0:32]
	// q1 = ql0&15 | (qh&3)<<4
	VPAND Y14, Y1, Y4
	VPSLLW $4, Y3, Y5
	VPAND Y13, Y5, Y5
	VPOR Y5, Y4, Y4
	// q2 = ql1&15 | (qh>>2&3)<<4
	VPAND Y14, Y2, Y6
	VPSLLW $2, Y3, Y5
	VPAND Y13, Y5, Y5
	VPOR Y5, Y6, Y6
	// q3 = ql0>>4 | (qh>>4&3)<<4
	VPSRLW $4, Y1, Y7
	VPAND Y14, Y7, Y7
	VPAND Y13, Y3, Y5
	VPOR Y5, Y7, Y7
	// q4 = ql1>>4 | (qh>>6&3)<<4
	VPSRLW $4, Y2, Y8
	VPAND Y14, Y8, Y8
	VPSRLW $2, Y3, Y5
	VPAND Y13, Y5, Y5
	VPOR Y5, Y8, Y8
	// products with x, pairs in int16
	VPMADDUBSW (DI), Y4, Y4
	VPMADDUBSW 32(DI), Y6, Y6
	VPMADDUBSW 64(DI), Y7, Y7
	VPMADDUBSW 96(DI), Y8, Y8
	// scales: lanes 0-15 use sc[j], lanes 16-31 sc[j+1]
	VPBROADCASTW (R8), X9
	VPBROADCASTW 2(R8), X10
	VINSERTI128 $1, X10, Y9, Y9
	VPMADDWD Y9, Y4, Y4
	VPBROADCASTW 4(R8), X9
	VPBROADCASTW 6(R8), X10
	VINSERTI128 $1, X10, Y9, Y9
	VPMADDWD Y9, Y6, Y6
	VPBROADCASTW 8(R8), X9
	VPBROADCASTW 10(R8), X10
	VINSERTI128 $1, X10, Y9, Y9
	VPMADDWD Y9, Y7, Y7
	VPBROADCASTW 12(R8), X9
	VPBROADCASTW 14(R8), X10
	VINSERTI128 $1, X10, Y9, Y9
	VPMADDWD Y9, Y8, Y8
	VPADDD Y4, Y0, Y0
	VPADDD Y6, Y0, Y0
	VPADDD Y7, Y0, Y0
	VPADDD Y8, Y0, Y0
	ADDQ $64, SI
	ADDQ $32, R9
	ADDQ $128, DI
	ADDQ $16, R8
	DECQ CX
	JNZ q6kloop
	VEXTRACTI128 $1, Y0, X1
	VPADDD X1, X0, X0
	VPSHUFD $0x4e, X0, X1
	VPADDD X1, X0, X0
	VPSHUFD $0xb1, X0, X1
	VPADDD X1, X0, X0
	VMOVD X0, AX
	MOVL AX, ret+24(FP)
	VZEROUPPER
	RET

DATA q8perm<>+0(SB)/4, $0
DATA q8perm<>+4(SB)/4, $4
DATA q8perm<>+8(SB)/4, $1
DATA q8perm<>+12(SB)/4, $5
DATA q8perm<>+16(SB)/4, $2
DATA q8perm<>+20(SB)/4, $6
DATA q8perm<>+24(SB)/4, $3
DATA q8perm<>+28(SB)/4, $7
GLOBL q8perm<>(SB), RODATA|NOPTR, $32

// func quantizeQ8_0AVX2(x *float32, nb int, q *int8, d *float32)
// quantizeQ8_0 for nb blocks of 32: amax, d = binary16(amax/127) (vcvtps2ph
// rounds to nearest even, as floatToHalf), q = 0 if d is 0, else
// round-to-even(x·(127/amax)) (vcvtps2dq), the same float32 operations.
TEXT ·quantizeQ8_0AVX2(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), SI
	MOVQ nb+8(FP), CX
	MOVQ q+16(FP), DI
	MOVQ d+24(FP), DX
	MOVL $0x7fffffff, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15 // abs mask
	MOVL $0x42fe0000, AX  // 127.0
	VMOVD AX, X14
	VMOVDQU q8perm<>(SB), Y13
	VXORPS X12, X12, X12
	TESTQ CX, CX
	JZ qzdone
qzloop:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3
	VANDPS Y15, Y0, Y4
	VANDPS Y15, Y1, Y5
	VMAXPS Y5, Y4, Y4
	VANDPS Y15, Y2, Y5
	VANDPS Y15, Y3, Y6
	VMAXPS Y6, Y5, Y5
	VMAXPS Y5, Y4, Y4
	VEXTRACTF128 $1, Y4, X5
	VMAXPS X5, X4, X4
	VPERMILPS $0x4e, X4, X5
	VMAXPS X5, X4, X4
	VPERMILPS $0xb1, X4, X5
	VMAXPS X5, X4, X4     // amax in X4[0]
	VDIVSS X14, X4, X5    // amax/127
	VCVTPS2PH $0, X5, X5
	VCVTPH2PS X5, X5
	VMOVSS X5, (DX)
	VUCOMISS X12, X5      // d == 0: q = 0 (quantizeQ8_0)
	JEQ qzzero
	VDIVSS X4, X14, X5    // id = 127/amax
	VBROADCASTSS X5, Y5
	VMULPS Y5, Y0, Y0
	VMULPS Y5, Y1, Y1
	VMULPS Y5, Y2, Y2
	VMULPS Y5, Y3, Y3
	VCVTPS2DQ Y0, Y0
	VCVTPS2DQ Y1, Y1
	VCVTPS2DQ Y2, Y2
	VCVTPS2DQ Y3, Y3
	VPACKSSDW Y1, Y0, Y0
	VPACKSSDW Y3, Y2, Y2
	VPACKSSWB Y2, Y0, Y0
	VPERMD Y0, Y13, Y0
	VMOVDQU Y0, (DI)
	JMP qznext
qzzero:
	VPXOR Y0, Y0, Y0
	VMOVDQU Y0, (DI)
qznext:
	ADDQ $128, SI
	ADDQ $32, DI
	ADDQ $4, DX
	DECQ CX
	JNZ qzloop
qzdone:
	VZEROUPPER
	RET

DATA q4kmask<>+0(SB)/4, $0x01000100
DATA q4kmask<>+4(SB)/4, $0x01000100
DATA q4kmask<>+8(SB)/4, $0x01000100
DATA q4kmask<>+12(SB)/4, $0x01000100
DATA q4kmask<>+16(SB)/4, $0x03020302
DATA q4kmask<>+20(SB)/4, $0x03020302
DATA q4kmask<>+24(SB)/4, $0x03020302
DATA q4kmask<>+28(SB)/4, $0x03020302
DATA q4kmask<>+32(SB)/4, $0x05040504
DATA q4kmask<>+36(SB)/4, $0x05040504
DATA q4kmask<>+40(SB)/4, $0x05040504
DATA q4kmask<>+44(SB)/4, $0x05040504
DATA q4kmask<>+48(SB)/4, $0x07060706
DATA q4kmask<>+52(SB)/4, $0x07060706
DATA q4kmask<>+56(SB)/4, $0x07060706
DATA q4kmask<>+60(SB)/4, $0x07060706
DATA q4kmask<>+64(SB)/4, $0x09080908
DATA q4kmask<>+68(SB)/4, $0x09080908
DATA q4kmask<>+72(SB)/4, $0x09080908
DATA q4kmask<>+76(SB)/4, $0x09080908
DATA q4kmask<>+80(SB)/4, $0x0b0a0b0a
DATA q4kmask<>+84(SB)/4, $0x0b0a0b0a
DATA q4kmask<>+88(SB)/4, $0x0b0a0b0a
DATA q4kmask<>+92(SB)/4, $0x0b0a0b0a
DATA q4kmask<>+96(SB)/4, $0x0d0c0d0c
DATA q4kmask<>+100(SB)/4, $0x0d0c0d0c
DATA q4kmask<>+104(SB)/4, $0x0d0c0d0c
DATA q4kmask<>+108(SB)/4, $0x0d0c0d0c
DATA q4kmask<>+112(SB)/4, $0x0f0e0f0e
DATA q4kmask<>+116(SB)/4, $0x0f0e0f0e
DATA q4kmask<>+120(SB)/4, $0x0f0e0f0e
DATA q4kmask<>+124(SB)/4, $0x0f0e0f0e
GLOBL q4kmask<>(SB), RODATA|NOPTR, $128

// func dotQ4KRowsAVX2(w *byte, stride, rows int, xq *int8, xd *float32, sums *int16, nb int, out *float32)
// out[r] = dotQ4KInt(row r, x) for rows rows of nb super-blocks, stride bytes
// apart: the scales are unpacked with ggml's kmask trick, the integer sums
// are exact, and the float steps per super-block are dotQ4KInt's.
TEXT ·dotQ4KRowsAVX2(SB), NOSPLIT, $24-64
	MOVQ w+0(FP), AX
	MOVQ AX, 0(SP)           // current row
	MOVQ rows+16(FP), AX
	MOVQ AX, 8(SP)           // rows left
	MOVQ out+56(FP), AX
	MOVQ AX, 16(SP)          // output
	MOVL $0x0f0f0f0f, AX
	VMOVD AX, X14
	VPBROADCASTD X14, Y14
	CMPQ 8(SP), $0
	JEQ q4rdone
q4rrow:
	MOVQ 0(SP), BX
	MOVQ xq+24(FP), DI
	MOVQ xd+32(FP), DX
	MOVQ sums+40(FP), SI
	MOVQ nb+48(FP), CX
	VXORPS X15, X15, X15     // row sum
	TESTQ CX, CX
	JZ q4rstore
q4rblock:
	// scales sc0-7 → X12 (words), mins m0-7 → X13 (words)
	MOVL 4(BX), R8
	MOVL 8(BX), R9
	MOVL 12(BX), R10
	MOVL R10, R11
	SHRL $4, R11
	ANDL $0x0f0f0f0f, R11
	MOVL R9, R12
	SHRL $6, R12
	ANDL $0x03030303, R12
	SHLL $4, R12
	ORL R12, R11             // m4-7
	MOVL R9, R12
	ANDL $0x3f3f3f3f, R12    // m0-3
	ANDL $0x0f0f0f0f, R10
	MOVL R8, R13
	SHRL $6, R13
	ANDL $0x03030303, R13
	SHLL $4, R13
	ORL R13, R10             // sc4-7
	ANDL $0x3f3f3f3f, R8     // sc0-3
	VMOVD R8, X12
	VPINSRD $1, R10, X12, X12
	VPMOVZXBW X12, X12
	VMOVD R12, X13
	VPINSRD $1, R11, X13, X13
	VPMOVZXBW X13, X13
	// msum = Σ m_j·(sums[2j]+sums[2j+1])
	VMOVDQU (SI), X1
	VMOVDQU 16(SI), X2
	VPHADDW X2, X1, X1
	VPMADDWD X13, X1, X1
	VPSHUFD $0x4e, X1, X2
	VPADDD X2, X1, X1
	VPSHUFD $0xb1, X1, X2
	VPADDD X2, X1, X1
	VMOVD X1, R9             // msum
	// isum = Σ sc_j·(q_j·x_j)
	ADDQ $16, BX
	VPXOR Y0, Y0, Y0
	VMOVDQU 0(BX), Y1
	VPAND Y14, Y1, Y2
	VPSRLW $4, Y1, Y3
	VPAND Y14, Y3, Y3
	VPMADDUBSW 0(DI), Y2, Y4
	VPMADDUBSW 32(DI), Y3, Y5
	VPSHUFB q4kmask<>+0(SB), X12, X6
	VINSERTI128 $1, X6, Y6, Y6
	VPSHUFB q4kmask<>+16(SB), X12, X7
	VINSERTI128 $1, X7, Y7, Y7
	VPMADDWD Y6, Y4, Y4
	VPMADDWD Y7, Y5, Y5
	VPADDD Y4, Y0, Y0
	VPADDD Y5, Y0, Y0
	VMOVDQU 32(BX), Y1
	VPAND Y14, Y1, Y2
	VPSRLW $4, Y1, Y3
	VPAND Y14, Y3, Y3
	VPMADDUBSW 64(DI), Y2, Y4
	VPMADDUBSW 96(DI), Y3, Y5
	VPSHUFB q4kmask<>+32(SB), X12, X6
	VINSERTI128 $1, X6, Y6, Y6
	VPSHUFB q4kmask<>+48(SB), X12, X7
	VINSERTI128 $1, X7, Y7, Y7
	VPMADDWD Y6, Y4, Y4
	VPMADDWD Y7, Y5, Y5
	VPADDD Y4, Y0, Y0
	VPADDD Y5, Y0, Y0
	VMOVDQU 64(BX), Y1
	VPAND Y14, Y1, Y2
	VPSRLW $4, Y1, Y3
	VPAND Y14, Y3, Y3
	VPMADDUBSW 128(DI), Y2, Y4
	VPMADDUBSW 160(DI), Y3, Y5
	VPSHUFB q4kmask<>+64(SB), X12, X6
	VINSERTI128 $1, X6, Y6, Y6
	VPSHUFB q4kmask<>+80(SB), X12, X7
	VINSERTI128 $1, X7, Y7, Y7
	VPMADDWD Y6, Y4, Y4
	VPMADDWD Y7, Y5, Y5
	VPADDD Y4, Y0, Y0
	VPADDD Y5, Y0, Y0
	VMOVDQU 96(BX), Y1
	VPAND Y14, Y1, Y2
	VPSRLW $4, Y1, Y3
	VPAND Y14, Y3, Y3
	VPMADDUBSW 192(DI), Y2, Y4
	VPMADDUBSW 224(DI), Y3, Y5
	VPSHUFB q4kmask<>+96(SB), X12, X6
	VINSERTI128 $1, X6, Y6, Y6
	VPSHUFB q4kmask<>+112(SB), X12, X7
	VINSERTI128 $1, X7, Y7, Y7
	VPMADDWD Y6, Y4, Y4
	VPMADDWD Y7, Y5, Y5
	VPADDD Y4, Y0, Y0
	VPADDD Y5, Y0, Y0
	SUBQ $16, BX
	VEXTRACTI128 $1, Y0, X1
	VPADDD X1, X0, X0
	VPSHUFD $0x4e, X0, X1
	VPADDD X1, X0, X0
	VPSHUFD $0xb1, X0, X1
	VPADDD X1, X0, X0
	VMOVD X0, R8             // isum
	// sum += float32(dd·float32(isum)) − float32(dm·float32(msum))
	MOVWLZX (BX), AX
	VMOVD AX, X8
	VCVTPH2PS X8, X8
	VMULSS (DX), X8, X8      // dd
	MOVWLZX 2(BX), AX
	VMOVD AX, X9
	VCVTPH2PS X9, X9
	VMULSS (DX), X9, X9      // dm
	VCVTSI2SSL R8, X10, X10
	VMULSS X10, X8, X8
	VCVTSI2SSL R9, X11, X11
	VMULSS X11, X9, X9
	VSUBSS X9, X8, X8
	VADDSS X8, X15, X15
	ADDQ $144, BX
	ADDQ $256, DI
	ADDQ $4, DX
	ADDQ $32, SI
	DECQ CX
	JNZ q4rblock
q4rstore:
	MOVQ 16(SP), AX
	VMOVSS X15, (AX)
	ADDQ $4, AX
	MOVQ AX, 16(SP)
	MOVQ 0(SP), AX
	ADDQ stride+8(FP), AX
	MOVQ AX, 0(SP)
	DECQ 8(SP)
	JNZ q4rrow
q4rdone:
	VZEROUPPER
	RET

// func dotQ6KRowsAVX2(w *byte, stride, rows int, xq *int8, xd *float32, sums *int16, nb int, out *float32)
// out[r] = dotQ6KInt(row r, x) for rows rows of nb super-blocks, stride bytes
// apart (same integer sums, same float steps).
TEXT ·dotQ6KRowsAVX2(SB), NOSPLIT, $24-64
	MOVQ w+0(FP), AX
	MOVQ AX, 0(SP)
	MOVQ rows+16(FP), AX
	MOVQ AX, 8(SP)
	MOVQ out+56(FP), AX
	MOVQ AX, 16(SP)
	MOVL $0x0f0f0f0f, AX
	VMOVD AX, X14
	VPBROADCASTD X14, Y14
	MOVL $0x30303030, AX
	VMOVD AX, X13
	VPBROADCASTD X13, Y13
	CMPQ 8(SP), $0
	JEQ q6rdone
q6rrow:
	MOVQ 0(SP), BX
	MOVQ xq+24(FP), DI
	MOVQ xd+32(FP), DX
	MOVQ sums+40(FP), SI
	MOVQ nb+48(FP), CX
	VXORPS X11, X11, X11     // row sum
	TESTQ CX, CX
	JZ q6rstore
q6rblock:
	VPMOVSXBW 192(BX), X12   // sc0-7
	VPMOVSXBW 200(BX), X15   // sc8-15
	// corr = Σ sc_j·sums[j]
	VPMADDWD (SI), X12, X1
	VPMADDWD 16(SI), X15, X2
	VPADDD X2, X1, X1
	VPSHUFD $0x4e, X1, X2
	VPADDD X2, X1, X1
	VPSHUFD $0xb1, X1, X2
	VPADDD X2, X1, X1
	VMOVD X1, R9
	VPXOR Y0, Y0, Y0
	VMOVDQU 0(BX), Y1       // ql[0:32]
	VMOVDQU 32(BX), Y2    // ql[32:64]
	VMOVDQU 128(BX), Y3   // qh
	VPAND Y14, Y1, Y4
	VPSLLW $4, Y3, Y5
	VPAND Y13, Y5, Y5
	VPOR Y5, Y4, Y4          // q1
	VPAND Y14, Y2, Y6
	VPSLLW $2, Y3, Y5
	VPAND Y13, Y5, Y5
	VPOR Y5, Y6, Y6          // q2
	VPSRLW $4, Y1, Y7
	VPAND Y14, Y7, Y7
	VPAND Y13, Y3, Y5
	VPOR Y5, Y7, Y7          // q3
	VPSRLW $4, Y2, Y8
	VPAND Y14, Y8, Y8
	VPSRLW $2, Y3, Y5
	VPAND Y13, Y5, Y5
	VPOR Y5, Y8, Y8          // q4
	VPMADDUBSW 0(DI), Y4, Y4
	VPMADDUBSW 32(DI), Y6, Y6
	VPMADDUBSW 64(DI), Y7, Y7
	VPMADDUBSW 96(DI), Y8, Y8
	VPSHUFB q4kmask<>+0(SB), X12, X9
	VPSHUFB q4kmask<>+16(SB), X12, X10
	VINSERTI128 $1, X10, Y9, Y9
	VPMADDWD Y9, Y4, Y4
	VPSHUFB q4kmask<>+32(SB), X12, X9
	VPSHUFB q4kmask<>+48(SB), X12, X10
	VINSERTI128 $1, X10, Y9, Y9
	VPMADDWD Y9, Y6, Y6
	VPSHUFB q4kmask<>+64(SB), X12, X9
	VPSHUFB q4kmask<>+80(SB), X12, X10
	VINSERTI128 $1, X10, Y9, Y9
	VPMADDWD Y9, Y7, Y7
	VPSHUFB q4kmask<>+96(SB), X12, X9
	VPSHUFB q4kmask<>+112(SB), X12, X10
	VINSERTI128 $1, X10, Y9, Y9
	VPMADDWD Y9, Y8, Y8
	VPADDD Y4, Y0, Y0
	VPADDD Y6, Y0, Y0
	VPADDD Y7, Y0, Y0
	VPADDD Y8, Y0, Y0
	VMOVDQU 64(BX), Y1       // ql[0:32]
	VMOVDQU 96(BX), Y2    // ql[32:64]
	VMOVDQU 160(BX), Y3   // qh
	VPAND Y14, Y1, Y4
	VPSLLW $4, Y3, Y5
	VPAND Y13, Y5, Y5
	VPOR Y5, Y4, Y4          // q1
	VPAND Y14, Y2, Y6
	VPSLLW $2, Y3, Y5
	VPAND Y13, Y5, Y5
	VPOR Y5, Y6, Y6          // q2
	VPSRLW $4, Y1, Y7
	VPAND Y14, Y7, Y7
	VPAND Y13, Y3, Y5
	VPOR Y5, Y7, Y7          // q3
	VPSRLW $4, Y2, Y8
	VPAND Y14, Y8, Y8
	VPSRLW $2, Y3, Y5
	VPAND Y13, Y5, Y5
	VPOR Y5, Y8, Y8          // q4
	VPMADDUBSW 128(DI), Y4, Y4
	VPMADDUBSW 160(DI), Y6, Y6
	VPMADDUBSW 192(DI), Y7, Y7
	VPMADDUBSW 224(DI), Y8, Y8
	VPSHUFB q4kmask<>+0(SB), X15, X9
	VPSHUFB q4kmask<>+16(SB), X15, X10
	VINSERTI128 $1, X10, Y9, Y9
	VPMADDWD Y9, Y4, Y4
	VPSHUFB q4kmask<>+32(SB), X15, X9
	VPSHUFB q4kmask<>+48(SB), X15, X10
	VINSERTI128 $1, X10, Y9, Y9
	VPMADDWD Y9, Y6, Y6
	VPSHUFB q4kmask<>+64(SB), X15, X9
	VPSHUFB q4kmask<>+80(SB), X15, X10
	VINSERTI128 $1, X10, Y9, Y9
	VPMADDWD Y9, Y7, Y7
	VPSHUFB q4kmask<>+96(SB), X15, X9
	VPSHUFB q4kmask<>+112(SB), X15, X10
	VINSERTI128 $1, X10, Y9, Y9
	VPMADDWD Y9, Y8, Y8
	VPADDD Y4, Y0, Y0
	VPADDD Y6, Y0, Y0
	VPADDD Y7, Y0, Y0
	VPADDD Y8, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDD X1, X0, X0
	VPSHUFD $0x4e, X0, X1
	VPADDD X1, X0, X0
	VPSHUFD $0xb1, X0, X1
	VPADDD X1, X0, X0
	VMOVD X0, R8
	SHLL $5, R9
	SUBL R9, R8              // isum −= 32·corr
	MOVWLZX 208(BX), AX
	VMOVD AX, X8
	VCVTPH2PS X8, X8
	VMULSS (DX), X8, X8
	VCVTSI2SSL R8, X10, X10
	VMULSS X10, X8, X8
	VADDSS X8, X11, X11
	ADDQ $210, BX
	ADDQ $256, DI
	ADDQ $4, DX
	ADDQ $32, SI
	DECQ CX
	JNZ q6rblock
q6rstore:
	MOVQ 16(SP), AX
	VMOVSS X11, (AX)
	ADDQ $4, AX
	MOVQ AX, 16(SP)
	MOVQ 0(SP), AX
	ADDQ stride+8(FP), AX
	MOVQ AX, 0(SP)
	DECQ 8(SP)
	JNZ q6rrow
q6rdone:
	VZEROUPPER
	RET
