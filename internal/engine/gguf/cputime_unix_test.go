//go:build unix

package gguf_test

import (
	"syscall"
	"time"
)

// cpuTime is the user+system CPU time the process has used: on a shared
// machine it does not count time spent waiting for a core.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
