// Package gguf reads GGUF model files (versions 2 and 3) and computes with the
// ggml tensor formats they hold: it owns the file parser and validator, the
// dequantizers for the float and quantized block formats, and the quantized
// matrix-vector product (Pool.MatVec) that is the hot loop of the built-in
// engine. It is imported by internal/engine/llama and by tools that inspect
// model files; it imports nothing of PeerLLM.
//
// Parse validates the whole file before returning: every length and count is
// checked against the bytes that remain before anything is allocated, tensor
// shapes are checked for overflow and block alignment, and every tensor's data
// must lie inside the file. A malformed or hostile file yields an error that
// names the problem, never a panic or a huge allocation.
//
// The products' hot kernels have AVX2 versions in Go assembly
// (simd_amd64.s), chosen at start where the CPU has AVX2, FMA and F16C; they
// compute exactly the Go kernels' bits, so the choice affects speed only.
package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// Magic is the four bytes every GGUF file starts with.
const Magic = "GGUF"

// DefaultAlignment is the tensor data alignment when general.alignment is absent.
const DefaultAlignment = 32

// MaxDims is the largest number of dimensions a tensor may have (GGML_MAX_DIMS).
const MaxDims = 4

// maxNesting bounds how deep arrays of arrays may nest, so a hostile file
// cannot exhaust the stack.
const maxNesting = 32

// maxNestedElems bounds the elements of all arrays of arrays in a file: each
// takes 12 bytes on disk but about ten times that in memory, and real files
// (llama.cpp writes none) need few.
const maxNestedElems = 1 << 20

// File is a parsed GGUF file. Tensor data slices point into the memory the
// file was parsed from (the mapping, for Open); they are invalid after Close.
// Metadata values own their memory and stay valid. A File is safe for
// concurrent reads.
type File struct {
	Version   uint32
	Alignment uint64
	// DataOffset is the file offset where the tensor data section starts;
	// TensorInfo.Offset is relative to it.
	DataOffset uint64
	KV         []KV         // in file order
	Tensors    []TensorInfo // in file order

	kvIndex     map[string]int
	tensorIndex map[string]int
	unmap       func() error
}

// TensorInfo describes one tensor and holds its raw data.
type TensorInfo struct {
	Name string
	Type Type
	// Dims are the sizes (ggml's ne), fastest-varying first: a weight matrix
	// with rows of length n and m rows has Dims [n, m].
	Dims   []uint64
	Offset uint64 // relative to the start of the data section
	// Data is the tensor's bytes, a slice of the file's memory, exactly
	// Elements()/BlockSize*BlockBytes long.
	Data []byte
}

// Elements returns the number of elements (the product of Dims).
func (t *TensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// Open memory-maps the file at path read-only and parses it. Close the File to
// release the mapping.
func Open(path string) (*File, error) {
	data, unmap, err := mapFile(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	f, err := Parse(data)
	if err != nil {
		if uerr := unmap(); uerr != nil {
			err = errors.Join(err, uerr)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	f.unmap = unmap
	return f, nil
}

// Close releases the file's mapping, if it has one. Tensor data slices must not
// be used afterwards. Close is idempotent.
func (f *File) Close() error {
	if f.unmap == nil {
		return nil
	}
	u := f.unmap
	f.unmap = nil
	for i := range f.Tensors {
		f.Tensors[i].Data = nil
	}
	return u()
}

// Get returns the value of a metadata key.
func (f *File) Get(key string) (Value, bool) {
	i, ok := f.kvIndex[key]
	if !ok {
		return Value{}, false
	}
	return f.KV[i].Value, true
}

// String returns a string metadata value.
func (f *File) String(key string) (string, bool) {
	v, ok := f.Get(key)
	if !ok {
		return "", false
	}
	return v.Str()
}

// Uint returns a non-negative integer metadata value of any integer type.
func (f *File) Uint(key string) (uint64, bool) {
	v, ok := f.Get(key)
	if !ok {
		return 0, false
	}
	return v.Uint()
}

// Float returns a float or integer metadata value as float64.
func (f *File) Float(key string) (float64, bool) {
	v, ok := f.Get(key)
	if !ok {
		return 0, false
	}
	return v.Float()
}

// Bool returns a bool metadata value.
func (f *File) Bool(key string) (bool, bool) {
	v, ok := f.Get(key)
	if !ok {
		return false, false
	}
	return v.Bool()
}

// Strings returns a string-array metadata value.
func (f *File) Strings(key string) ([]string, bool) {
	v, ok := f.Get(key)
	if !ok {
		return nil, false
	}
	return v.Strings()
}

// Float32s returns a numeric-array metadata value as float32s.
func (f *File) Float32s(key string) ([]float32, bool) {
	v, ok := f.Get(key)
	if !ok {
		return nil, false
	}
	return v.Float32s()
}

// Int32s returns an integer-array metadata value as int32s.
func (f *File) Int32s(key string) ([]int32, bool) {
	v, ok := f.Get(key)
	if !ok {
		return nil, false
	}
	return v.Int32s()
}

// Tensor returns the tensor with the given name.
func (f *File) Tensor(name string) (*TensorInfo, bool) {
	i, ok := f.tensorIndex[name]
	if !ok {
		return nil, false
	}
	return &f.Tensors[i], true
}

// Parse parses and validates a GGUF file held in data. The returned File's
// tensor data slices alias data.
func Parse(data []byte) (*File, error) {
	f, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	return f, nil
}

func parse(data []byte) (*File, error) {
	r := &reader{b: data}
	if len(data) < 4 {
		return nil, fmt.Errorf("file too short (%d bytes) for the magic", len(data))
	}
	if !bytes.Equal(data[:4], []byte(Magic)) {
		return nil, fmt.Errorf("bad magic %q (not a GGUF file)", data[:4])
	}
	r.off = 4
	f := &File{Alignment: DefaultAlignment}
	var err error
	if f.Version, err = r.u32("version"); err != nil {
		return nil, err
	}
	switch {
	case f.Version == 1:
		return nil, errors.New("version 1 is not supported (only versions 2 and 3)")
	case f.Version == 2 || f.Version == 3:
	case bits.ReverseBytes32(f.Version) <= 3:
		return nil, fmt.Errorf("version %#x looks big-endian; only little-endian files are supported", f.Version)
	default:
		return nil, fmt.Errorf("unsupported version %d (only versions 2 and 3)", f.Version)
	}
	nTensors, err := r.u64("tensor count")
	if err != nil {
		return nil, err
	}
	nKV, err := r.u64("metadata count")
	if err != nil {
		return nil, err
	}
	// The smallest key-value pair is an empty key (8), a type (4) and a
	// one-byte value; the smallest tensor info is an empty name (8), n_dims
	// (4), one dim (8), a type (4) and an offset (8).
	if err := r.fits(nKV, 13, "metadata count"); err != nil {
		return nil, err
	}
	if err := r.fits(nTensors, 32, "tensor count"); err != nil {
		return nil, err
	}

	f.KV = make([]KV, 0, prealloc(nKV, 1024))
	f.kvIndex = make(map[string]int, prealloc(nKV, 1024))
	for i := range nKV {
		key, err := r.str(fmt.Sprintf("metadata key %d", i))
		if err != nil {
			return nil, err
		}
		if _, dup := f.kvIndex[key]; dup {
			return nil, fmt.Errorf("duplicate metadata key %q", key)
		}
		vt, err := r.u32(fmt.Sprintf("type of metadata key %q", key))
		if err != nil {
			return nil, err
		}
		v, err := r.value(ValueType(vt), 0)
		if err != nil {
			return nil, fmt.Errorf("metadata key %q: %w", key, err)
		}
		f.kvIndex[key] = len(f.KV)
		f.KV = append(f.KV, KV{Key: key, Value: v})
	}

	if v, ok := f.Get("general.alignment"); ok {
		a, isInt := v.Uint()
		if v.Type != ValueUint32 || !isInt {
			return nil, fmt.Errorf("general.alignment has type %s, want uint32", v.Type)
		}
		if a == 0 || a&(a-1) != 0 {
			return nil, fmt.Errorf("general.alignment %d is not a power of two", a)
		}
		f.Alignment = a
	}

	f.Tensors = make([]TensorInfo, 0, prealloc(nTensors, 4096))
	f.tensorIndex = make(map[string]int, prealloc(nTensors, 4096))
	sizes := make([]uint64, 0, prealloc(nTensors, 4096))
	for i := range nTensors {
		t, n, err := r.tensorInfo(i)
		if err != nil {
			return nil, err
		}
		sizes = append(sizes, n)
		if _, dup := f.tensorIndex[t.Name]; dup {
			return nil, fmt.Errorf("duplicate tensor name %q", t.Name)
		}
		f.tensorIndex[t.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, t)
	}

	// The data section starts at the next multiple of the alignment. A file
	// without tensors may end before that.
	start := (uint64(r.off) + f.Alignment - 1) / f.Alignment * f.Alignment
	size := uint64(len(data))
	if start > size {
		if len(f.Tensors) > 0 {
			return nil, fmt.Errorf("tensor data section starts at %d, past the end of the file (%d bytes)", start, size)
		}
		start = size
	}
	f.DataOffset = start
	avail := size - start
	for i := range f.Tensors {
		t := &f.Tensors[i]
		if t.Offset%f.Alignment != 0 {
			return nil, fmt.Errorf("tensor %s: offset %d is not a multiple of the alignment %d", t.Name, t.Offset, f.Alignment)
		}
		n := sizes[i]
		if t.Offset > avail || n > avail-t.Offset {
			return nil, fmt.Errorf("tensor %s: data past end of file (offset %d, size %d, data section %d bytes)", t.Name, t.Offset, n, avail)
		}
		lo := start + t.Offset
		t.Data = data[lo : lo+n : lo+n]
	}
	return f, nil
}

// reader decodes little-endian GGUF fields, checking every length against the
// bytes that remain.
type reader struct {
	b      []byte
	off    int
	nested uint64 // elements of arrays of arrays so far
}

// prealloc bounds the capacity reserved for a count read from the file.
// Slices grow by append beyond it, so memory follows the bytes actually
// parsed, not a number a hostile file claims.
func prealloc(n uint64, limit int) int {
	if n > uint64(limit) {
		return limit
	}
	return int(n)
}

func (r *reader) remaining() uint64 { return uint64(len(r.b) - r.off) }

func (r *reader) truncated(what string, n uint64) error {
	return fmt.Errorf("truncated file reading %s at offset %d (need %d bytes, %d left)", what, r.off, n, r.remaining())
}

// fits checks that count items of at least minSize bytes each can fit in the
// rest of the file.
func (r *reader) fits(count, minSize uint64, what string) error {
	if count > r.remaining()/minSize {
		return fmt.Errorf("%s %d at offset %d is impossible: the remaining %d bytes hold at most %d", what, count, r.off, r.remaining(), r.remaining()/minSize)
	}
	return nil
}

func (r *reader) take(n uint64, what string) ([]byte, error) {
	if n > r.remaining() {
		return nil, r.truncated(what, n)
	}
	b := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return b, nil
}

func (r *reader) u32(what string) (uint32, error) {
	b, err := r.take(4, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (r *reader) u64(what string) (uint64, error) {
	b, err := r.take(8, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

func (r *reader) str(what string) (string, error) {
	n, err := r.u64(what + " length")
	if err != nil {
		return "", err
	}
	if n > r.remaining() {
		return "", fmt.Errorf("%s length %d at offset %d exceeds the remaining %d bytes", what, n, r.off-8, r.remaining())
	}
	b, _ := r.take(n, what)
	return string(b), nil
}

func (r *reader) value(t ValueType, depth int) (Value, error) {
	switch {
	case t == ValueString:
		s, err := r.str("string value")
		if err != nil {
			return Value{}, err
		}
		return Value{Type: ValueString, str: s}, nil
	case t == ValueArray:
		return r.array(depth)
	case t.size() > 0:
		b, err := r.take(uint64(t.size()), t.String()+" value")
		if err != nil {
			return Value{}, err
		}
		return scalar(t, b), nil
	}
	return Value{}, fmt.Errorf("unknown value type %d at offset %d", uint32(t), r.off-4)
}

func (r *reader) array(depth int) (Value, error) {
	if depth >= maxNesting {
		return Value{}, fmt.Errorf("arrays nested deeper than %d", maxNesting)
	}
	et, err := r.u32("array element type")
	if err != nil {
		return Value{}, err
	}
	n, err := r.u64("array length")
	if err != nil {
		return Value{}, err
	}
	elem := ValueType(et)
	v := Value{Type: ValueArray, Elem: elem}
	switch {
	case elem == ValueString:
		if err := r.fits(n, 8, "string array length"); err != nil {
			return Value{}, err
		}
		v.strs = make([]string, 0, prealloc(n, 4096))
		for i := range n {
			s, err := r.str("string array element")
			if err != nil {
				return Value{}, fmt.Errorf("array element %d: %w", i, err)
			}
			v.strs = append(v.strs, s)
		}
	case elem == ValueArray:
		if err := r.fits(n, 12, "nested array length"); err != nil {
			return Value{}, err
		}
		if r.nested += n; r.nested > maxNestedElems {
			return Value{}, fmt.Errorf("more than %d elements in arrays of arrays", maxNestedElems)
		}
		v.arrs = make([]Value, 0, prealloc(n, 1024))
		for range n {
			a, err := r.array(depth + 1)
			if err != nil {
				return Value{}, err
			}
			v.arrs = append(v.arrs, a)
		}
	case elem.size() > 0:
		sz := uint64(elem.size())
		if err := r.fits(n, sz, elem.String()+" array length"); err != nil {
			return Value{}, err
		}
		b, _ := r.take(n*sz, "array")
		v.raw = bytes.Clone(b)
	default:
		return Value{}, fmt.Errorf("unknown array element type %d at offset %d", et, r.off-12)
	}
	v.n = int(n)
	return v, nil
}

// tensorInfo reads one tensor info and returns it with its data size in bytes.
func (r *reader) tensorInfo(i uint64) (TensorInfo, uint64, error) {
	name, err := r.str(fmt.Sprintf("tensor %d name", i))
	if err != nil {
		return TensorInfo{}, 0, err
	}
	fail := func(format string, a ...any) (TensorInfo, uint64, error) {
		return TensorInfo{}, 0, fmt.Errorf("tensor %s: %s", name, fmt.Sprintf(format, a...))
	}
	nd, err := r.u32("tensor " + name + " dimension count")
	if err != nil {
		return TensorInfo{}, 0, err
	}
	if nd == 0 || nd > MaxDims {
		return fail("%d dimensions (want 1 to %d)", nd, MaxDims)
	}
	t := TensorInfo{Name: name, Dims: make([]uint64, nd)}
	elems := uint64(1)
	for d := range t.Dims {
		if t.Dims[d], err = r.u64("tensor " + name + " dimensions"); err != nil {
			return TensorInfo{}, 0, err
		}
		if t.Dims[d] > 1<<62 {
			return fail("dimension %d is %d, too large", d, t.Dims[d])
		}
		hi, lo := bits.Mul64(elems, t.Dims[d])
		if hi != 0 || lo > 1<<62 {
			return fail("element count overflows (dims %v)", t.Dims[:d+1])
		}
		elems = lo
	}
	typ, err := r.u32("tensor " + name + " type")
	if err != nil {
		return TensorInfo{}, 0, err
	}
	t.Type = Type(typ)
	tr, ok := typeTraits[t.Type]
	if !ok {
		return fail("unknown tensor type %d", typ)
	}
	if t.Dims[0]%uint64(tr.blockSize) != 0 {
		return fail("row length %d is not a multiple of the %s block size %d", t.Dims[0], t.Type, tr.blockSize)
	}
	if t.Offset, err = r.u64("tensor " + name + " offset"); err != nil {
		return TensorInfo{}, 0, err
	}
	hi, nbytes := bits.Mul64(elems/uint64(tr.blockSize), uint64(tr.blockBytes))
	if hi != 0 {
		return fail("byte size of %d %s elements overflows", elems, t.Type)
	}
	return t, nbytes, nil
}
