package gguf

// useSIMD selects the AVX2 kernels where the CPU has them. They give the
// same bits as the Go kernels (no fused multiply-add, same lane order), so
// the choice changes speed only. Tests switch it off to compare the two.
var useSIMD = hasAVX2

// SIMD reports which kernels this process uses: "avx2" or "go".
func SIMD() string {
	if useSIMD {
		return "avx2"
	}
	return "go"
}
