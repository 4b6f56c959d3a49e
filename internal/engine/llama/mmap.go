package llama

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mapping is a read-only memory map of a whole file.
type mapping struct {
	data []byte
}

// mapFile maps path read-only. The file descriptor is closed at once; the
// mapping stays valid until unmap.
func mapFile(path string) (*mapping, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	if size <= 0 {
		return nil, fmt.Errorf("%s: empty file", path)
	}
	if int64(int(size)) != size {
		return nil, fmt.Errorf("%s: file too large to map", path)
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap %s: %w", path, err)
	}
	return &mapping{data: data}, nil
}

func (m *mapping) unmap() error {
	if m == nil || m.data == nil {
		return nil
	}
	err := unix.Munmap(m.data)
	m.data = nil
	return err
}

// f32s views b (little-endian, 4-byte aligned) as float32s without copying.
// Callers check alignment; a misaligned view is copied instead.
func f32s(b []byte) []float32 {
	if len(b) == 0 {
		return nil
	}
	if uintptr(unsafe.Pointer(&b[0]))%4 != 0 {
		out := make([]float32, len(b)/4)
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), len(out)*4), b)
		return out
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)
}
