package lambdart

import "syscall"

// procAttr puts a function process in its own process group, so that
// stopping it stops what it spawned, and has the kernel kill it when the
// process that started it dies without stopping it (a local run killed
// with SIGKILL, a test binary killed by its timeout).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
