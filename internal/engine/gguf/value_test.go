package gguf_test

import (
	"math"
	"reflect"
	"testing"

	"github.com/peerllm/peerllm/internal/engine/gguf"
)

// valueFile parses a file holding the given key-value pairs and no tensors.
func valueFile(t *testing.T, kvs ...kvEnc) *gguf.File {
	t.Helper()
	f, err := gguf.Parse(fileSpec{version: 3, kvs: kvs}.bytes())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestValueConversions(t *testing.T) {
	f := valueFile(t,
		kvEnc{"u8s", 9, func(e *enc) { e.u32(0); e.u64(3); e.u8(1); e.u8(2); e.u8(255) }},
		kvEnc{"u32s.big", 9, func(e *enc) { e.u32(4); e.u64(1); e.u32(1 << 31) }},
		kvEnc{"i64s", 9, func(e *enc) { e.u32(11); e.u64(2); e.u64(math.MaxUint64); e.u64(5) }},
		kvEnc{"f64s", 9, func(e *enc) { e.u32(12); e.u64(2); e.u64(math.Float64bits(0.25)); e.u64(math.Float64bits(-8)) }},
		kvEnc{"bools", 9, func(e *enc) { e.u32(7); e.u64(2); e.u8(1); e.u8(0) }},
		kvEnc{"u64.max", 10, func(e *enc) { e.u64(math.MaxUint64) }},
		kvEnc{"f32", 6, func(e *enc) { e.f32(1e-5) }},
	)
	if got, ok := f.Int32s("u8s"); !ok || !reflect.DeepEqual(got, []int32{1, 2, 255}) {
		t.Errorf("Int32s(u8s) = %v, %v", got, ok)
	}
	if got, ok := f.Float32s("u8s"); !ok || !reflect.DeepEqual(got, []float32{1, 2, 255}) {
		t.Errorf("Float32s(u8s) = %v, %v", got, ok)
	}
	if _, ok := f.Int32s("u32s.big"); ok {
		t.Error("Int32s accepted 2^31")
	}
	if got, ok := f.Int32s("i64s"); !ok || !reflect.DeepEqual(got, []int32{-1, 5}) {
		t.Errorf("Int32s(i64s) = %v, %v", got, ok)
	}
	if got, ok := f.Float32s("f64s"); !ok || !reflect.DeepEqual(got, []float32{0.25, -8}) {
		t.Errorf("Float32s(f64s) = %v, %v", got, ok)
	}
	if _, ok := f.Float32s("bools"); ok {
		t.Error("Float32s accepted a bool array")
	}
	v, _ := f.Get("bools")
	if b, ok := v.Index(1).Bool(); !ok || b {
		t.Errorf("bools[1] = %v, %v", b, ok)
	}
	if got, ok := f.Uint("u64.max"); !ok || got != math.MaxUint64 {
		t.Errorf("Uint(u64.max) = %v, %v", got, ok)
	}
	v, _ = f.Get("u64.max")
	if _, ok := v.Int(); ok {
		t.Error("Int accepted MaxUint64")
	}
	if got, ok := f.Float("f32"); !ok || got != float64(float32(1e-5)) {
		t.Errorf("Float(f32) = %v, %v (want the float32 value widened)", got, ok)
	}
	if v.Len() != 0 {
		t.Errorf("Len of a scalar = %d", v.Len())
	}
	defer func() {
		if recover() == nil {
			t.Error("Index out of range did not panic")
		}
	}()
	a, _ := f.Get("u8s")
	a.Index(3)
}

func TestValueString(t *testing.T) {
	f := valueFile(t, append(allValueKVs(),
		kvEnc{"long", 9, func(e *enc) {
			e.u32(4)
			e.u64(10)
			for i := range 10 {
				e.u32(uint32(i))
			}
		}})...)
	want := map[string]string{
		"t.u8": "200", "t.i8": "-2", "t.u64": "9223372036854775808", "t.i64": "-5",
		"t.f32": "0.5", "t.f64": "-2.25", "t.bool": "true", "t.str": `"héllo"`,
		"t.strs": `["a" "" "ccc"]`, "t.empty": "[]", "long": "[0 1 2 3 4 5 6 7 ... (10 uint32)]",
	}
	for k, w := range want {
		v, _ := f.Get(k)
		if got := v.String(); got != w {
			t.Errorf("%s.String() = %s, want %s", k, got, w)
		}
	}
	if gguf.ValueFloat64.String() != "float64" || gguf.ValueType(99).String() != "value_type(99)" {
		t.Error("ValueType names are wrong")
	}
}
