package llama

import "math"

// exp32 returns e^x rounded to float32 (softmax, where x ≤ 0, and SiLU). It is
// the argument reduction and Taylor series of Go's math.Exp on amd64
// (Shibata's method, the variant without fused multiply-adds) written out
// in Go with every product rounded separately, so it gives the same bits on
// every host (math.Exp itself differs in rare last bits between amd64 with
// and without FMA and arm64), and expAVX2 computes it four lanes at a time
// with the same operations. Below −104, e^x is under half the smallest
// float32 and the result is 0; above 89 it is +Inf (e^88.73 overflows
// float32); NaN stays NaN. Compared once with float32(math.Exp) on every
// float32 in [−104, 89] on the development machine: identical.
func exp32(x float32) float32 {
	if !(x <= 89 && x >= -104) {
		switch {
		case x < -104:
			return 0
		case x > 89:
			return float32(math.Inf(1))
		}
		return x // NaN
	}
	const (
		log2e = 1.4426950408889634073599246810018920
		ln2u  = 0.69314718055966295651160180568695068359375
		ln2l  = 0.28235290563031577122588448175013436025525412068e-12
	)
	xd := float64(x)
	kd := math.RoundToEven(float64(log2e * xd))
	r := xd - float64(kd*ln2u)
	r = r - float64(kd*ln2l)
	r = float64(r * 0.0625)
	p := float64(2.4801587301587301587e-5 * r)
	p = float64((p + 1.9841269841269841270e-4) * r)
	p = float64((p + 1.3888888888888888889e-3) * r)
	p = float64((p + 8.3333333333333333333e-3) * r)
	p = float64((p + 4.1666666666666666667e-2) * r)
	p = float64((p + 1.6666666666666666667e-1) * r)
	p = float64((p + 0.5) * r)
	p = p + 1.0
	y := float64(r * p)
	y = float64(y * (y + 2))
	y = float64(y * (y + 2))
	y = float64(y * (y + 2))
	y = float64(y * (y + 2))
	y = y + 1
	return float32(y * math.Float64frombits(uint64(int64(kd)+1023)<<52))
}
