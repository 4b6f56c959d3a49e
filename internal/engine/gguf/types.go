package gguf

import (
	"fmt"
	"math/bits"
)

// Type is a ggml tensor type id, as stored in a GGUF tensor info.
type Type uint32

// The ggml tensor types. Ids 4, 5 and 31–33, 36–38 were removed from ggml and
// are rejected as unknown.
const (
	TypeF32     Type = 0
	TypeF16     Type = 1
	TypeQ4_0    Type = 2
	TypeQ4_1    Type = 3
	TypeQ5_0    Type = 6
	TypeQ5_1    Type = 7
	TypeQ8_0    Type = 8
	TypeQ8_1    Type = 9
	TypeQ2_K    Type = 10
	TypeQ3_K    Type = 11
	TypeQ4_K    Type = 12
	TypeQ5_K    Type = 13
	TypeQ6_K    Type = 14
	TypeQ8_K    Type = 15
	TypeIQ2_XXS Type = 16
	TypeIQ2_XS  Type = 17
	TypeIQ3_XXS Type = 18
	TypeIQ1_S   Type = 19
	TypeIQ4_NL  Type = 20
	TypeIQ3_S   Type = 21
	TypeIQ2_S   Type = 22
	TypeIQ4_XS  Type = 23
	TypeI8      Type = 24
	TypeI16     Type = 25
	TypeI32     Type = 26
	TypeI64     Type = 27
	TypeF64     Type = 28
	TypeIQ1_M   Type = 29
	TypeBF16    Type = 30
	TypeTQ1_0   Type = 34
	TypeTQ2_0   Type = 35
	TypeMXFP4   Type = 39
)

// qk is the super-block size of the K-quants.
const qk = 256

type traits struct {
	name       string
	blockSize  int // elements per block
	blockBytes int // bytes per block
	supported  bool
}

// typeTraits mirrors ggml's type_traits (blck_size, type_size). A type with a
// zero blockSize is unknown.
var typeTraits = map[Type]traits{
	TypeF32:     {"F32", 1, 4, true},
	TypeF16:     {"F16", 1, 2, true},
	TypeQ4_0:    {"Q4_0", 32, 18, true},
	TypeQ4_1:    {"Q4_1", 32, 20, true},
	TypeQ5_0:    {"Q5_0", 32, 22, true},
	TypeQ5_1:    {"Q5_1", 32, 24, true},
	TypeQ8_0:    {"Q8_0", 32, 34, true},
	TypeQ8_1:    {"Q8_1", 32, 36, true},
	TypeQ2_K:    {"Q2_K", qk, 84, true},
	TypeQ3_K:    {"Q3_K", qk, 110, true},
	TypeQ4_K:    {"Q4_K", qk, 144, true},
	TypeQ5_K:    {"Q5_K", qk, 176, true},
	TypeQ6_K:    {"Q6_K", qk, 210, true},
	TypeQ8_K:    {"Q8_K", qk, 292, true},
	TypeIQ2_XXS: {"IQ2_XXS", qk, 66, false},
	TypeIQ2_XS:  {"IQ2_XS", qk, 74, false},
	TypeIQ3_XXS: {"IQ3_XXS", qk, 98, false},
	TypeIQ1_S:   {"IQ1_S", qk, 50, false},
	TypeIQ4_NL:  {"IQ4_NL", 32, 18, false},
	TypeIQ3_S:   {"IQ3_S", qk, 110, false},
	TypeIQ2_S:   {"IQ2_S", qk, 82, false},
	TypeIQ4_XS:  {"IQ4_XS", qk, 136, false},
	TypeI8:      {"I8", 1, 1, false},
	TypeI16:     {"I16", 1, 2, false},
	TypeI32:     {"I32", 1, 4, false},
	TypeI64:     {"I64", 1, 8, false},
	TypeF64:     {"F64", 1, 8, false},
	TypeIQ1_M:   {"IQ1_M", qk, 56, false},
	TypeBF16:    {"BF16", 1, 2, true},
	TypeTQ1_0:   {"TQ1_0", qk, 54, false},
	TypeTQ2_0:   {"TQ2_0", qk, 66, false},
	TypeMXFP4:   {"MXFP4", 32, 17, false},
}

// String returns ggml's name for the type ("Q4_K"), or "type(N)" if unknown.
func (t Type) String() string {
	if tr, ok := typeTraits[t]; ok {
		return tr.name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// Known reports whether t is a ggml type this package knows the layout of.
// A file holding a known but unsupported type still parses.
func (t Type) Known() bool {
	_, ok := typeTraits[t]
	return ok
}

// BlockSize returns the number of elements per block (1 for plain floats),
// or 0 if the type is unknown.
func (t Type) BlockSize() int { return typeTraits[t].blockSize }

// BlockBytes returns the number of bytes per block, or 0 if the type is unknown.
func (t Type) BlockBytes() int { return typeTraits[t].blockBytes }

// Supported reports whether Dequantize and MatVec handle the type.
func (t Type) Supported() bool { return typeTraits[t].supported }

// RowBytes returns the bytes taken by n consecutive elements of type t. n must
// be a non-negative multiple of the type's block size.
func RowBytes(t Type, n int) (int, error) {
	tr, ok := typeTraits[t]
	if !ok {
		return 0, fmt.Errorf("gguf: unknown tensor type %s", t)
	}
	if n < 0 || n%tr.blockSize != 0 {
		return 0, fmt.Errorf("gguf: %d elements is not a multiple of the %s block size %d", n, t, tr.blockSize)
	}
	hi, lo := bits.Mul64(uint64(n/tr.blockSize), uint64(tr.blockBytes))
	if hi != 0 || lo > uint64(maxInt) {
		return 0, fmt.Errorf("gguf: %d elements of %s overflow", n, t)
	}
	return int(lo), nil
}

const maxInt = int(^uint(0) >> 1)
