package llama

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/peerllm/peerllm/internal/engine/gguf"
	"github.com/peerllm/peerllm/internal/testenv"
)

// smallShape is a tiny Llama for generated fixtures.
var smallShape = config{dim: 32, hidden: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 8, ropeDim: 8, vocab: 300, ctx: 64, eps: 1e-5, ropeTheta: 10000}

func TestGeneratedGGUFRuns(t *testing.T) {
	for _, typ := range []gguf.Type{gguf.TypeF32, gguf.TypeF16, gguf.TypeQ8_0} {
		t.Run(typ.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "m.gguf")
			if err := writeRandomGGUF(path, smallShape, typ); err != nil {
				t.Fatal(err)
			}
			e, err := Load(path, Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			if got := e.Info().Quantization; got != typ.String() {
				t.Errorf("quantization %q, want %q", got, typ)
			}
			if e.Info().Model != "m" {
				t.Errorf("model name %q", e.Info().Model)
			}
		})
	}
}

// TestBadFiles: every malformed input is an error that says what is wrong,
// never a panic.
func TestBadFiles(t *testing.T) {
	models := testenv.ModelsDir(t)
	bin, err := os.ReadFile(filepath.Join(models, "stories260K.bin"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := os.ReadFile(filepath.Join(models, "tok512.bin"))
	if err != nil {
		t.Fatal(err)
	}
	header := func(vals ...int32) []byte {
		b := make([]byte, 0, len(bin))
		for _, v := range vals {
			b = binary.LittleEndian.AppendUint32(b, uint32(v))
		}
		return append(b, bin[28:]...)
	}
	// tokN is tok512.bin cut to its first n tokens.
	tokN := func(n int) []byte {
		off := 4
		for range n {
			l := int(binary.LittleEndian.Uint32(tok[off+4:]))
			off += 8 + l
		}
		return tok[:off]
	}
	tests := []struct {
		name string
		file []byte                  // a .bin checkpoint (with tok512.bin beside it)
		gguf func(path string) error // or a generated GGUF
		tok  []byte                  // tokenizer.bin override
		want string                  // in the error text
	}{
		{name: "empty", file: []byte{}, want: "too short"},
		{name: "short header", file: bin[:20], want: "truncated"},
		{name: "truncated weights", file: bin[:100000], want: "truncated"},
		{name: "absurd dim", file: header(1<<30, 172, 5, 8, 4, 512, 512), want: "absurd"},
		{name: "zero layers", file: header(64, 172, 0, 8, 4, 512, 512), want: "absurd"},
		{name: "heads do not divide", file: header(64, 172, 5, 7, 7, 512, 512), want: "heads"},
		{name: "negative seq", file: header(64, 172, 5, 8, 4, 512, -1), want: "absurd"},
		{name: "wrong magic", file: []byte("GGUX\x03\x00\x00\x00 not a model at all, just text......"), want: "not a GGUF file"},
		{name: "tokenizer too small", file: bin, tok: tokN(300), want: "do not belong"},
		{name: "tokenizer truncated", file: bin, tok: tok[:len(tok)-3], want: "truncated"},
		{name: "tokenizer garbage", file: bin, tok: []byte{0xff, 0xff, 0xff, 0x7f, 1, 2}, want: "tokenizer"},
		{name: "gguf unsupported arch", gguf: func(p string) error {
			return writeFixture(p, smallShape, gguf.TypeF32, fixture{arch: "gpt2"})
		}, want: `unsupported architecture "gpt2"`},
		{name: "gguf missing tensor", gguf: func(p string) error {
			return writeFixture(p, smallShape, gguf.TypeF32, fixture{skip: "blk.1.ffn_up.weight"})
		}, want: "missing tensor blk.1.ffn_up.weight"},
		{name: "gguf wrong shape", gguf: func(p string) error {
			return writeFixture(p, smallShape, gguf.TypeF32, fixture{reshape: "blk.0.ffn_gate.weight"})
		}, want: "blk.0.ffn_gate.weight has shape"},
		{name: "gguf tokenizer mismatch", gguf: func(p string) error {
			return writeFixture(p, smallShape, gguf.TypeF32, fixture{tokens: 280})
		}, want: "do not belong"},
		{name: "gguf truncated", gguf: func(p string) error {
			return writeFixture(p, smallShape, gguf.TypeF32, fixture{truncate: 1000})
		}, want: "gguf"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "model.bin")
			if tc.gguf != nil {
				path = filepath.Join(dir, "model.gguf")
				if err := tc.gguf(path); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(path, tc.file, 0o644); err != nil {
				t.Fatal(err)
			}
			tk := tok
			if tc.tok != nil {
				tk = tc.tok
			}
			if err := os.WriteFile(filepath.Join(dir, "tok512.bin"), tk, 0o644); err != nil {
				t.Fatal(err)
			}
			e, err := Load(path, Options{Threads: 1})
			if err == nil {
				e.Close()
				t.Fatal("loaded")
			}
			t.Log(err)
			if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.want)) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// FuzzLoadCheckpoint feeds arbitrary bytes to the checkpoint loader and the
// tokenizer reader: errors are fine, panics are not.
func FuzzLoadCheckpoint(f *testing.F) {
	f.Add([]byte{64, 0, 0, 0, 172, 0, 0, 0, 5, 0, 0, 0, 8, 0, 0, 0, 4, 0, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0})
	f.Add([]byte{7, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 'a'})
	f.Add([]byte("GGUF"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if c, w, err := loadCheckpoint(data); err == nil {
			m := newModel(c, w)
			_ = m.parameters()
		}
		if tk, err := loadTokenizerBin(data, 0); err == nil {
			ids := tk.encode("hello wörld", true)
			for i := 1; i < len(ids); i++ {
				_ = tk.piece(ids[i-1], ids[i])
			}
		}
	})
}
