package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ValueType is the type tag of a GGUF metadata value.
type ValueType uint32

// The GGUF metadata value types.
const (
	ValueUint8   ValueType = 0
	ValueInt8    ValueType = 1
	ValueUint16  ValueType = 2
	ValueInt16   ValueType = 3
	ValueUint32  ValueType = 4
	ValueInt32   ValueType = 5
	ValueFloat32 ValueType = 6
	ValueBool    ValueType = 7
	ValueString  ValueType = 8
	ValueArray   ValueType = 9
	ValueUint64  ValueType = 10
	ValueInt64   ValueType = 11
	ValueFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"}

// String returns the GGUF name of the value type ("uint32").
func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("value_type(%d)", uint32(t))
}

// size returns the encoded size of a fixed-size scalar type, 0 for string and
// array.
func (t ValueType) size() int {
	switch t {
	case ValueUint8, ValueInt8, ValueBool:
		return 1
	case ValueUint16, ValueInt16:
		return 2
	case ValueUint32, ValueInt32, ValueFloat32:
		return 4
	case ValueUint64, ValueInt64, ValueFloat64:
		return 8
	}
	return 0
}

func (t ValueType) isInt() bool {
	switch t {
	case ValueUint8, ValueInt8, ValueUint16, ValueInt16, ValueUint32, ValueInt32, ValueUint64, ValueInt64:
		return true
	}
	return false
}

func (t ValueType) isSigned() bool {
	return t == ValueInt8 || t == ValueInt16 || t == ValueInt32 || t == ValueInt64
}

func (t ValueType) isFloat() bool { return t == ValueFloat32 || t == ValueFloat64 }

// KV is one metadata key and its value.
type KV struct {
	Key   string
	Value Value
}

// Value is a GGUF metadata value: a scalar, a string or an array (possibly of
// arrays). The zero Value has type uint8 and value 0. Values own their memory:
// they stay valid after File.Close.
type Value struct {
	Type ValueType
	// Elem is the element type when Type is ValueArray.
	Elem ValueType

	bits uint64   // integer (sign-extended if signed), bool 0/1, or float64 bits
	str  string   // ValueString
	n    int      // array length
	raw  []byte   // array of fixed-size scalars, little-endian as in the file
	strs []string // array of strings
	arrs []Value  // array of arrays
}

// Uint returns an integer value as uint64. It fails for non-integers and
// negative values.
func (v Value) Uint() (uint64, bool) {
	if !v.Type.isInt() || (v.Type.isSigned() && int64(v.bits) < 0) {
		return 0, false
	}
	return v.bits, true
}

// Int returns an integer value as int64. It fails for non-integers and for
// uint64 values above MaxInt64.
func (v Value) Int() (int64, bool) {
	if !v.Type.isInt() || (v.Type == ValueUint64 && v.bits > math.MaxInt64) {
		return 0, false
	}
	return int64(v.bits), true
}

// Float returns a float or integer value as float64.
func (v Value) Float() (float64, bool) {
	switch {
	case v.Type.isFloat():
		return math.Float64frombits(v.bits), true
	case v.Type == ValueUint64:
		return float64(v.bits), true
	case v.Type.isInt():
		return float64(int64(v.bits)), true
	}
	return 0, false
}

// Bool returns a bool value.
func (v Value) Bool() (bool, bool) {
	if v.Type != ValueBool {
		return false, false
	}
	return v.bits != 0, true
}

// Str returns a string value.
func (v Value) Str() (string, bool) {
	if v.Type != ValueString {
		return "", false
	}
	return v.str, true
}

// Len returns the number of elements of an array, 0 for a scalar.
func (v Value) Len() int {
	if v.Type != ValueArray {
		return 0
	}
	return v.n
}

// Index returns element i of an array. It panics if v is not an array or i is
// out of range, like a slice index.
func (v Value) Index(i int) Value {
	if v.Type != ValueArray || i < 0 || i >= v.n {
		panic(fmt.Sprintf("gguf: index %d of %s value of length %d", i, v.Type, v.Len()))
	}
	switch v.Elem {
	case ValueString:
		return Value{Type: ValueString, str: v.strs[i]}
	case ValueArray:
		return v.arrs[i]
	}
	sz := v.Elem.size()
	return scalar(v.Elem, v.raw[i*sz:])
}

// Strings returns an array of strings.
func (v Value) Strings() ([]string, bool) {
	if v.Type != ValueArray || v.Elem != ValueString {
		return nil, false
	}
	return v.strs, true
}

// Float32s returns a numeric array as float32s (a fresh slice).
func (v Value) Float32s() ([]float32, bool) {
	if v.Type != ValueArray || !(v.Elem.isFloat() || v.Elem.isInt()) {
		return nil, false
	}
	out := make([]float32, v.n)
	if v.Elem == ValueFloat32 {
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(v.raw[4*i:]))
		}
		return out, true
	}
	for i := range out {
		f, _ := v.Index(i).Float()
		out[i] = float32(f)
	}
	return out, true
}

// Int32s returns an integer array as int32s (a fresh slice). It fails if an
// element does not fit in int32.
func (v Value) Int32s() ([]int32, bool) {
	if v.Type != ValueArray || !v.Elem.isInt() {
		return nil, false
	}
	out := make([]int32, v.n)
	for i := range out {
		e := v.Index(i)
		x, ok := e.Int()
		if !ok || x < math.MinInt32 || x > math.MaxInt32 {
			return nil, false
		}
		out[i] = int32(x)
	}
	return out, true
}

// String formats the value for humans: numbers and bools as Go prints them,
// strings quoted, arrays as [a b c] (long arrays elided).
func (v Value) String() string {
	switch {
	case v.Type == ValueString:
		return strconv.Quote(v.str)
	case v.Type == ValueBool:
		return strconv.FormatBool(v.bits != 0)
	case v.Type == ValueFloat32:
		return strconv.FormatFloat(math.Float64frombits(v.bits), 'g', -1, 32)
	case v.Type == ValueFloat64:
		return strconv.FormatFloat(math.Float64frombits(v.bits), 'g', -1, 64)
	case v.Type == ValueUint64:
		return strconv.FormatUint(v.bits, 10)
	case v.Type.isInt():
		return strconv.FormatInt(int64(v.bits), 10)
	case v.Type == ValueArray:
		var b strings.Builder
		b.WriteByte('[')
		for i := 0; i < v.n && i < 8; i++ {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(v.Index(i).String())
		}
		if v.n > 8 {
			fmt.Fprintf(&b, " ... (%d %s)", v.n, v.Elem)
		}
		b.WriteByte(']')
		return b.String()
	}
	return fmt.Sprintf("<%s>", v.Type)
}

// scalar decodes a fixed-size scalar of type t from the start of b.
func scalar(t ValueType, b []byte) Value {
	v := Value{Type: t}
	switch t {
	case ValueUint8, ValueBool:
		v.bits = uint64(b[0])
	case ValueInt8:
		v.bits = uint64(int64(int8(b[0])))
	case ValueUint16:
		v.bits = uint64(binary.LittleEndian.Uint16(b))
	case ValueInt16:
		v.bits = uint64(int64(int16(binary.LittleEndian.Uint16(b))))
	case ValueUint32:
		v.bits = uint64(binary.LittleEndian.Uint32(b))
	case ValueInt32:
		v.bits = uint64(int64(int32(binary.LittleEndian.Uint32(b))))
	case ValueFloat32:
		v.bits = math.Float64bits(float64(math.Float32frombits(binary.LittleEndian.Uint32(b))))
	case ValueUint64, ValueInt64, ValueFloat64:
		v.bits = binary.LittleEndian.Uint64(b)
	}
	return v
}
