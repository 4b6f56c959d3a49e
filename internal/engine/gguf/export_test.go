package gguf

// SetSIMD switches the AVX2 kernels on or off (only on where the CPU has
// them) and returns the previous setting, for tests comparing the two.
func SetSIMD(on bool) (was bool) {
	was = useSIMD
	useSIMD = on && hasAVX2
	return was
}

// HasAVX2 reports whether the AVX2 kernels can run here.
func HasAVX2() bool { return hasAVX2 }

// ReadSum exposes readSum.
func ReadSum(b []byte) uint64 { return readSum(b) }

// QuantizeQ8_0 exposes quantizeQ8_0.
func QuantizeQ8_0(x []float32) ([]int8, []float32) {
	a := qAct{q: make([]int8, len(x)), d: make([]float32, len(x)/32)}
	quantizeQ8_0(x, a)
	return a.q, a.d
}
