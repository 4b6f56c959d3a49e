package gguf

import (
	"encoding/binary"
	"math"
	"unsafe"
)

// The row kernels below compute dot(row, x) for one weight row stored in a
// ggml format, with float32 activations. They never expand a row: each block
// is decoded into registers and folded into partial sums, and per-block scale
// factors are applied once per block or sub-block. Activations stay float32
// (no rounding to q8 unless the Pool rounds them first), so results equal
// dequantize-then-dot up to float32 summation order.
//
// Every product is wrapped in float32() so the compiler cannot fuse it with
// the following add into an FMA (Go does on arm64, and on amd64 with
// GOAMD64=v3). The results are then bit-identical on every host whatever its
// architecture and thread count, so a continuation computed on another host
// sees exactly the logits the first host would have.

// rowDot is a kernel computing the dot product of one encoded row with x,
// where len(x) is the row length.
type rowDot func(w []byte, x []float32) float32

// kernel returns the row kernel for t, or nil if t is unsupported.
func kernel(t Type) rowDot {
	switch t {
	case TypeF32:
		return dotF32Row
	case TypeF16:
		return dotF16Row
	case TypeBF16:
		return dotBF16Row
	case TypeQ4_0:
		return dotQ4_0
	case TypeQ4_1:
		return dotQ4_1
	case TypeQ5_0:
		return dotQ5_0
	case TypeQ5_1:
		return dotQ5_1
	case TypeQ8_0:
		return dotQ8_0
	case TypeQ8_1:
		return dotQ8_1
	case TypeQ2_K:
		return dotQ2K
	case TypeQ3_K:
		return dotQ3K
	case TypeQ4_K:
		return dotQ4K
	case TypeQ5_K:
		return dotQ5K
	case TypeQ6_K:
		return dotQ6K
	case TypeQ8_K:
		return dotQ8K
	}
	return nil
}

// Value tables: a table load is cheaper than an int-to-float conversion in
// the inner loops (measured: Q8_0 about 1.2× faster, Q4_0 about 1.3×).
var (
	i8Table = func() (t [256]float32) { // int8 bit pattern → value
		for i := range t {
			t[i] = float32(int8(i))
		}
		return t
	}()
	// q4Table[v] = v-8, the Q4_0 nibble value.
	q4Table = [16]float32{-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7}
	// q3Table[v] = v-4: Q3_K values, bit 2 being the hmask bit.
	q3Table = [8]float32{-4, -3, -2, -1, 0, 1, 2, 3}
	// u6Table[v] = v for 0 ≤ v < 64: unsigned K-quant values.
	u6Table = func() (t [64]float32) {
		for i := range t {
			t[i] = float32(i)
		}
		return t
	}()
	// s6Table[v] = v-32: Q6_K values.
	s6Table = func() (t [64]float32) {
		for i := range t {
			t[i] = float32(i - 32)
		}
		return t
	}()
	// s5Table[v] = v-16: Q5_0 values.
	s5Table = func() (t [32]float32) {
		for i := range t {
			t[i] = float32(i - 16)
		}
		return t
	}()
)

var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// Dot returns the dot product of a and b[:len(a)], summed in eight float32
// lanes (element i goes to lane i%8, the tail to lane 0), then
// ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)). The AVX2 kernel keeps the same lanes.
func Dot(a, b []float32) float32 {
	b = b[:len(a)]
	n8 := len(a) &^ 7
	if useSIMD && n8 > 0 {
		var acc [8]float32
		dotF32AVX2(&a[0], &b[0], n8, &acc)
		for i := n8; i < len(a); i++ {
			acc[0] += float32(a[i] * b[i])
		}
		return sum8(&acc)
	}
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i+8 <= len(a); i += 8 {
		aa := a[i : i+8 : i+8]
		bb := b[i : i+8 : i+8]
		s0 += float32(aa[0] * bb[0])
		s1 += float32(aa[1] * bb[1])
		s2 += float32(aa[2] * bb[2])
		s3 += float32(aa[3] * bb[3])
		s4 += float32(aa[4] * bb[4])
		s5 += float32(aa[5] * bb[5])
		s6 += float32(aa[6] * bb[6])
		s7 += float32(aa[7] * bb[7])
	}
	for ; i < len(a); i++ {
		s0 += float32(a[i] * b[i])
	}
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}

// asFloat32s views little-endian float32 bytes as []float32 when the host is
// little-endian and the bytes are 4-aligned (mapped tensor data always is).
func asFloat32s(w []byte) ([]float32, bool) {
	if !littleEndian || len(w) < 4 || uintptr(unsafe.Pointer(&w[0]))%4 != 0 {
		return nil, false
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&w[0])), len(w)/4), true
}

// asUint16s is asFloat32s for 16-bit values.
func asUint16s(w []byte) ([]uint16, bool) {
	if !littleEndian || len(w) < 2 || uintptr(unsafe.Pointer(&w[0]))%2 != 0 {
		return nil, false
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&w[0])), len(w)/2), true
}

func dotF32Row(w []byte, x []float32) float32 {
	if f, ok := asFloat32s(w); ok {
		return Dot(f[:len(x)], x)
	}
	var s float32
	for i := range x {
		s += float32(math.Float32frombits(binary.LittleEndian.Uint32(w[4*i:])) * x[i])
	}
	return s
}

func dotF16Row(w []byte, x []float32) float32 {
	h, ok := asUint16s(w)
	if !ok {
		var s float32
		for i := range x {
			s += float32(half(w[2*i:]) * x[i])
		}
		return s
	}
	h = h[:len(x)]
	n8 := len(x) &^ 7
	var acc [8]float32
	i := 0
	if useSIMD && n8 > 0 {
		dotF16AVX2(&h[0], &x[0], n8, &acc)
		i = n8
	} else {
		tab := halfTable
		var s0, s1, s2, s3, s4, s5, s6, s7 float32
		for ; i+8 <= len(x); i += 8 {
			hh := h[i : i+8 : i+8]
			xx := x[i : i+8 : i+8]
			s0 += float32(tab[hh[0]] * xx[0])
			s1 += float32(tab[hh[1]] * xx[1])
			s2 += float32(tab[hh[2]] * xx[2])
			s3 += float32(tab[hh[3]] * xx[3])
			s4 += float32(tab[hh[4]] * xx[4])
			s5 += float32(tab[hh[5]] * xx[5])
			s6 += float32(tab[hh[6]] * xx[6])
			s7 += float32(tab[hh[7]] * xx[7])
		}
		acc = [8]float32{s0, s1, s2, s3, s4, s5, s6, s7}
	}
	for ; i < len(x); i++ {
		acc[0] += float32(halfTable[h[i]] * x[i])
	}
	return sum8(&acc)
}

func dotBF16Row(w []byte, x []float32) float32 {
	h, ok := asUint16s(w)
	if !ok {
		var s float32
		for i := range x {
			s += float32(bf16ToFloat(binary.LittleEndian.Uint16(w[2*i:])) * x[i])
		}
		return s
	}
	h = h[:len(x)]
	n8 := len(x) &^ 7
	var acc [8]float32
	i := 0
	if useSIMD && n8 > 0 {
		dotBF16AVX2(&h[0], &x[0], n8, &acc)
		i = n8
	} else {
		var s0, s1, s2, s3, s4, s5, s6, s7 float32
		for ; i+8 <= len(x); i += 8 {
			hh := h[i : i+8 : i+8]
			xx := x[i : i+8 : i+8]
			s0 += float32(math.Float32frombits(uint32(hh[0])<<16) * xx[0])
			s1 += float32(math.Float32frombits(uint32(hh[1])<<16) * xx[1])
			s2 += float32(math.Float32frombits(uint32(hh[2])<<16) * xx[2])
			s3 += float32(math.Float32frombits(uint32(hh[3])<<16) * xx[3])
			s4 += float32(math.Float32frombits(uint32(hh[4])<<16) * xx[4])
			s5 += float32(math.Float32frombits(uint32(hh[5])<<16) * xx[5])
			s6 += float32(math.Float32frombits(uint32(hh[6])<<16) * xx[6])
			s7 += float32(math.Float32frombits(uint32(hh[7])<<16) * xx[7])
		}
		acc = [8]float32{s0, s1, s2, s3, s4, s5, s6, s7}
	}
	for ; i < len(x); i++ {
		acc[0] += float32(math.Float32frombits(uint32(h[i])<<16) * x[i])
	}
	return sum8(&acc)
}

func dotQ8_0(w []byte, x []float32) float32 {
	var sum float32
	tab := &i8Table
	for len(x) >= 32 {
		b := w[:34:34]
		xs := x[:32:32]
		q := b[2:34:34]
		var s0, s1, s2, s3 float32
		for j := 0; j < 32; j += 4 {
			qq := q[j : j+4 : j+4]
			xx := xs[j : j+4 : j+4]
			s0 += float32(tab[qq[0]] * xx[0])
			s1 += float32(tab[qq[1]] * xx[1])
			s2 += float32(tab[qq[2]] * xx[2])
			s3 += float32(tab[qq[3]] * xx[3])
		}
		sum += float32(half(b) * ((s0 + s1) + (s2 + s3)))
		w, x = w[34:], x[32:]
	}
	return sum
}

func dotQ8_1(w []byte, x []float32) float32 {
	var sum float32
	for len(x) >= 32 {
		b := w[:36:36]
		xs := x[:32:32]
		q := b[4:36:36]
		var s0, s1 float32
		for j := 0; j < 32; j += 2 {
			s0 += float32(float32(int8(q[j])) * xs[j])
			s1 += float32(float32(int8(q[j+1])) * xs[j+1])
		}
		sum += float32(half(b) * (s0 + s1))
		w, x = w[36:], x[32:]
	}
	return sum
}

func dotQ4_0(w []byte, x []float32) float32 {
	var sum float32
	tab := &q4Table
	for len(x) >= 32 {
		b := w[:18:18]
		xs := x[:32:32]
		q := b[2:18:18]
		var s0, s1, s2, s3 float32
		for j := 0; j < 16; j += 2 {
			q0, q1 := q[j], q[j+1]
			s0 += float32(tab[q0&0xf] * xs[j])
			s1 += float32(tab[q0>>4] * xs[j+16])
			s2 += float32(tab[q1&0xf] * xs[j+1])
			s3 += float32(tab[q1>>4] * xs[j+17])
		}
		sum += float32(half(b) * ((s0 + s1) + (s2 + s3)))
		w, x = w[18:], x[32:]
	}
	return sum
}

func dotQ4_1(w []byte, x []float32) float32 {
	var sum float32
	for len(x) >= 32 {
		b := w[:20:20]
		xs := x[:32:32]
		q := b[4:20:20]
		var s0, s1, sx float32
		for j := range 16 {
			s0 += float32(float32(q[j]&0xf) * xs[j])
			s1 += float32(float32(q[j]>>4) * xs[j+16])
			sx += xs[j] + xs[j+16]
		}
		sum += float32(half(b)*(s0+s1)) + float32(half(b[2:])*sx)
		w, x = w[20:], x[32:]
	}
	return sum
}

func dotQ5_0(w []byte, x []float32) float32 {
	var sum float32
	tab := &s5Table
	for len(x) >= 32 {
		b := w[:22:22]
		xs := x[:32:32]
		qh := binary.LittleEndian.Uint32(b[2:6])
		q := b[6:22:22]
		var s0, s1 float32
		for j := range 16 {
			h0 := byte(qh>>j<<4) & 0x10
			h1 := byte(qh>>(j+12)) & 0x10
			s0 += float32(tab[(q[j]&0xf|h0)&31] * xs[j])
			s1 += float32(tab[(q[j]>>4|h1)&31] * xs[j+16])
		}
		sum += float32(half(b) * (s0 + s1))
		w, x = w[22:], x[32:]
	}
	return sum
}

func dotQ5_1(w []byte, x []float32) float32 {
	var sum float32
	for len(x) >= 32 {
		b := w[:24:24]
		xs := x[:32:32]
		qh := binary.LittleEndian.Uint32(b[4:8])
		q := b[8:24:24]
		var s0, s1, sx float32
		for j := range 16 {
			h0 := byte(qh>>j<<4) & 0x10
			h1 := byte(qh>>(j+12)) & 0x10
			s0 += float32(float32(q[j]&0xf|h0) * xs[j])
			s1 += float32(float32(q[j]>>4|h1) * xs[j+16])
			sx += xs[j] + xs[j+16]
		}
		sum += float32(half(b)*(s0+s1)) + float32(half(b[2:])*sx)
		w, x = w[24:], x[32:]
	}
	return sum
}

func dotQ8K(w []byte, x []float32) float32 {
	var sum float32
	tab := &i8Table
	for len(x) >= qk {
		b := w[:292:292]
		d := math.Float32frombits(binary.LittleEndian.Uint32(b))
		q := b[4:260:260]
		xs := x[:qk:qk]
		var s0, s1, s2, s3 float32
		for j := 0; j < qk; j += 4 {
			qq := q[j : j+4 : j+4]
			xx := xs[j : j+4 : j+4]
			s0 += float32(tab[qq[0]] * xx[0])
			s1 += float32(tab[qq[1]] * xx[1])
			s2 += float32(tab[qq[2]] * xx[2])
			s3 += float32(tab[qq[3]] * xx[3])
		}
		sum += float32(d * ((s0 + s1) + (s2 + s3)))
		w, x = w[292:], x[qk:]
	}
	return sum
}

func dotQ2K(w []byte, x []float32) float32 {
	var sum float32
	for len(x) >= qk {
		b := w[:84:84]
		scales, q := b[0:16:16], b[16:80:80]
		d, dmin := half(b[80:]), half(b[82:])
		var sd, sm float32 // scale-weighted sums of q·x and of x
		is := 0
		for n := 0; n < 2; n++ {
			qq := q[32*n : 32*n+32 : 32*n+32]
			for shift := uint(0); shift < 8; shift += 2 {
				for h := range 2 {
					xs := x[:16:16]
					x = x[16:]
					sc := scales[is]
					is++
					var s, sx float32
					for l := range 16 {
						s += float32(float32((qq[l+16*h]>>shift)&3) * xs[l])
						sx += xs[l]
					}
					sd += float32(float32(sc&0xf) * s)
					sm += float32(float32(sc>>4) * sx)
				}
			}
		}
		sum += float32(d*sd) - float32(dmin*sm)
		w = w[84:]
	}
	return sum
}

func dotQ3K(w []byte, x []float32) float32 {
	var sum float32
	tab := &q3Table
	var sc [16]int8
	for len(x) >= qk {
		b := w[:110:110]
		hm, q := b[0:32:32], b[32:96:96]
		unpackQ3Scales(b[96:108], &sc)
		d := half(b[108:])
		var sd float32
		is := 0
		hb := uint(0)
		for n := 0; n < 2; n++ {
			qq := q[32*n : 32*n+32 : 32*n+32]
			for shift := uint(0); shift < 8; shift += 2 {
				for h := range 2 {
					xs := x[:16:16]
					x = x[16:]
					hh := hm[16*h : 16*h+16 : 16*h+16]
					qs := qq[16*h : 16*h+16 : 16*h+16]
					var s float32
					for l := range 16 {
						s += float32(tab[((qs[l]>>shift)&3|(hh[l]>>hb&1)<<2)&7] * xs[l])
					}
					sd += float32(float32(int(sc[is])-32) * s)
					is++
				}
				hb++
			}
		}
		sum += float32(d * sd)
		w = w[110:]
	}
	return sum
}

func dotQ4K(w []byte, x []float32) float32 {
	var sum float32
	tab := &u6Table
	for len(x) >= qk {
		b := w[:144:144]
		d, dmin := half(b), half(b[2:])
		scales, q := b[4:16:16], b[16:144:144]
		var sd, sm float32
		for is := 0; is < 8; is += 2 {
			qs := q[16*is : 16*is+32 : 16*is+32]
			xl := x[:32:32]
			xh := x[32:64:64]
			var s0, s1, s2, s3, x0, x1 float32
			for l := 0; l < 32; l += 2 {
				s0 += float32(tab[qs[l]&0xf] * xl[l])
				s1 += float32(tab[qs[l]>>4] * xh[l])
				s2 += float32(tab[qs[l+1]&0xf] * xl[l+1])
				s3 += float32(tab[qs[l+1]>>4] * xh[l+1])
				x0 += xl[l] + xl[l+1]
				x1 += xh[l] + xh[l+1]
			}
			sc1, m1 := scaleMinK4(is, scales)
			sc2, m2 := scaleMinK4(is+1, scales)
			sd += float32(float32(sc1)*(s0+s2)) + float32(float32(sc2)*(s1+s3))
			sm += float32(float32(m1)*x0) + float32(float32(m2)*x1)
			x = x[64:]
		}
		sum += float32(d*sd) - float32(dmin*sm)
		w = w[144:]
	}
	return sum
}

func dotQ5K(w []byte, x []float32) float32 {
	var sum float32
	tab := &u6Table
	for len(x) >= qk {
		b := w[:176:176]
		d, dmin := half(b), half(b[2:])
		scales, qh, ql := b[4:16:16], b[16:48:48], b[48:176:176]
		var sd, sm float32
		u := uint(0)
		for is := 0; is < 8; is += 2 {
			qs := ql[16*is : 16*is+32 : 16*is+32]
			xl := x[:32:32]
			xh := x[32:64:64]
			var s0, s1, x0, x1 float32
			for l := range 32 {
				h := qh[l] >> u
				s0 += float32(tab[(qs[l]&0xf|(h&1)<<4)&63] * xl[l])
				s1 += float32(tab[(qs[l]>>4|(h&2)<<3)&63] * xh[l])
				x0 += xl[l]
				x1 += xh[l]
			}
			sc1, m1 := scaleMinK4(is, scales)
			sc2, m2 := scaleMinK4(is+1, scales)
			sd += float32(float32(sc1)*s0) + float32(float32(sc2)*s1)
			sm += float32(float32(m1)*x0) + float32(float32(m2)*x1)
			x = x[64:]
			u += 2
		}
		sum += float32(d*sd) - float32(dmin*sm)
		w = w[176:]
	}
	return sum
}

func dotQ6K(w []byte, x []float32) float32 {
	var sum float32
	tab := &s6Table
	for len(x) >= qk {
		b := w[:210:210]
		d := half(b[208:])
		var sd float32
		for n := 0; n < 2; n++ {
			ql := b[64*n : 64*n+64 : 64*n+64]
			qh := b[128+32*n : 128+32*n+32 : 128+32*n+32]
			sc := b[192+8*n : 192+8*n+8 : 192+8*n+8]
			xs := x[:128:128]
			for is := range 2 {
				var s1, s2, s3, s4 float32
				for l := 16 * is; l < 16*is+16; l++ {
					h := qh[l]
					s1 += float32(tab[(ql[l]&0xf|(h&3)<<4)&63] * xs[l])
					s2 += float32(tab[(ql[l+32]&0xf|(h>>2&3)<<4)&63] * xs[l+32])
					s3 += float32(tab[(ql[l]>>4|(h>>4&3)<<4)&63] * xs[l+64])
					s4 += float32(tab[(ql[l+32]>>4|(h>>6&3)<<4)&63] * xs[l+96])
				}
				sd += float32(float32(int8(sc[is]))*s1) + float32(float32(int8(sc[is+2]))*s2) +
					float32(float32(int8(sc[is+4]))*s3) + float32(float32(int8(sc[is+6]))*s4)
			}
			x = x[128:]
		}
		sum += float32(d * sd)
		w = w[210:]
	}
	return sum
}
