//go:build !unix

package main

import "time"

// cpuTime is not measured on this OS: CPU figures are left out.
func cpuTime() time.Duration { return 0 }
