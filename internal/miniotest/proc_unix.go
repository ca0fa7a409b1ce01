//go:build unix

package miniotest

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the server in its own process group so that stopping it
// also stops anything it spawned.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setDeathSignal(cmd.SysProcAttr)
}

// killGroup signals the whole process group of cmd.
func killGroup(cmd *exec.Cmd, sig syscall.Signal) {
	if cmd.Process == nil {
		return
	}
	if err := syscall.Kill(-cmd.Process.Pid, sig); err != nil {
		_ = cmd.Process.Signal(sig)
	}
}

func terminate(cmd *exec.Cmd) { killGroup(cmd, syscall.SIGTERM) }
func kill(cmd *exec.Cmd)      { killGroup(cmd, syscall.SIGKILL) }
