package main

import (
	"bufio"
	"io"
	"strings"
	"testing"
)

func TestReadLineBounds(t *testing.T) {
	r := bufio.NewReaderSize(strings.NewReader("short\n"+strings.Repeat("x", 100)+"\nlast"), 16)
	if b, err := readLine(r, 50); err != nil || string(b) != "short\n" {
		t.Fatalf("%q %v", b, err)
	}
	if b, err := readLine(r, 50); err == nil || b != nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("over-long line: %q %v", b, err)
	}
	r = bufio.NewReaderSize(strings.NewReader(strings.Repeat("y", 40)+"\nlast"), 16)
	if b, err := readLine(r, 50); err != nil || len(b) != 41 {
		t.Fatalf("line across buffer fills: %d %v", len(b), err)
	}
	if b, err := readLine(r, 50); err != io.EOF || string(b) != "last" {
		t.Fatalf("last line: %q %v", b, err)
	}
}
