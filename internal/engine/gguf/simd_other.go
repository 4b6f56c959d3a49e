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
