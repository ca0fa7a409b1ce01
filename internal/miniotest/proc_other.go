//go:build !linux

package miniotest

import "syscall"

// procAttr puts the server in its own process group, so that stopping it
// stops what it spawned.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
