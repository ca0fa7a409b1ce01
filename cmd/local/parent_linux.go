package main

import (
	"os"
	"syscall"
)

// stopWithParent has the kernel send this process SIGTERM when its parent
// dies (make killed, even with SIGKILL), so that it stops what it started
// instead of running on as an orphan.
func stopWithParent() {
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0)
	if os.Getppid() == 1 { // the parent died before the call
		_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
	}
}
