package gguf_test

import (
	"bytes"
	"encoding/binary"
	"math"
)

// enc writes little-endian GGUF fields; tests use it to build valid and broken
// files byte by byte.
type enc struct{ bytes.Buffer }

func (e *enc) u8(v uint8)   { e.WriteByte(v) }
func (e *enc) u16(v uint16) { e.Write(binary.LittleEndian.AppendUint16(nil, v)) }
func (e *enc) u32(v uint32) { e.Write(binary.LittleEndian.AppendUint32(nil, v)) }
func (e *enc) u64(v uint64) { e.Write(binary.LittleEndian.AppendUint64(nil, v)) }
func (e *enc) f32(v float32) {
	e.u32(math.Float32bits(v))
}
func (e *enc) str(s string) { e.u64(uint64(len(s))); e.WriteString(s) }

// kvEnc is one encoded key-value pair.
type kvEnc struct {
	key string
	typ uint32
	val func(e *enc) // writes the value after the type
}

// tensorSpec describes one tensor info record.
type tensorSpec struct {
	name   string
	dims   []uint64
	typ    uint32
	offset uint64
}

// fileSpec is everything needed to write a (possibly broken) GGUF file.
type fileSpec struct {
	magic     string
	version   uint32
	nTensors  *uint64 // overrides len(tensors) in the header
	nKV       *uint64 // overrides len(kvs) in the header
	kvs       []kvEnc
	tensors   []tensorSpec
	alignment uint64 // padding before data; 0 means 32
	data      []byte
}

func (s fileSpec) bytes() []byte {
	var e enc
	magic := s.magic
	if magic == "" {
		magic = "GGUF"
	}
	e.WriteString(magic)
	e.u32(s.version)
	nt, nk := uint64(len(s.tensors)), uint64(len(s.kvs))
	if s.nTensors != nil {
		nt = *s.nTensors
	}
	if s.nKV != nil {
		nk = *s.nKV
	}
	e.u64(nt)
	e.u64(nk)
	for _, kv := range s.kvs {
		e.str(kv.key)
		e.u32(kv.typ)
		kv.val(&e)
	}
	for _, t := range s.tensors {
		e.str(t.name)
		e.u32(uint32(len(t.dims)))
		for _, d := range t.dims {
			e.u64(d)
		}
		e.u32(t.typ)
		e.u64(t.offset)
	}
	align := s.alignment
	if align == 0 {
		align = 32
	}
	for uint64(e.Len())%align != 0 {
		e.u8(0)
	}
	e.Write(s.data)
	return e.Bytes()
}

func u64p(v uint64) *uint64 { return &v }

func kvU32(key string, v uint32) kvEnc {
	return kvEnc{key, 4, func(e *enc) { e.u32(v) }}
}

func kvStr(key, v string) kvEnc {
	return kvEnc{key, 8, func(e *enc) { e.str(v) }}
}

// allValueKVs has one key of every metadata value type, including arrays of
// strings, numbers and arrays.
func allValueKVs() []kvEnc {
	return []kvEnc{
		{"t.u8", 0, func(e *enc) { e.u8(200) }},
		{"t.i8", 1, func(e *enc) { e.u8(0xfe) }}, // -2
		{"t.u16", 2, func(e *enc) { e.u16(65000) }},
		{"t.i16", 3, func(e *enc) { e.u16(0xfffd) }}, // -3
		kvU32("t.u32", 4000000000),
		{"t.i32", 5, func(e *enc) { e.u32(0xfffffffc) }}, // -4
		{"t.f32", 6, func(e *enc) { e.f32(0.5) }},
		{"t.bool", 7, func(e *enc) { e.u8(1) }},
		kvStr("t.str", "héllo"),
		{"t.u64", 10, func(e *enc) { e.u64(1 << 63) }},
		{"t.i64", 11, func(e *enc) { e.u64(0xfffffffffffffffb) }}, // -5
		{"t.f64", 12, func(e *enc) { e.u64(math.Float64bits(-2.25)) }},
		{"t.strs", 9, func(e *enc) { e.u32(8); e.u64(3); e.str("a"); e.str(""); e.str("ccc") }},
		{"t.f32s", 9, func(e *enc) { e.u32(6); e.u64(2); e.f32(1.5); e.f32(-3) }},
		{"t.i32s", 9, func(e *enc) { e.u32(5); e.u64(3); e.u32(1); e.u32(0xffffffff); e.u32(7) }},
		{"t.nested", 9, func(e *enc) {
			e.u32(9)
			e.u64(2)
			e.u32(4)
			e.u64(2)
			e.u32(10)
			e.u32(20)
			e.u32(8)
			e.u64(1)
			e.str("x")
		}},
		{"t.empty", 9, func(e *enc) { e.u32(0); e.u64(0) }},
	}
}

// validSpec is a small well-formed v3 file with one key of every value type
// and two tensors (F32 4×2 and Q8_0 32×1).
func validSpec() fileSpec {
	var data enc
	for i := range 8 {
		data.f32(float32(i) - 3.5)
	}
	for data.Len()%32 != 0 {
		data.u8(0)
	}
	q8 := data.Len()
	data.u16(0x3c00) // d = 1.0
	for i := range 32 {
		data.u8(uint8(int8(i - 16)))
	}
	return fileSpec{
		version: 3,
		kvs:     append([]kvEnc{kvStr("general.architecture", "llama"), kvU32("general.alignment", 32)}, allValueKVs()...),
		tensors: []tensorSpec{
			{name: "a.weight", dims: []uint64{4, 2}, typ: 0, offset: 0},
			{name: "b.weight", dims: []uint64{32, 1}, typ: 8, offset: uint64(q8)},
		},
		data: data.Bytes(),
	}
}
