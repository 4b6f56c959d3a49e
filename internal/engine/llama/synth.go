package llama

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math"
	"os"

	"github.com/peerllm/peerllm/internal/engine/gguf"
)

// Synthetic models: GGUF files of a Llama shape with seeded random weights,
// written by the benchmarks (`peerllm bench engine` and BenchmarkLarge) and
// the bad-input tests. They are not real language models.

// writeRandomGGUF writes a Llama GGUF with seeded random weights in typ
// (F32 or Q8_0; norms F32) and a plain SentencePiece vocabulary.
func writeRandomGGUF(path string, c config, typ gguf.Type) error {
	return writeFixture(path, c, typ, fixture{})
}

// fixture bends a generated GGUF for the bad-input tests.
type fixture struct {
	arch     string // general.architecture; "" means llama
	skip     string // a tensor left out
	reshape  string // a tensor written with its dimensions swapped
	tokens   int    // vocabulary size written; 0 means c.vocab
	truncate int    // bytes cut off the end
}

func writeFixture(path string, c config, typ gguf.Type, fx fixture) error {
	var w ggufWriter
	w.skip, w.reshape = fx.skip, fx.reshape
	if fx.arch == "" {
		fx.arch = "llama"
	}
	if fx.tokens == 0 {
		fx.tokens = c.vocab
	}
	w.kv("general.architecture", fx.arch)
	w.kv("general.name", "random-"+typ.String())
	w.kv("llama.context_length", uint32(c.ctx))
	w.kv("llama.embedding_length", uint32(c.dim))
	w.kv("llama.feed_forward_length", uint32(c.hidden))
	w.kv("llama.block_count", uint32(c.layers))
	w.kv("llama.attention.head_count", uint32(c.heads))
	w.kv("llama.attention.head_count_kv", uint32(c.kvHeads))
	w.kv("llama.attention.layer_norm_rms_epsilon", float32(1e-5))
	w.kv("tokenizer.ggml.model", "llama")
	toks := make([]string, fx.tokens)
	scores := make([]float32, fx.tokens)
	types := make([]int32, fx.tokens)
	for i := range toks {
		switch {
		case i == 0:
			toks[i], types[i] = "<unk>", tokUnknown
		case i == 1:
			toks[i], types[i] = "<s>", tokControl
		case i == 2:
			toks[i], types[i] = "</s>", tokControl
		case i < 259:
			toks[i], types[i] = fmt.Sprintf("<0x%02X>", i-3), tokByte
		default:
			toks[i], types[i], scores[i] = fmt.Sprintf("▁w%d", i), tokNormal, -float32(i)
		}
	}
	w.kv("tokenizer.ggml.tokens", toks)
	w.kv("tokenizer.ggml.scores", scores)
	w.kv("tokenizer.ggml.token_type", types)

	rng := uint64(0x9e3779b97f4a7c15)
	random := func(n int) []float32 {
		out := make([]float32, n)
		for i := range out {
			rng = splitmix64(rng)
			out[i] = (float32(rng>>40)/(1<<24) - 0.5) * 0.1
		}
		return out
	}
	ones := func(n int) []float32 {
		out := make([]float32, n)
		for i := range out {
			out[i] = 1
		}
		return out
	}
	mat := func(name string, rows, cols int) {
		w.tensor(name, typ, []uint64{uint64(cols), uint64(rows)}, random(rows*cols))
	}
	vec := func(name string, n int) { w.tensor(name, gguf.TypeF32, []uint64{uint64(n)}, ones(n)) }
	mat("token_embd.weight", c.vocab, c.dim)
	for l := 0; l < c.layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		vec(p+"attn_norm.weight", c.dim)
		mat(p+"attn_q.weight", c.dim, c.dim)
		mat(p+"attn_k.weight", c.kvDim(), c.dim)
		mat(p+"attn_v.weight", c.kvDim(), c.dim)
		mat(p+"attn_output.weight", c.dim, c.dim)
		vec(p+"ffn_norm.weight", c.dim)
		mat(p+"ffn_gate.weight", c.hidden, c.dim)
		mat(p+"ffn_down.weight", c.dim, c.hidden)
		mat(p+"ffn_up.weight", c.hidden, c.dim)
	}
	vec("output_norm.weight", c.dim)
	if err := w.write(path); err != nil {
		return err
	}
	if fx.truncate > 0 {
		st, err := os.Stat(path)
		if err != nil {
			return err
		}
		return os.Truncate(path, st.Size()-int64(fx.truncate))
	}
	return nil
}

// ggufWriter assembles a GGUF v3 file (test and benchmark fixtures only).
type ggufWriter struct {
	skip    string // tensor name to leave out
	reshape string // tensor name whose dims are reversed
	meta    []byte
	nkv     int
	infos   []byte
	data    [][]byte
	offset  uint64
	ntensor int
}

func putString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

func (w *ggufWriter) kv(key string, v any) {
	w.nkv++
	b := putString(w.meta, key)
	le := binary.LittleEndian
	switch v := v.(type) {
	case uint32:
		b = le.AppendUint32(le.AppendUint32(b, 4), v)
	case int32:
		b = le.AppendUint32(le.AppendUint32(b, 5), uint32(v))
	case float32:
		b = le.AppendUint32(le.AppendUint32(b, 6), math.Float32bits(v))
	case bool:
		b = le.AppendUint32(b, 7)
		if v {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	case string:
		b = putString(le.AppendUint32(b, 8), v)
	case []string:
		b = le.AppendUint64(le.AppendUint32(le.AppendUint32(b, 9), 8), uint64(len(v)))
		for _, s := range v {
			b = putString(b, s)
		}
	case []float32:
		b = le.AppendUint64(le.AppendUint32(le.AppendUint32(b, 9), 6), uint64(len(v)))
		for _, f := range v {
			b = le.AppendUint32(b, math.Float32bits(f))
		}
	case []int32:
		b = le.AppendUint64(le.AppendUint32(le.AppendUint32(b, 9), 5), uint64(len(v)))
		for _, x := range v {
			b = le.AppendUint32(b, uint32(x))
		}
	default:
		panic(fmt.Sprintf("ggufWriter: unsupported %T", v))
	}
	w.meta = b
}

// tensor adds a tensor, encoding x as typ (F32, F16 or Q8_0).
func (w *ggufWriter) tensor(name string, typ gguf.Type, dims []uint64, x []float32) {
	if name == w.skip {
		return
	}
	if name == w.reshape && len(dims) == 2 {
		dims = []uint64{dims[1], dims[0]}
	}
	le := binary.LittleEndian
	var raw []byte
	switch typ {
	case gguf.TypeF32:
		raw = make([]byte, 0, 4*len(x))
		for _, f := range x {
			raw = le.AppendUint32(raw, math.Float32bits(f))
		}
	case gguf.TypeF16:
		for _, f := range x {
			raw = le.AppendUint16(raw, f32ToF16(f))
		}
	case gguf.TypeQ8_0:
		raw = make([]byte, 0, len(x)/32*34)
		for i := 0; i < len(x); i += 32 {
			blk := x[i : i+32]
			amax := float32(0)
			for _, f := range blk {
				amax = max(amax, float32(math.Abs(float64(f))))
			}
			d := amax / 127
			id := float32(0)
			if d != 0 {
				id = 1 / d
			}
			raw = le.AppendUint16(raw, f32ToF16(d))
			for _, f := range blk {
				raw = append(raw, byte(int8(math.Round(float64(f*id)))))
			}
		}
	default:
		panic("ggufWriter: unsupported tensor type " + typ.String())
	}
	b := putString(w.infos, name)
	b = le.AppendUint32(b, uint32(len(dims)))
	for _, d := range dims {
		b = le.AppendUint64(b, d)
	}
	b = le.AppendUint32(b, uint32(typ))
	b = le.AppendUint64(b, w.offset)
	w.infos = b
	pad := (32 - len(raw)%32) % 32
	raw = append(raw, make([]byte, pad)...)
	w.data = append(w.data, raw)
	w.offset += uint64(len(raw))
	w.ntensor++
}

func (w *ggufWriter) bytes() []byte {
	le := binary.LittleEndian
	h := []byte("GGUF")
	h = le.AppendUint32(h, 3)
	h = le.AppendUint64(h, uint64(w.ntensor))
	h = le.AppendUint64(h, uint64(w.nkv))
	h = append(h, w.meta...)
	h = append(h, w.infos...)
	h = append(h, make([]byte, (32-len(h)%32)%32)...)
	return h
}

func (w *ggufWriter) write(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	bw.Write(w.bytes())
	for _, d := range w.data {
		bw.Write(d)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// f32ToF16 rounds to the nearest IEEE half (no NaN handling needed here).
func f32ToF16(f float32) uint16 {
	bits := math.Float32bits(f)
	sign := uint16(bits>>16) & 0x8000
	exp := int((bits>>23)&0xff) - 127 + 15
	mant := bits & 0x7fffff
	switch {
	case exp >= 31:
		return sign | 0x7c00
	case exp <= 0:
		if exp < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint(14 - exp)
		h := uint16(mant >> shift)
		if (mant>>(shift-1))&1 != 0 {
			h++
		}
		return sign | h
	}
	h := sign | uint16(exp<<10) | uint16(mant>>13)
	if mant&0x1000 != 0 {
		h++
	}
	return h
}
