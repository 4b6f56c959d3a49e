//go:build !linux

package main

import "syscall"

// childProcAttr puts a demo child in its own process group, so Ctrl-C
// reaches only the demo, which stops the children in order.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
