//go:build linux

package miniotest

import "syscall"

// setDeathSignal asks the kernel to kill the server if the process that
// started it dies without stopping it (a test binary killed by a timeout).
func setDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
