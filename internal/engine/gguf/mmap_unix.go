//go:build unix

package gguf

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// mapFile maps the file read-only. An empty file maps to a nil slice.
func mapFile(path string) ([]byte, func() error, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, nil, err
	}
	size := st.Size()
	if size == 0 {
		return nil, func() error { return nil }, nil
	}
	if size < 0 || size != int64(int(size)) {
		return nil, nil, fmt.Errorf("file size %d cannot be mapped", size)
	}
	data, err := syscall.Mmap(int(fd.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("mmap: %w", err)
	}
	return data, func() error {
		if err := syscall.Munmap(data); err != nil {
			return errors.Join(errors.New("munmap"), err)
		}
		return nil
	}, nil
}
