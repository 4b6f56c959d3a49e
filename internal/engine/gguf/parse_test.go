package gguf_test

import (
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/peerllm/peerllm/internal/engine/gguf"
)

func TestParseValid(t *testing.T) {
	for _, version := range []uint32{2, 3} {
		spec := validSpec()
		spec.version = version
		f, err := gguf.Parse(spec.bytes())
		if err != nil {
			t.Fatalf("v%d: %v", version, err)
		}
		if f.Version != version || f.Alignment != 32 || len(f.KV) != len(spec.kvs) || len(f.Tensors) != 2 {
			t.Fatalf("v%d: version %d alignment %d, %d keys, %d tensors", version, f.Version, f.Alignment, len(f.KV), len(f.Tensors))
		}
		for i, kv := range f.KV {
			if kv.Key != spec.kvs[i].key {
				t.Errorf("key %d is %q, want %q (file order)", i, kv.Key, spec.kvs[i].key)
			}
		}
	}
	f, err := gguf.Parse(validSpec().bytes())
	if err != nil {
		t.Fatal(err)
	}
	uints := []struct {
		key  string
		want uint64
		ok   bool
	}{
		{"t.u8", 200, true}, {"t.u16", 65000, true}, {"t.u32", 4000000000, true}, {"t.u64", 1 << 63, true},
		{"t.i8", 0, false}, {"t.i64", 0, false}, {"t.f32", 0, false}, {"t.str", 0, false}, {"missing", 0, false},
	}
	for _, c := range uints {
		if got, ok := f.Uint(c.key); got != c.want || ok != c.ok {
			t.Errorf("Uint(%s) = %d, %v; want %d, %v", c.key, got, ok, c.want, c.ok)
		}
	}
	ints := map[string]int64{"t.i8": -2, "t.i16": -3, "t.i32": -4, "t.i64": -5, "t.u32": 4000000000}
	for k, want := range ints {
		v, _ := f.Get(k)
		if got, ok := v.Int(); !ok || got != want {
			t.Errorf("Int(%s) = %d, %v; want %d", k, got, ok, want)
		}
	}
	floats := map[string]float64{"t.f32": 0.5, "t.f64": -2.25, "t.i8": -2, "t.u64": 1 << 63}
	for k, want := range floats {
		if got, ok := f.Float(k); !ok || got != want {
			t.Errorf("Float(%s) = %v, %v; want %v", k, got, ok, want)
		}
	}
	if b, ok := f.Bool("t.bool"); !ok || !b {
		t.Errorf("Bool(t.bool) = %v, %v", b, ok)
	}
	if s, ok := f.String("t.str"); !ok || s != "héllo" {
		t.Errorf("String(t.str) = %q, %v", s, ok)
	}
	if s, ok := f.Strings("t.strs"); !ok || !reflect.DeepEqual(s, []string{"a", "", "ccc"}) {
		t.Errorf("Strings(t.strs) = %q, %v", s, ok)
	}
	if s, ok := f.Float32s("t.f32s"); !ok || !reflect.DeepEqual(s, []float32{1.5, -3}) {
		t.Errorf("Float32s(t.f32s) = %v, %v", s, ok)
	}
	if s, ok := f.Int32s("t.i32s"); !ok || !reflect.DeepEqual(s, []int32{1, -1, 7}) {
		t.Errorf("Int32s(t.i32s) = %v, %v", s, ok)
	}
	if _, ok := f.Strings("t.f32s"); ok {
		t.Error("Strings of a float array succeeded")
	}
	nested, _ := f.Get("t.nested")
	if nested.Len() != 2 || nested.Elem != gguf.ValueArray || nested.String() != `[[10 20] ["x"]]` {
		t.Errorf("t.nested = %v (len %d, elem %s)", nested, nested.Len(), nested.Elem)
	}
	if inner, ok := nested.Index(0).Int32s(); !ok || !reflect.DeepEqual(inner, []int32{10, 20}) {
		t.Errorf("t.nested[0] = %v, %v", inner, ok)
	}
	if e, _ := f.Get("t.empty"); e.Type != gguf.ValueArray || e.Len() != 0 {
		t.Errorf("t.empty = %v", e)
	}

	a, ok := f.Tensor("a.weight")
	if !ok || a.Type != gguf.TypeF32 || !reflect.DeepEqual(a.Dims, []uint64{4, 2}) || a.Elements() != 8 || len(a.Data) != 32 {
		t.Fatalf("a.weight = %+v", a)
	}
	out := make([]float32, 8)
	if err := gguf.Dequantize(a.Type, a.Data, out); err != nil || out[0] != -3.5 || out[7] != 3.5 {
		t.Errorf("a.weight = %v, %v", out, err)
	}
	b, _ := f.Tensor("b.weight")
	out = make([]float32, 32)
	if err := gguf.Dequantize(b.Type, b.Data, out); err != nil || out[0] != -16 || out[31] != 15 {
		t.Errorf("b.weight = %v, %v", out, err)
	}
	if _, ok := f.Tensor("c.weight"); ok {
		t.Error("found a tensor that does not exist")
	}
}

// TestParseTruncated cuts a valid file at every byte: every prefix must fail
// cleanly.
func TestParseTruncated(t *testing.T) {
	full := validSpec().bytes()
	for n := range len(full) {
		if _, err := gguf.Parse(full[:n]); err == nil {
			t.Fatalf("prefix of %d of %d bytes parsed", n, len(full))
		} else if !strings.HasPrefix(err.Error(), "gguf: ") {
			t.Fatalf("prefix %d: error %q lacks the gguf prefix", n, err)
		}
	}
}

type badCase struct {
	name string
	data []byte
	want string
}

// badCases are malformed files and the error each must give.
func badCases() []badCase {
	huge := uint64(1) << 60
	withKV := func(kvs ...kvEnc) fileSpec { s := validSpec(); s.kvs = kvs; return s }
	withTensor := func(ts tensorSpec) fileSpec { s := validSpec(); s.tensors = []tensorSpec{ts}; return s }
	return []badCase{
		{"empty", nil, "too short"},
		{"wrong magic", fileSpec{magic: "GGML", version: 3}.bytes(), "bad magic"},
		{"version 1", fileSpec{version: 1}.bytes(), "version 1 is not supported"},
		{"version 4", fileSpec{version: 4}.bytes(), "unsupported version 4"},
		{"big-endian", fileSpec{version: 3 << 24}.bytes(), "big-endian"},
		{"huge tensor count", fileSpec{version: 3, nTensors: u64p(huge)}.bytes(), "tensor count 1152921504606846976"},
		{"huge kv count", fileSpec{version: 3, nKV: u64p(huge)}.bytes(), "metadata count 1152921504606846976"},
		{"huge key length", func() []byte {
			var e enc
			e.WriteString("GGUF")
			e.u32(3)
			e.u64(0)
			e.u64(1)
			e.u64(huge)
			e.WriteString("abcdefghijklmn")
			return e.Bytes()
		}(), "metadata key 0 length 1152921504606846976"},
		{"huge string value", withKV(kvEnc{"k", 8, func(e *enc) { e.u64(huge) }}).bytes(), "string value length 1152921504606846976"},
		{"huge array", withKV(kvEnc{"k", 9, func(e *enc) { e.u32(0); e.u64(huge) }}).bytes(), "uint8 array length"},
		{"huge string array", withKV(kvEnc{"k", 9, func(e *enc) { e.u32(8); e.u64(huge) }}).bytes(), "string array length"},
		{"huge nested array", withKV(kvEnc{"k", 9, func(e *enc) { e.u32(9); e.u64(huge) }}).bytes(), "nested array length"},
		{"deep nesting", withKV(kvEnc{"k", 9, func(e *enc) {
			for range 40 {
				e.u32(9)
				e.u64(1)
			}
			e.u32(0)
			e.u64(0)
		}}).bytes(), "nested deeper"},
		{"unknown value type", withKV(kvEnc{"k", 13, func(e *enc) { e.u32(0) }}).bytes(), "unknown value type 13"},
		{"unknown array element type", withKV(kvEnc{"k", 9, func(e *enc) { e.u32(99); e.u64(1) }}).bytes(), "unknown array element type 99"},
		{"duplicate key", withKV(kvStr("a", "x"), kvStr("a", "y")).bytes(), `duplicate metadata key "a"`},
		{"alignment not power of two", withKV(kvU32("general.alignment", 24)).bytes(), "not a power of two"},
		{"alignment zero", withKV(kvU32("general.alignment", 0)).bytes(), "not a power of two"},
		{"alignment wrong type", withKV(kvEnc{"general.alignment", 10, func(e *enc) { e.u64(32) }}).bytes(), "want uint32"},
		{"zero dims", withTensor(tensorSpec{name: "t", typ: 0}).bytes(), "tensor t: 0 dimensions"},
		{"five dims", withTensor(tensorSpec{name: "t", dims: []uint64{1, 1, 1, 1, 1}, typ: 0}).bytes(), "tensor t: 5 dimensions"},
		{"dims overflow", withTensor(tensorSpec{name: "t", dims: []uint64{1 << 32, 1 << 32, 1 << 32}, typ: 0}).bytes(), "element count overflows"},
		{"huge dim", withTensor(tensorSpec{name: "t", dims: []uint64{1 << 63}, typ: 0}).bytes(), "too large"},
		{"unknown type", withTensor(tensorSpec{name: "t", dims: []uint64{4}, typ: 99}).bytes(), "tensor t: unknown tensor type 99"},
		{"removed type 4", withTensor(tensorSpec{name: "t", dims: []uint64{32}, typ: 4}).bytes(), "unknown tensor type 4"},
		{"row not a block multiple", withTensor(tensorSpec{name: "t", dims: []uint64{33, 2}, typ: 8}).bytes(), "row length 33 is not a multiple of the Q8_0 block size 32"},
		{"misaligned offset", withTensor(tensorSpec{name: "t", dims: []uint64{2}, typ: 0, offset: 4}).bytes(), "offset 4 is not a multiple of the alignment 32"},
		{"data past end", withTensor(tensorSpec{name: "blk.0.attn_q.weight", dims: []uint64{64, 4}, typ: 0, offset: 32}).bytes(),
			"tensor blk.0.attn_q.weight: data past end of file (offset 32, size 1024"},
		{"offset past end", withTensor(tensorSpec{name: "t", dims: []uint64{1}, typ: 0, offset: 1 << 40}).bytes(), "data past end of file"},
		{"size bigger than file", withTensor(tensorSpec{name: "t", dims: []uint64{1 << 40}, typ: 0}).bytes(), "data past end of file (offset 0, size 4398046511104"},
		{"duplicate tensor", func() []byte {
			s := validSpec()
			s.tensors[1].name = s.tensors[0].name
			return s.bytes()
		}(), `duplicate tensor name "a.weight"`},
		{"huge tensor name", func() []byte {
			var e enc
			e.WriteString("GGUF")
			e.u32(3)
			e.u64(1)
			e.u64(0)
			e.u64(huge)
			e.Write(make([]byte, 64))
			return e.Bytes()
		}(), "tensor 0 name length 1152921504606846976"},
	}
}

func TestParseBad(t *testing.T) {
	for _, c := range badCases() {
		t.Run(c.name, func(t *testing.T) {
			_, err := gguf.Parse(c.data)
			if err == nil {
				t.Fatalf("parsed; want error containing %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "gguf: ") {
				t.Fatalf("error %q, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.gguf")
	if err := os.WriteFile(good, validSpec().bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(good)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := f.Tensor("a.weight")
	if got := math.Float32frombits(uint32(a.Data[0]) | uint32(a.Data[1])<<8 | uint32(a.Data[2])<<16 | uint32(a.Data[3])<<24); got != -3.5 {
		t.Errorf("mapped a.weight[0] = %v", got)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if a.Data != nil {
		t.Error("tensor data still set after Close")
	}
	if s, ok := f.String("general.architecture"); !ok || s != "llama" {
		t.Errorf("metadata after Close = %q, %v", s, ok)
	}

	for name, content := range map[string][]byte{"empty.gguf": nil, "v1.gguf": fileSpec{version: 1}.bytes()} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := gguf.Open(p); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("Open(%s) = %v, want an error naming the file", name, err)
		}
	}
	if _, err := gguf.Open(filepath.Join(dir, "missing.gguf")); err == nil {
		t.Error("Open of a missing file succeeded")
	}
}

func TestTypes(t *testing.T) {
	cases := []struct {
		t          gguf.Type
		name       string
		bs, bb     int
		supported  bool
		rowN, rowB int
	}{
		{gguf.TypeF32, "F32", 1, 4, true, 3, 12},
		{gguf.TypeF16, "F16", 1, 2, true, 3, 6},
		{gguf.TypeBF16, "BF16", 1, 2, true, 64, 128},
		{gguf.TypeQ4_0, "Q4_0", 32, 18, true, 64, 36},
		{gguf.TypeQ4_1, "Q4_1", 32, 20, true, 64, 40},
		{gguf.TypeQ5_0, "Q5_0", 32, 22, true, 64, 44},
		{gguf.TypeQ5_1, "Q5_1", 32, 24, true, 64, 48},
		{gguf.TypeQ8_0, "Q8_0", 32, 34, true, 64, 68},
		{gguf.TypeQ8_1, "Q8_1", 32, 36, true, 32, 36},
		{gguf.TypeQ2_K, "Q2_K", 256, 84, true, 512, 168},
		{gguf.TypeQ3_K, "Q3_K", 256, 110, true, 256, 110},
		{gguf.TypeQ4_K, "Q4_K", 256, 144, true, 256, 144},
		{gguf.TypeQ5_K, "Q5_K", 256, 176, true, 256, 176},
		{gguf.TypeQ6_K, "Q6_K", 256, 210, true, 256, 210},
		{gguf.TypeQ8_K, "Q8_K", 256, 292, true, 256, 292},
		{gguf.TypeIQ2_XXS, "IQ2_XXS", 256, 66, false, 256, 66},
		{gguf.TypeMXFP4, "MXFP4", 32, 17, false, 64, 34},
	}
	for _, c := range cases {
		if c.t.String() != c.name || c.t.BlockSize() != c.bs || c.t.BlockBytes() != c.bb || c.t.Supported() != c.supported {
			t.Errorf("%d: %s %d %d %v, want %s %d %d %v", uint32(c.t), c.t, c.t.BlockSize(), c.t.BlockBytes(), c.t.Supported(), c.name, c.bs, c.bb, c.supported)
		}
		if n, err := gguf.RowBytes(c.t, c.rowN); err != nil || n != c.rowB {
			t.Errorf("RowBytes(%s, %d) = %d, %v; want %d", c.t, c.rowN, n, err, c.rowB)
		}
	}
	if _, err := gguf.RowBytes(gguf.TypeQ4_K, 100); err == nil {
		t.Error("RowBytes accepted a partial block")
	}
	if s := gguf.Type(4).String(); s != "type(4)" {
		t.Errorf("Type(4) = %s", s)
	}
	if err := gguf.Dequantize(gguf.TypeIQ2_XXS, make([]byte, 66), make([]float32, 256)); err == nil || !strings.Contains(err.Error(), "IQ2_XXS") {
		t.Errorf("Dequantize IQ2_XXS: %v", err)
	}
	if err := gguf.Dequantize(gguf.TypeQ8_0, make([]byte, 33), make([]float32, 32)); err == nil {
		t.Error("Dequantize accepted a short source")
	}
}

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz/FuzzParse from the valid and bad test files")

// TestFuzzCorpus keeps the checked-in seed corpus in step with the generated
// test files: run with -update-corpus to rewrite it.
func TestFuzzCorpus(t *testing.T) {
	seeds := map[string][]byte{}
	for _, v := range []uint32{2, 3} {
		s := validSpec()
		s.version = v
		seeds[fmt.Sprintf("valid-v%d", v)] = s.bytes()
	}
	for _, c := range badCases() {
		seeds["bad-"+strings.ReplaceAll(c.name, " ", "-")] = c.data
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	for name, data := range seeds {
		path := filepath.Join(dir, name)
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if *updateCorpus {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Errorf("seed %s is missing or stale (run go test -run TestFuzzCorpus -update-corpus): %v", path, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	// The seeds are in testdata/fuzz/FuzzParse (see TestFuzzCorpus).
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := gguf.Parse(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "gguf: ") {
				t.Fatalf("error without prefix: %v", err)
			}
			return
		}
		for _, kv := range file.KV {
			_ = kv.Value.String()
		}
		for i := range file.Tensors {
			ti := &file.Tensors[i]
			n, err := gguf.RowBytes(ti.Type, int(ti.Elements()))
			if err != nil || n != len(ti.Data) {
				t.Fatalf("tensor %s: %d bytes, RowBytes says %d (%v)", ti.Name, len(ti.Data), n, err)
			}
			if ti.Type.Supported() && ti.Elements() <= 1<<16 {
				out := make([]float32, ti.Elements())
				if err := gguf.Dequantize(ti.Type, ti.Data, out); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

// TestParseAllocationBounded gives counts that fit the file's size but not
// its content: parsing must fail having allocated about as much as the
// content it read, not what the counts claim.
func TestParseAllocationBounded(t *testing.T) {
	const size = 4 << 20
	pad := func(e *enc) []byte {
		e.Write(make([]byte, size-e.Len()))
		return e.Bytes()
	}
	header := func(nTensors, nKV uint64) *enc {
		var e enc
		e.WriteString("GGUF")
		e.u32(3)
		e.u64(nTensors)
		e.u64(nKV)
		return &e
	}
	cases := map[string][]byte{
		"kv count": func() []byte {
			e := header(0, (size-100)/13)
			e.str("k")
			e.u32(99) // unknown value type
			return pad(e)
		}(),
		"tensor count": func() []byte {
			e := header((size-100)/32, 0)
			e.str("t")
			e.u32(9) // too many dimensions
			return pad(e)
		}(),
		"string array": func() []byte {
			e := header(0, 1)
			e.str("k")
			e.u32(9)
			e.u32(8)
			e.u64(size / 8 / 2)
			e.u64(1 << 40) // first string is impossible
			return pad(e)
		}(),
		"nested array": func() []byte {
			e := header(0, 1)
			e.str("k")
			e.u32(9)
			e.u32(9)
			e.u64(size / 12 / 2)
			e.u32(99) // first element has an unknown type
			return pad(e)
		}(),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := gguf.Parse(data)
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatal("parsed")
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > size/4 {
				t.Errorf("allocated %d bytes for a %d-byte file that fails at once: %v", n, size, err)
			}
		})
	}
}

// TestParseNestedBudget rejects a file with more than 2^20 elements in
// arrays of arrays, each of which would cost ~100 bytes of memory.
func TestParseNestedBudget(t *testing.T) {
	const n = 1<<20 + 1
	spec := fileSpec{version: 3, kvs: []kvEnc{{"k", 9, func(e *enc) {
		e.u32(9)
		e.u64(n)
		for range n {
			e.u32(0)
			e.u64(0)
		}
	}}}}
	if _, err := gguf.Parse(spec.bytes()); err == nil || !strings.Contains(err.Error(), "more than 1048576 elements in arrays of arrays") {
		t.Fatalf("error %v", err)
	}
}
