package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Dequantize decodes len(dst) elements of type t from src into dst. len(dst)
// must be a multiple of the type's block size and src must hold at least the
// bytes for that many elements. The results are bit-identical to ggml's
// reference dequantizers (dequantize_row_*, ggml_fp16_to_fp32_row,
// ggml_bf16_to_fp32_row).
func Dequantize(t Type, src []byte, dst []float32) error {
	if !t.Supported() {
		return fmt.Errorf("gguf: dequantize %s: unsupported type", t)
	}
	need, err := RowBytes(t, len(dst))
	if err != nil {
		return fmt.Errorf("gguf: dequantize %d %s elements: not a multiple of the block size %d", len(dst), t, t.BlockSize())
	}
	if len(src) < need {
		return fmt.Errorf("gguf: dequantize %d %s elements: have %d bytes, need %d", len(dst), t, len(src), need)
	}
	src = src[:need]
	switch t {
	case TypeF32:
		if f, ok := asFloat32s(src); ok {
			copy(dst, f)
			return nil
		}
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
		return nil
	case TypeF16:
		tab := halfTable
		for i := range dst {
			dst[i] = tab[binary.LittleEndian.Uint16(src[2*i:])]
		}
		return nil
	case TypeBF16:
		for i := range dst {
			dst[i] = bf16ToFloat(binary.LittleEndian.Uint16(src[2*i:]))
		}
		return nil
	}
	block := blockDecoder(t)
	bs, bb := t.BlockSize(), t.BlockBytes()
	for i := 0; i < len(dst)/bs; i++ {
		block(src[i*bb:(i+1)*bb], dst[i*bs:(i+1)*bs])
	}
	return nil
}

// blockDecoder returns the function decoding one block of a quantized type.
// Products are wrapped in float32() so the compiler cannot fuse them into
// FMAs, which ggml's reference dequantizers do not use.
func blockDecoder(t Type) func(b []byte, y []float32) {
	switch t {
	case TypeQ4_0:
		return dequantQ4_0
	case TypeQ4_1:
		return dequantQ4_1
	case TypeQ5_0:
		return dequantQ5_0
	case TypeQ5_1:
		return dequantQ5_1
	case TypeQ8_0:
		return dequantQ8_0
	case TypeQ8_1:
		return dequantQ8_1
	case TypeQ8_K:
		return dequantQ8K
	case TypeQ2_K:
		return dequantQ2K
	case TypeQ3_K:
		return dequantQ3K
	case TypeQ4_K:
		return dequantQ4K
	case TypeQ5_K:
		return dequantQ5K
	case TypeQ6_K:
		return dequantQ6K
	}
	panic("gguf: no block decoder for " + t.String())
}

func dequantQ4_0(b []byte, y []float32) {
	d := half(b)
	qs := b[2:18]
	y = y[:32]
	for j := range 16 {
		y[j] = float32(int(qs[j]&0xf)-8) * d
		y[j+16] = float32(int(qs[j]>>4)-8) * d
	}
}

func dequantQ4_1(b []byte, y []float32) {
	d, m := half(b), half(b[2:])
	qs := b[4:20]
	y = y[:32]
	for j := range 16 {
		y[j] = float32(float32(qs[j]&0xf)*d) + m
		y[j+16] = float32(float32(qs[j]>>4)*d) + m
	}
}

func dequantQ5_0(b []byte, y []float32) {
	d := half(b)
	qh := binary.LittleEndian.Uint32(b[2:])
	qs := b[6:22]
	y = y[:32]
	for j := range 16 {
		h0 := byte((qh>>j)<<4) & 0x10
		h1 := byte(qh>>(j+12)) & 0x10
		y[j] = float32(int(qs[j]&0xf|h0)-16) * d
		y[j+16] = float32(int(qs[j]>>4|h1)-16) * d
	}
}

func dequantQ5_1(b []byte, y []float32) {
	d, m := half(b), half(b[2:])
	qh := binary.LittleEndian.Uint32(b[4:])
	qs := b[8:24]
	y = y[:32]
	for j := range 16 {
		h0 := byte((qh>>j)<<4) & 0x10
		h1 := byte(qh>>(j+12)) & 0x10
		y[j] = float32(float32(qs[j]&0xf|h0)*d) + m
		y[j+16] = float32(float32(qs[j]>>4|h1)*d) + m
	}
}

func dequantQ8_0(b []byte, y []float32) {
	d := half(b)
	y = y[:32]
	for j, q := range b[2:34] {
		y[j] = float32(int8(q)) * d
	}
}

func dequantQ8_1(b []byte, y []float32) {
	d := half(b)
	y = y[:32]
	for j, q := range b[4:36] {
		y[j] = float32(int8(q)) * d
	}
}

func dequantQ8K(b []byte, y []float32) {
	d := math.Float32frombits(binary.LittleEndian.Uint32(b))
	y = y[:qk]
	for j, q := range b[4:260] {
		y[j] = d * float32(int8(q))
	}
}

// Q2_K: scales[16] (low nibble scale, high nibble min), qs[64], d, dmin.
func dequantQ2K(b []byte, y []float32) {
	scales, q := b[0:16], b[16:80]
	d, dmin := half(b[80:]), half(b[82:])
	is := 0
	for n := 0; n < qk; n += 128 {
		shift := uint(0)
		for range 4 {
			for half := range 2 {
				sc := scales[is]
				is++
				dl, ml := d*float32(sc&0xf), dmin*float32(sc>>4)
				for l := range 16 {
					y[0] = float32(dl*float32((q[l+16*half]>>shift)&3)) - ml
					y = y[1:]
				}
			}
			shift += 2
		}
		q = q[32:]
	}
}

// Q3_K: hmask[32], qs[64], scales[12] (sixteen 6-bit scales), d.
func dequantQ3K(b []byte, y []float32) {
	hm, q := b[0:32], b[32:96]
	var sc [16]int8
	unpackQ3Scales(b[96:108], &sc)
	d := half(b[108:])
	is := 0
	hb := uint(0) // bit of hmask holding the high bit
	for n := 0; n < qk; n += 128 {
		for shift := uint(0); shift < 8; shift += 2 {
			for h := range 2 {
				dl := d * float32(int(sc[is])-32)
				is++
				// v = low two bits, minus 4 unless the hmask bit is set.
				for l := range 16 {
					v := int((q[l+16*h]>>shift)&3|(hm[l+16*h]>>hb&1)<<2) - 4
					y[l] = dl * float32(v)
				}
				y = y[16:]
			}
			hb++
		}
		q = q[32:]
	}
}

// unpackQ3Scales decodes the sixteen 6-bit Q3_K scales (stored biased by 32).
func unpackQ3Scales(s []byte, sc *[16]int8) {
	const kmask1, kmask2 = 0x03030303, 0x0f0f0f0f
	a0 := binary.LittleEndian.Uint32(s[0:])
	a1 := binary.LittleEndian.Uint32(s[4:])
	tmp := binary.LittleEndian.Uint32(s[8:])
	aux := [4]uint32{
		(a0 & kmask2) | ((tmp>>0)&kmask1)<<4,
		(a1 & kmask2) | ((tmp>>2)&kmask1)<<4,
		((a0 >> 4) & kmask2) | ((tmp>>4)&kmask1)<<4,
		((a1 >> 4) & kmask2) | ((tmp>>6)&kmask1)<<4,
	}
	for i, a := range aux {
		sc[4*i+0] = int8(a)
		sc[4*i+1] = int8(a >> 8)
		sc[4*i+2] = int8(a >> 16)
		sc[4*i+3] = int8(a >> 24)
	}
}

// scaleMinK4 decodes scale and min j of the 12-byte Q4_K/Q5_K scale block.
func scaleMinK4(j int, q []byte) (sc, m byte) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0xf | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

// Q4_K: d, dmin, scales[12], qs[128].
func dequantQ4K(b []byte, y []float32) {
	d, dmin := half(b), half(b[2:])
	scales, q := b[4:16], b[16:144]
	for is := 0; is < 8; is += 2 {
		sc, m := scaleMinK4(is, scales)
		d1, m1 := d*float32(sc), dmin*float32(m)
		sc, m = scaleMinK4(is+1, scales)
		d2, m2 := d*float32(sc), dmin*float32(m)
		for l := range 32 {
			y[l] = float32(d1*float32(q[l]&0xf)) - m1
			y[l+32] = float32(d2*float32(q[l]>>4)) - m2
		}
		y, q = y[64:], q[32:]
	}
}

// Q5_K: d, dmin, scales[12], qh[32], qs[128].
func dequantQ5K(b []byte, y []float32) {
	d, dmin := half(b), half(b[2:])
	scales, qh, ql := b[4:16], b[16:48], b[48:176]
	u := uint(0) // bit of qh holding the fifth bit of the low nibbles
	for is := 0; is < 8; is += 2 {
		sc, m := scaleMinK4(is, scales)
		d1, m1 := d*float32(sc), dmin*float32(m)
		sc, m = scaleMinK4(is+1, scales)
		d2, m2 := d*float32(sc), dmin*float32(m)
		for l := range 32 {
			h := qh[l] >> u
			v1, v2 := ql[l]&0xf|(h&1)<<4, ql[l]>>4|(h&2)<<3
			y[l] = float32(d1*float32(v1)) - m1
			y[l+32] = float32(d2*float32(v2)) - m2
		}
		y, ql = y[64:], ql[32:]
		u += 2
	}
}

// Q6_K: ql[128], qh[64], scales[16] (int8), d.
func dequantQ6K(b []byte, y []float32) {
	ql, qh, sc := b[0:128], b[128:192], b[192:208]
	d := half(b[208:])
	for n := 0; n < qk; n += 128 {
		for l := range 32 {
			is := l / 16
			q1 := int(ql[l]&0xf|(qh[l]>>0&3)<<4) - 32
			q2 := int(ql[l+32]&0xf|(qh[l]>>2&3)<<4) - 32
			q3 := int(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
			q4 := int(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
			y[l] = d * float32(int8(sc[is])) * float32(q1)
			y[l+32] = d * float32(int8(sc[is+2])) * float32(q2)
			y[l+64] = d * float32(int8(sc[is+4])) * float32(q3)
			y[l+96] = d * float32(int8(sc[is+6])) * float32(q4)
		}
		y, ql, qh, sc = y[128:], ql[64:], qh[32:], sc[8:]
	}
}
