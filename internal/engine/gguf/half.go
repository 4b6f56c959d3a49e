package gguf

import "math"

// halfToFloat converts an IEEE 754 binary16 value to float32 exactly.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	man := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf, nan
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
	case man == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal: man * 2^-24, exact in float32.
	f := float32(man) * (1.0 / (1 << 24))
	if sign != 0 {
		f = -f
	}
	return f
}

// halfTable maps every binary16 bit pattern to its float32 value; a lookup is
// faster than the conversion in the F16 dot product.
var halfTable = func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for i := range t {
		t[i] = halfToFloat(uint16(i))
	}
	return &t
}()

// half reads the little-endian binary16 at b[0:2] as float32.
func half(b []byte) float32 {
	return halfTable[uint16(b[0])|uint16(b[1])<<8]
}

// bf16ToFloat converts a bfloat16 bit pattern to float32 exactly.
func bf16ToFloat(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}
