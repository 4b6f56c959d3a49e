//go:build amd64 && !purego

package gguf

import "golang.org/x/sys/cpu"

// hasAVX2 says whether this CPU and OS run the AVX2 kernels of
// simd_amd64.s (AVX2 and F16C; FMA is required too although the kernels do
// not fuse, so every result stays bit-identical to the Go code).
var hasAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C

// dotF32AVX2 adds a[i]·b[i] for i < n (a multiple of 8) into acc[i%8]:
// multiply, round to float32, add, exactly as the Go loop does per lane.
//
//go:noescape
func dotF32AVX2(a, b *float32, n int, acc *[8]float32)

// dotF16AVX2 is dotF32AVX2 with binary16 weights h.
//
//go:noescape
func dotF16AVX2(h *uint16, x *float32, n int, acc *[8]float32)

// dotBF16AVX2 is dotF32AVX2 with bfloat16 weights h.
//
//go:noescape
func dotBF16AVX2(h *uint16, x *float32, n int, acc *[8]float32)

// dotQ8_0AVX2 is dotQ8_0IntGo over nb blocks.
//
//go:noescape
func dotQ8_0AVX2(w *byte, xq *int8, xd *float32, nb int, acc *[8]float32)

// dotQ4_0AVX2 is dotQ4_0IntGo over nb blocks.
//
//go:noescape
func dotQ4_0AVX2(w *byte, xq *int8, xd *float32, nb int, acc *[8]float32)

// dotQ4KBlockAVX2 is dotQ4KBlockGo for the 128 quant bytes at q.
//
//go:noescape
func dotQ4KBlockAVX2(q *byte, x *int8, sc *[8]int16) int32

// readAVX2 sums n bytes at p (n a multiple of 128) as uint64 lanes.
//
//go:noescape
func readAVX2(p *byte, n int) uint64

// dotF32RowsAVX2 sets out[r] = Dot(row r, x) for rows rows of n float32
// (n a multiple of 8) stride bytes apart.
//
//go:noescape
func dotF32RowsAVX2(w *float32, stride, rows int, x *float32, n int, out *float32)

// dotQ8_0RowsAVX2 sets out[r] = dotQ8_0IntGo(row r, x) for rows rows of nb
// blocks stride bytes apart.
//
//go:noescape
func dotQ8_0RowsAVX2(w *byte, stride, rows int, xq *int8, xd *float32, nb int, out *float32)

// dotQ6KBlockAVX2 is dotQ6KBlockGo for the Q6_K super-block at blk.
//
//go:noescape
func dotQ6KBlockAVX2(blk *byte, x *int8, sc *[16]int16) int32

// quantizeQ8_0AVX2 is quantizeQ8_0 for nb blocks of 32.
//
//go:noescape
func quantizeQ8_0AVX2(x *float32, nb int, q *int8, d *float32)

// dotQ4KRowsAVX2 sets out[r] = dotQ4KInt(row r, x) for rows rows of nb
// super-blocks stride bytes apart (sums: Σq per 16 activations).
//
//go:noescape
func dotQ4KRowsAVX2(w *byte, stride, rows int, xq *int8, xd *float32, sums *int16, nb int, out *float32)

// dotQ6KRowsAVX2 sets out[r] = dotQ6KInt(row r, x) for rows rows of nb
// super-blocks stride bytes apart.
//
//go:noescape
func dotQ6KRowsAVX2(w *byte, stride, rows int, xq *int8, xd *float32, sums *int16, nb int, out *float32)
