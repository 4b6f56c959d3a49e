package safety

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// builtinWeights is the shipped model, written by
// `go run ./internal/safety/cmd/safetytrain` (see docs/SAFETY.md).
//
//go:embed data/weights.bin.gz
var builtinWeights []byte

const (
	weightsMagic = "PLSAFE1\n"
	defaultBits  = 18
)

// model is a linear model per head over hashed features: logit = bias +
// Σ value·weight[bucket].
type model struct {
	bits uint
	mask uint32
	w    []float32 // bucket*numHeads + head (training)
	bias [numHeads]float32
	// A loaded model keeps the file's int16 weights and per-head scales
	// (half the memory of float32, so fewer cache misses per feature).
	q     []int16 // bucket*numHeads + head
	scale [numHeads]float32
}

func newModel(bits uint) *model {
	return &model{bits: bits, mask: 1<<bits - 1, w: make([]float32, (1<<bits)*numHeads)}
}

// logits returns the per-head logits for fs. Runs of features with the same
// value (all the n-grams of a text share one) are summed as integers and
// scaled once, which saves a conversion and a multiply per weight.
func (m *model) logits(fs []feature) [numHeads]float32 {
	if m.q == nil {
		return m.logitsFloat(fs)
	}
	var sum [numHeads]float32
	var acc [numHeads]int32
	cur := float32(0)
	q := m.q
	for _, f := range fs {
		if f.val != cur {
			for h := range acc {
				sum[h] += cur * float32(acc[h])
				acc[h] = 0
			}
			cur = f.val
		}
		row := q[int(f.idx)*numHeads : int(f.idx)*numHeads+numHeads : int(f.idx)*numHeads+numHeads]
		acc[0] += int32(row[0])
		acc[1] += int32(row[1])
		acc[2] += int32(row[2])
		acc[3] += int32(row[3])
		acc[4] += int32(row[4])
		acc[5] += int32(row[5])
		acc[6] += int32(row[6])
		acc[7] += int32(row[7])
		acc[8] += int32(row[8])
		acc[9] += int32(row[9])
	}
	out := m.bias
	for h := range out {
		out[h] += m.scale[h] * (sum[h] + cur*float32(acc[h]))
	}
	return out
}

// logitsFloat is logits over the float32 weights of a model in training.
func (m *model) logitsFloat(fs []feature) [numHeads]float32 {
	out := m.bias
	w := m.w
	for _, f := range fs {
		row := w[int(f.idx)*numHeads : int(f.idx)*numHeads+numHeads : int(f.idx)*numHeads+numHeads]
		v := f.val
		out[0] += v * row[0]
		out[1] += v * row[1]
		out[2] += v * row[2]
		out[3] += v * row[3]
		out[4] += v * row[4]
		out[5] += v * row[5]
		out[6] += v * row[6]
		out[7] += v * row[7]
		out[8] += v * row[8]
		out[9] += v * row[9]
	}
	return out
}

// marshal writes the model as gzip(magic, bits, heads, bias, scale, then the
// non-zero buckets as index delta + int16 weights per head).
func (m *model) marshal() ([]byte, error) {
	var raw bytes.Buffer
	raw.WriteString(weightsMagic)
	le := binary.LittleEndian
	put := func(v any) { _ = binary.Write(&raw, le, v) }
	put(uint32(m.bits))
	put(uint32(numHeads))
	put(m.bias)
	var scale [numHeads]float32
	for i, x := range m.w {
		if a := float32(math.Abs(float64(x))); a > scale[i%numHeads] {
			scale[i%numHeads] = a
		}
	}
	for h := range scale {
		if scale[h] == 0 {
			scale[h] = 1
		}
		scale[h] /= 32767
	}
	put(scale)
	var q [numHeads]int16
	var idx []uint32
	for b := 0; b < 1<<m.bits; b++ {
		nz := false
		for h := 0; h < numHeads; h++ {
			if int16(math.Round(float64(m.w[b*numHeads+h]/scale[h]))) != 0 {
				nz = true
			}
		}
		if nz {
			idx = append(idx, uint32(b))
		}
	}
	put(uint32(len(idx)))
	prev := uint32(0)
	for _, b := range idx {
		put(b - prev)
		prev = b
		for h := 0; h < numHeads; h++ {
			q[h] = int16(math.Round(float64(m.w[int(b)*numHeads+h] / scale[h])))
		}
		put(q)
	}
	var out bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

var errBadWeights = errors.New("safety: bad weights file")

func unmarshalModel(data []byte) (*model, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadWeights, err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadWeights, err)
	}
	r := bytes.NewReader(raw)
	magic := make([]byte, len(weightsMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != weightsMagic {
		return nil, fmt.Errorf("%w: magic", errBadWeights)
	}
	le := binary.LittleEndian
	var bits, nh, count uint32
	if err := binary.Read(r, le, &bits); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadWeights, err)
	}
	if err := binary.Read(r, le, &nh); err != nil || nh != numHeads || bits < 8 || bits > 24 {
		return nil, fmt.Errorf("%w: header", errBadWeights)
	}
	m := &model{bits: uint(bits), mask: 1<<bits - 1, q: make([]int16, (1<<bits)*numHeads)}
	scale := &m.scale
	if err := binary.Read(r, le, &m.bias); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadWeights, err)
	}
	if err := binary.Read(r, le, scale); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadWeights, err)
	}
	if err := binary.Read(r, le, &count); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadWeights, err)
	}
	b := uint32(0)
	var q [numHeads]int16
	for i := uint32(0); i < count; i++ {
		var d uint32
		if err := binary.Read(r, le, &d); err != nil {
			return nil, fmt.Errorf("%w: %v", errBadWeights, err)
		}
		b += d
		if b > m.mask {
			return nil, fmt.Errorf("%w: bucket out of range", errBadWeights)
		}
		if err := binary.Read(r, le, &q); err != nil {
			return nil, fmt.Errorf("%w: %v", errBadWeights, err)
		}
		copy(m.q[int(b)*numHeads:], q[:])
	}
	return m, nil
}
