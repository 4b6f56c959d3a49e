//go:build !amd64 || purego

package llama

// attnSIMD is false: this build has no assembly attention kernels.
var attnSIMD = false

func attnScoresAVX2(q *float32, keys *float32, stride, hd, n int, scale float32, att *float32) {
	panic("llama: no AVX2")
}

func attnValuesAVX2(att *float32, n int, vals *float32, stride, hd int, out *float32) {
	panic("llama: no AVX2")
}

func maxAVX2(x *float32, n int) float32 { panic("llama: no AVX2") }

func divAVX2(x *float32, n int, d float32) { panic("llama: no AVX2") }

func expAVX2(x *float32, n int, sub float32) { panic("llama: no AVX2") }
