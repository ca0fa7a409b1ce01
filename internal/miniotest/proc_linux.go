package miniotest

import "syscall"

// procAttr puts the server in its own process group, so that stopping it
// stops what it spawned, and has the kernel kill it if the process that
// started it dies without stopping it (a test binary killed by a timeout).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
