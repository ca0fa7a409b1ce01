//go:build unix && !linux

package miniotest

import "syscall"

func setDeathSignal(*syscall.SysProcAttr) {}
