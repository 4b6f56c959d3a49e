package gguf

import (
	"fmt"
	"math"
)

// DotType returns the type ggml's CPU backend converts activations to before
// a dot product with weights of type t (its vec_dot_type): F16 for F16, BF16
// for BF16, Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1/Q8_1, Q8_K for the
// K-quants, and F32 (no rounding) otherwise.
func DotType(t Type) Type {
	switch t {
	case TypeF16, TypeBF16:
		return t
	case TypeQ4_0, TypeQ5_0, TypeQ8_0:
		return TypeQ8_0
	case TypeQ4_1, TypeQ5_1, TypeQ8_1:
		return TypeQ8_1
	case TypeQ2_K, TypeQ3_K, TypeQ4_K, TypeQ5_K, TypeQ6_K, TypeQ8_K:
		return TypeQ8_K
	}
	return TypeF32
}

// RoundActivations writes to dst the values x takes when llama.cpp's CPU
// backend (x86, AVX2) rounds it to DotType(t) before multiplying it with
// weights of type t: binary16 or bfloat16 rounding to nearest even, or q8
// blocks (Q8_0/Q8_1: scale amax/127 stored as binary16, values rounded to
// nearest even; Q8_K: quantize_row_q8_K_ref, float32 scale). Multiplying the
// rounded vector in float32 then reproduces llama.cpp's products up to
// summation order, which brings logits much closer to llama.cpp's than exact
// float activations do. (For Q4_1/Q5_1, llama.cpp also rounds each Q8_1
// block's sum to binary16 for the min term; that detail is not reproduced.)
// len(x) must be a multiple of DotType(t)'s block size and len(dst) at least
// len(x); dst may be x.
func RoundActivations(t Type, x, dst []float32) error {
	dt := DotType(t)
	if len(x)%dt.BlockSize() != 0 || len(dst) < len(x) {
		return fmt.Errorf("gguf: round %d activations for %s: not a multiple of the %s block size %d, or %d outputs", len(x), t, dt, dt.BlockSize(), len(dst))
	}
	dst = dst[:len(x)]
	switch dt {
	case TypeF32:
		copy(dst, x)
	case TypeF16:
		for i, v := range x {
			dst[i] = halfToFloat(floatToHalf(v))
		}
	case TypeBF16:
		for i, v := range x {
			dst[i] = bf16ToFloat(floatToBF16(v))
		}
	case TypeQ8_0, TypeQ8_1:
		for i := 0; i < len(x); i += 32 {
			roundQ8_0(x[i:i+32], dst[i:i+32])
		}
	case TypeQ8_K:
		for i := 0; i < len(x); i += qk {
			roundQ8K(x[i:i+qk], dst[i:i+qk])
		}
	}
	return nil
}

// roundQ8_0 follows ggml's AVX2 quantize_row_q8_0: d = amax/127 (stored as
// binary16), q = round-to-even(x·127/amax).
func roundQ8_0(x, y []float32) {
	var amax float32
	for _, v := range x {
		amax = max(amax, float32(math.Abs(float64(v))))
	}
	d := halfToFloat(floatToHalf(amax / 127))
	if d == 0 {
		// amax/127 is below binary16's range: llama.cpp stores d = 0, so
		// the block is 0 (and 127/amax may be +Inf, which would give NaN).
		clear(y)
		return
	}
	id := 127 / amax
	for j, v := range x {
		y[j] = float32(math.RoundToEven(float64(v*id))) * d
	}
}

// roundQ8K follows quantize_row_q8_K_ref: iscale = -127/max where max is the
// first element of largest magnitude, q = min(127, round-to-even(iscale·x)),
// d = 1/iscale.
func roundQ8K(x, y []float32) {
	var amax, mx float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); a > amax {
			amax, mx = a, v
		}
	}
	if amax == 0 {
		clear(y)
		return
	}
	iscale := -127 / mx
	d := 1 / iscale
	for j, v := range x {
		q := min(math.RoundToEven(float64(iscale*v)), 127)
		y[j] = d * float32(q)
	}
}

// floatToHalf converts float32 to binary16, rounding to nearest even (as the
// F16C instruction vcvtps2ph does); NaN stays NaN, overflow gives infinity.
func floatToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	if b&0x7fffffff > 0x7f800000 {
		return sign | 0x7e00
	}
	exp := int(b>>23&0xff) - 127 + 15
	man := b & 0x7fffff
	if exp >= 0x1f {
		return sign | 0x7c00
	}
	if exp <= 0 {
		// Subnormal half: round (1.man × 2^(exp-15)) to a multiple of 2^-24.
		shift := uint(14 - exp)
		if shift > 24 {
			return sign
		}
		m := man | 0x800000
		r := m >> shift
		rem, halfway := m&(1<<shift-1), uint32(1)<<(shift-1)
		if rem > halfway || (rem == halfway && r&1 == 1) {
			r++
		}
		return sign | uint16(r)
	}
	h := uint32(exp)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // a carry into the exponent is correct, up to infinity
	}
	return sign | uint16(h)
}

// floatToBF16 converts float32 to bfloat16, rounding to nearest even, as
// ggml's GGML_FP32_TO_BF16 does (NaN becomes a quiet NaN).
func floatToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 64
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}
