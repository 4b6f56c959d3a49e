//go:build !amd64 || purego

package gguf

// hasAVX2 is false: this build has no assembly kernels.
const hasAVX2 = false

func dotF32AVX2(a, b *float32, n int, acc *[8]float32)                    { panic("gguf: no AVX2") }
func dotF16AVX2(h *uint16, x *float32, n int, acc *[8]float32)            { panic("gguf: no AVX2") }
func dotBF16AVX2(h *uint16, x *float32, n int, acc *[8]float32)           { panic("gguf: no AVX2") }
func dotQ8_0AVX2(w *byte, xq *int8, xd *float32, nb int, acc *[8]float32) { panic("gguf: no AVX2") }
func dotQ4_0AVX2(w *byte, xq *int8, xd *float32, nb int, acc *[8]float32) { panic("gguf: no AVX2") }
func dotQ4KBlockAVX2(q *byte, x *int8, sc *[8]int16) int32                { panic("gguf: no AVX2") }

func readAVX2(p *byte, n int) uint64 { panic("gguf: no AVX2") }

func dotF32RowsAVX2(w *float32, stride, rows int, x *float32, n int, out *float32) {
	panic("gguf: no AVX2")
}

func dotQ8_0RowsAVX2(w *byte, stride, rows int, xq *int8, xd *float32, nb int, out *float32) {
	panic("gguf: no AVX2")
}

func dotQ6KBlockAVX2(blk *byte, x *int8, sc *[16]int16) int32 { panic("gguf: no AVX2") }

func quantizeQ8_0AVX2(x *float32, nb int, q *int8, d *float32) { panic("gguf: no AVX2") }

func dotQ4KRowsAVX2(w *byte, stride, rows int, xq *int8, xd *float32, sums *int16, nb int, out *float32) {
	panic("gguf: no AVX2")
}

func dotQ6KRowsAVX2(w *byte, stride, rows int, xq *int8, xd *float32, sums *int16, nb int, out *float32) {
	panic("gguf: no AVX2")
}
