package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// maxLineBytes bounds one line of the --jsonl tools' input, so a file with
// no newlines cannot take all memory.
const maxLineBytes = 64 << 20

// readLine returns the next line of r including its newline, like
// ReadBytes('\n'), but refuses a line longer than max bytes.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > max {
			return nil, fmt.Errorf("line longer than %d MiB", max>>20)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == nil || errors.Is(err, io.EOF) {
			return line, err
		}
		return line, err
	}
}
