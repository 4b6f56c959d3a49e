package main

import "syscall"

// childProcAttr puts a demo child in its own process group (Ctrl-C reaches
// only the demo, which stops the children in order) and asks the kernel to
// send it SIGTERM if the demo dies without cleaning up.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
