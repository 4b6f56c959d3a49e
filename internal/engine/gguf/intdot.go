package gguf

import (
	"encoding/binary"
	"math"
)

// Integer activation paths. With rounding on (Pool.SetRoundActivations), the
// activations of a Q8_0, Q4_0, Q4_K or Q6_K product are quantized to int8 once per
// call, exactly as RoundActivations rounds them (q8 blocks of 32 for Q8_0 and
// Q4_0, Q8_K blocks of 256 for Q4_K and Q6_K), and each weight block is multiplied
// with integer arithmetic, as llama.cpp's CPU backend does. The integer sums
// are exact; the float operations that follow are fixed in order (eight
// lanes for the 32-blocks, one scalar per super-block for Q4_K), so the Go
// code below and the AVX2 kernels (simd_amd64.s) give the same bits.

// qAct is a vector quantized to int8 for the integer kernels.
type qAct struct {
	q    []int8    // values, clamped to [-127, 127]
	d    []float32 // one scale per block (32 or 256 values)
	sums []int16   // Σq per 16 values (Q8_K only)
}

// intKernel is a row kernel over quantized activations; xq covers one row.
type intKernel func(w []byte, x qAct) float32

// intKernelFor returns the integer kernel for weights of type t and the
// block size of its activations, or nil when t has none.
func intKernelFor(t Type) (intKernel, int) {
	switch t {
	case TypeQ8_0:
		return dotQ8_0Int, 32
	case TypeQ4_0:
		return dotQ4_0Int, 32
	case TypeQ4_K:
		return dotQ4KInt, qk
	case TypeQ6_K:
		return dotQ6KInt, qk
	}
	return nil, 0
}

// quantizeQ8_0 quantizes x (a multiple of 32 long) as roundQ8_0 rounds it:
// d = binary16(amax/127), q = round-to-even(x·127/amax), and q = 0 where d
// rounds to 0.
func quantizeQ8_0(x []float32, a qAct) {
	if useSIMD && len(x) >= 32 {
		quantizeQ8_0AVX2(&x[0], len(x)/32, &a.q[0], &a.d[0])
		return
	}
	for b := range len(x) / 32 {
		xs := x[32*b : 32*b+32 : 32*b+32]
		q := a.q[32*b : 32*b+32 : 32*b+32]
		var amax float32
		for _, v := range xs {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := halfToFloat(floatToHalf(amax / 127))
		a.d[b] = d
		if d == 0 {
			// All |x| < 2^-24·127: the block's products are 0 whatever q is
			// (and 127/amax may be +Inf).
			clear(q)
			continue
		}
		id := 127 / amax
		for j, v := range xs {
			q[j] = int8(max(-127, min(127, math.RoundToEven(float64(v*id)))))
		}
	}
}

// quantizeQ8K quantizes x (a multiple of 256 long) as roundQ8K rounds it and
// records the sum of each 16 values.
func quantizeQ8K(x []float32, a qAct) {
	for b := range len(x) / qk {
		xs := x[qk*b : qk*b+qk : qk*b+qk]
		q := a.q[qk*b : qk*b+qk : qk*b+qk]
		var amax, mx float32
		for _, v := range xs {
			if av := float32(math.Abs(float64(v))); av > amax {
				amax, mx = av, v
			}
		}
		if amax == 0 {
			clear(q)
			a.d[b] = 0
		} else {
			iscale := -127 / mx
			a.d[b] = 1 / iscale
			for j, v := range xs {
				q[j] = int8(max(-127, min(127, math.RoundToEven(float64(iscale*v)))))
			}
		}
		for j := range qk / 16 {
			var s int16
			for _, v := range q[16*j : 16*j+16] {
				s += int16(v)
			}
			a.sums[qk/16*b+j] = s
		}
	}
}

// sum8 adds eight lanes in the order the AVX2 kernels do.
func sum8(a *[8]float32) float32 {
	return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))
}

func dotQ8_0Int(w []byte, x qAct) float32 {
	if useSIMD && len(x.d) > 0 {
		var acc [8]float32
		dotQ8_0AVX2(&w[0], &x.q[0], &x.d[0], len(x.d), &acc)
		return sum8(&acc)
	}
	return dotQ8_0IntGo(w, x)
}

func dotQ8_0IntGo(w []byte, x qAct) float32 {
	var acc [8]float32
	for b, xd := range x.d {
		blk := w[34*b : 34*b+34 : 34*b+34]
		d := half(blk) * xd
		q := blk[2:34:34]
		xq := x.q[32*b : 32*b+32 : 32*b+32]
		for l := range 8 {
			p := int32(int8(q[4*l]))*int32(xq[4*l]) + int32(int8(q[4*l+1]))*int32(xq[4*l+1]) +
				int32(int8(q[4*l+2]))*int32(xq[4*l+2]) + int32(int8(q[4*l+3]))*int32(xq[4*l+3])
			acc[l] += float32(d * float32(p))
		}
	}
	return sum8(&acc)
}

func dotQ4_0Int(w []byte, x qAct) float32 {
	if useSIMD && len(x.d) > 0 {
		var acc [8]float32
		dotQ4_0AVX2(&w[0], &x.q[0], &x.d[0], len(x.d), &acc)
		return sum8(&acc)
	}
	return dotQ4_0IntGo(w, x)
}

func dotQ4_0IntGo(w []byte, x qAct) float32 {
	var acc [8]float32
	var v [32]int32
	for b, xd := range x.d {
		blk := w[18*b : 18*b+18 : 18*b+18]
		d := half(blk) * xd
		q := blk[2:18:18]
		for j, c := range q {
			v[j] = int32(c&0xf) - 8
			v[j+16] = int32(c>>4) - 8
		}
		xq := x.q[32*b : 32*b+32 : 32*b+32]
		for l := range 8 {
			p := v[4*l]*int32(xq[4*l]) + v[4*l+1]*int32(xq[4*l+1]) +
				v[4*l+2]*int32(xq[4*l+2]) + v[4*l+3]*int32(xq[4*l+3])
			acc[l] += float32(d * float32(p))
		}
	}
	return sum8(&acc)
}

// dotQ4KInt follows ggml's vec_dot_q4_K_q8_K: per super-block the integer
// sums Σ sc·(q·x) and Σ m·Σx, then d·dx·isum − dmin·dx·msum.
func dotQ4KInt(w []byte, x qAct) float32 {
	var sum float32
	var sc [8]int16
	for b, xd := range x.d {
		blk := w[144*b : 144*b+144 : 144*b+144]
		// The 6-bit scales and mins, unpacked four at a time (ggml's
		// kmask trick): sc0-3, sc4-7, m0-3, m4-7 in the bytes of u0-u3.
		u0 := binary.LittleEndian.Uint32(blk[4:])
		u1 := binary.LittleEndian.Uint32(blk[8:])
		u2 := binary.LittleEndian.Uint32(blk[12:])
		u3 := (u2>>4)&0x0f0f0f0f | (u1>>6)&0x03030303<<4
		m03 := u1 & 0x3f3f3f3f
		u1 = u2&0x0f0f0f0f | (u0>>6)&0x03030303<<4
		u0 &= 0x3f3f3f3f
		sums := x.sums[16*b : 16*b+16 : 16*b+16]
		var msum int32
		for j := range 4 {
			sc[j] = int16(u0 >> (8 * j) & 0xff)
			sc[j+4] = int16(u1 >> (8 * j) & 0xff)
			msum += int32(m03>>(8*j)&0xff)*(int32(sums[2*j])+int32(sums[2*j+1])) +
				int32(u3>>(8*j)&0xff)*(int32(sums[2*j+8])+int32(sums[2*j+9]))
		}
		var isum int32
		if useSIMD {
			isum = dotQ4KBlockAVX2(&blk[16], &x.q[qk*b], &sc)
		} else {
			isum = dotQ4KBlockGo(blk[16:144:144], x.q[qk*b:qk*b+qk:qk*b+qk], &sc)
		}
		dd := float32(half(blk) * xd)
		dm := float32(half(blk[2:]) * xd)
		sum += float32(dd*float32(isum)) - float32(dm*float32(msum))
	}
	return sum
}

// dotQ4KBlockGo returns Σ_j sc[j]·(q_j·x_j) over one Q4_K super-block's
// eight sub-blocks of 32.
func dotQ4KBlockGo(q []byte, x []int8, sc *[8]int16) int32 {
	var isum int32
	for i := range 4 {
		qs := q[32*i : 32*i+32 : 32*i+32]
		xl := x[64*i : 64*i+32 : 64*i+32]
		xh := x[64*i+32 : 64*i+64 : 64*i+64]
		var lo, hi int32
		for l, c := range qs {
			lo += int32(c&0xf) * int32(xl[l])
			hi += int32(c>>4) * int32(xh[l])
		}
		isum += int32(sc[2*i])*lo + int32(sc[2*i+1])*hi
	}
	return isum
}

// dotQ6KInt follows ggml's vec_dot_q6_K_q8_K: per super-block the integer
// sum Σ sc·(q·x) over 16 sub-blocks of 16 (q = stored value − 32, computed as
// Σ sc·(stored·x) − 32·Σ sc·Σx), then d·dx·isum.
func dotQ6KInt(w []byte, x qAct) float32 {
	var sum float32
	var sc [16]int16
	for b, xd := range x.d {
		blk := w[210*b : 210*b+210 : 210*b+210]
		var corr int32
		for j := range 16 {
			sc[j] = int16(int8(blk[192+j]))
		}
		// Sub-block j of the stored scales covers elements 16·order[j]...
		for n := range 2 {
			for is := range 2 {
				for k := range 4 {
					j := 8*n + is + 2*k
					corr += int32(sc[j]) * int32(x.sums[16*b+8*n+2*k+is])
				}
			}
		}
		var isum int32
		if useSIMD {
			isum = dotQ6KBlockAVX2(&blk[0], &x.q[qk*b], &sc)
		} else {
			isum = dotQ6KBlockGo(blk, x.q[qk*b:qk*b+qk:qk*b+qk], &sc)
		}
		isum -= 32 * corr
		sum += float32(float32(half(blk[208:])*xd) * float32(isum))
	}
	return sum
}

// dotQ6KBlockGo returns Σ sc·(stored·x) over one Q6_K super-block, stored
// being the unsigned 6-bit values (0..63).
func dotQ6KBlockGo(blk []byte, x []int8, sc *[16]int16) int32 {
	var isum int32
	for n := range 2 {
		ql := blk[64*n : 64*n+64 : 64*n+64]
		qh := blk[128+32*n : 128+32*n+32 : 128+32*n+32]
		xs := x[128*n : 128*n+128 : 128*n+128]
		for is := range 2 {
			var s1, s2, s3, s4 int32
			for l := 16 * is; l < 16*is+16; l++ {
				h := qh[l]
				s1 += int32(ql[l]&0xf|(h&3)<<4) * int32(xs[l])
				s2 += int32(ql[l+32]&0xf|(h>>2&3)<<4) * int32(xs[l+32])
				s3 += int32(ql[l]>>4|(h>>4&3)<<4) * int32(xs[l+64])
				s4 += int32(ql[l+32]>>4|(h>>6&3)<<4) * int32(xs[l+96])
			}
			isum += int32(sc[8*n+is])*s1 + int32(sc[8*n+is+2])*s2 + int32(sc[8*n+is+4])*s3 + int32(sc[8*n+is+6])*s4
		}
	}
	return isum
}
