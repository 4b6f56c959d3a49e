package gguf

import (
	"math"
	"testing"
)

// TestHalfRoundTrip checks both conversions on every binary16 value and on
// the midpoints between neighbours, which must round to the even one.
func TestHalfRoundTrip(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		f := halfToFloat(h)
		if f != f {
			if g := floatToHalf(f); g&0x7c00 != 0x7c00 || g&0x3ff == 0 {
				t.Fatalf("NaN %#04x → %#04x", h, g)
			}
			continue
		}
		if g := floatToHalf(f); g != h && !(f == 0 && g&0x7fff == 0) {
			t.Fatalf("%#04x → %v → %#04x", h, f, g)
		}
		if h&0x7fff >= 0x7bff { // largest finite and beyond: no finite neighbour
			continue
		}
		next := halfToFloat(h + 1)
		mid := float32((float64(f) + float64(next)) / 2) // exact in float32
		want := h
		if h&1 == 1 {
			want = h + 1
		}
		if g := floatToHalf(mid); g != want {
			t.Fatalf("midpoint of %#04x and %#04x (%v) → %#04x, want %#04x", h, h+1, mid, g, want)
		}
		above := math.Nextafter32(mid, float32(math.Copysign(math.Inf(1), float64(f))))
		if g := floatToHalf(above); g != h+1 {
			t.Fatalf("just past midpoint of %#04x: %#04x", h, g)
		}
	}
	if floatToHalf(65520) != 0x7c00 || floatToHalf(65519) != 0x7bff || floatToHalf(float32(math.Inf(-1))) != 0xfc00 {
		t.Error("overflow to infinity is wrong")
	}
	if floatToHalf(math.Float32frombits(0x33000000)) != 0 || floatToHalf(math.Float32frombits(0x33000001)) != 1 {
		t.Error("rounding at half the smallest subnormal is wrong")
	}
}

func TestBF16Rounding(t *testing.T) {
	cases := []struct {
		in   uint32
		want uint16
	}{
		{0x3f800000, 0x3f80},
		{0x3f808000, 0x3f80}, // tie, even stays
		{0x3f818000, 0x3f82}, // tie, odd rounds up
		{0x3f808001, 0x3f81},
		{0x7f7fffff, 0x7f80}, // rounds to infinity
		{0x7fc00001, 0x7fc0},
		{0x7f800001, 0x7fc0}, // signalling NaN becomes quiet
	}
	for _, c := range cases {
		if got := floatToBF16(math.Float32frombits(c.in)); got != c.want {
			t.Errorf("%#08x → %#04x, want %#04x", c.in, got, c.want)
		}
	}
}
