package gguf_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/peerllm/peerllm/internal/engine/gguf"
	"github.com/peerllm/peerllm/internal/testenv"
)

// goldenModel is the part of shared/models/quant/golden.json these tests use.
type goldenModel struct {
	Name      string         `json:"name"`
	File      string         `json:"file"`
	SizeBytes int64          `json:"size_bytes"`
	SHA256    string         `json:"sha256"`
	Metadata  map[string]any `json:"metadata"`
	Tensors   []struct {
		Name       string             `json:"name"`
		Type       string             `json:"type"`
		NE         []uint64           `json:"ne"`
		NBytes     int                `json:"n_bytes"`
		DeqSamples map[string]float64 `json:"deq_samples"`
		DeqSum     float64            `json:"deq_sum"`
		DeqSumSq   float64            `json:"deq_sum_sq"`
	} `json:"tensors"`
}

func loadGolden(t *testing.T) (dir string, models []goldenModel) {
	t.Helper()
	dir = filepath.Join(testenv.ModelsDir(t), "quant")
	b, err := os.ReadFile(filepath.Join(dir, "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Models []goldenModel `json:"models"`
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Models) < 11 {
		t.Fatalf("golden.json has %d models, want at least 11", len(g.Models))
	}
	return dir, g.Models
}

func fileSHA256(t *testing.T, path string) (string, int64) {
	t.Helper()
	fd, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	h := sha256.New()
	n, err := io.Copy(h, fd)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

// TestGoldenFiles checks the reader and the dequantizers against llama.cpp's
// view of every shared model file.
func TestGoldenFiles(t *testing.T) {
	dir, models := loadGolden(t)
	for _, m := range models {
		t.Run(m.Name, func(t *testing.T) {
			path := filepath.Join(dir, m.File)
			sum, size := fileSHA256(t, path)
			if size != m.SizeBytes || sum != m.SHA256 {
				t.Fatalf("file is %d bytes sha256 %s, golden says %d bytes %s", size, sum, m.SizeBytes, m.SHA256)
			}
			f, err := gguf.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := f.Close(); err != nil {
					t.Error(err)
				}
			}()
			checkMetadata(t, f, m.Metadata)
			if len(f.Tensors) != len(m.Tensors) {
				t.Fatalf("%d tensors, golden has %d", len(f.Tensors), len(m.Tensors))
			}
			for i, gt := range m.Tensors {
				ti := &f.Tensors[i]
				if ti.Name != gt.Name {
					t.Fatalf("tensor %d is %q, golden %q", i, ti.Name, gt.Name)
				}
				if byName, ok := f.Tensor(gt.Name); !ok || byName != ti {
					t.Errorf("Tensor(%q) does not find tensor %d", gt.Name, i)
				}
				if ti.Type.String() != gt.Type || !ti.Type.Supported() {
					t.Errorf("%s: type %s (supported %v), golden %s", gt.Name, ti.Type, ti.Type.Supported(), gt.Type)
				}
				if !equalDims(ti.Dims, gt.NE) || len(ti.Data) != gt.NBytes {
					t.Errorf("%s: dims %v %d bytes, golden %v %d bytes", gt.Name, ti.Dims, len(ti.Data), gt.NE, gt.NBytes)
				}
				if ti.Offset%f.Alignment != 0 {
					t.Errorf("%s: offset %d not aligned to %d", gt.Name, ti.Offset, f.Alignment)
				}
				out := make([]float32, ti.Elements())
				if err := gguf.Dequantize(ti.Type, ti.Data, out); err != nil {
					t.Errorf("%s: %v", gt.Name, err)
					continue
				}
				for k, want := range gt.DeqSamples {
					idx, err := strconv.Atoi(k)
					if err != nil || idx >= len(out) {
						t.Fatalf("%s: bad sample index %q", gt.Name, k)
					}
					if !withinULP(out[idx], float32(want), 1) {
						t.Errorf("%s: element %d = %v, golden %v", gt.Name, idx, out[idx], float32(want))
					}
				}
				var s, sq float64
				for _, v := range out {
					s += float64(v)
					sq += float64(v) * float64(v)
				}
				if !relClose(s, gt.DeqSum, 1e-6) || !relClose(sq, gt.DeqSumSq, 1e-6) {
					t.Errorf("%s: sum %v sum_sq %v, golden %v %v", gt.Name, s, sq, gt.DeqSum, gt.DeqSumSq)
				}
			}
		})
	}
}

func checkMetadata(t *testing.T, f *gguf.File, want map[string]any) {
	t.Helper()
	for key, w := range want {
		v, ok := f.Get(key)
		if !ok {
			t.Errorf("metadata %s missing", key)
			continue
		}
		switch w := w.(type) {
		case string:
			if got, ok := f.String(key); !ok || got != w {
				t.Errorf("metadata %s = %v, golden %q", key, v, w)
			}
		case float64:
			if strings.Contains(v.Type.String(), "int") {
				got, ok := f.Uint(key)
				if !ok || float64(got) != w {
					t.Errorf("metadata %s = %v, golden %v", key, v, w)
				}
				continue
			}
			got, ok := f.Float(key)
			if !ok || got != w {
				t.Errorf("metadata %s = %v (%s), golden %v", key, v, v.Type, w)
			}
		default:
			t.Errorf("metadata %s: golden value %v of unexpected JSON type %T", key, w, w)
		}
	}
	if n, ok := f.Strings("tokenizer.ggml.tokens"); !ok || len(n) != 512 {
		t.Errorf("tokenizer.ggml.tokens: %d strings (ok %v), want 512", len(n), ok)
	}
	if s, ok := f.Float32s("tokenizer.ggml.scores"); !ok || len(s) != 512 {
		t.Errorf("tokenizer.ggml.scores: %d floats (ok %v), want 512", len(s), ok)
	}
	if s, ok := f.Int32s("tokenizer.ggml.token_type"); !ok || len(s) != 512 {
		t.Errorf("tokenizer.ggml.token_type: %d ints (ok %v), want 512", len(s), ok)
	}
}

func equalDims(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func withinULP(a, b float32, n int32) bool {
	if a == b {
		return true
	}
	if math.Signbit(float64(a)) != math.Signbit(float64(b)) {
		return false
	}
	d := int32(math.Float32bits(a)) - int32(math.Float32bits(b))
	return d >= -n && d <= n
}

func relClose(a, b, tol float64) bool {
	return math.Abs(a-b) <= tol*math.Max(math.Abs(b), 1e-30)
}
