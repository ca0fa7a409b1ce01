//go:build !linux

package lambdart

import "syscall"

// procAttr puts a function process in its own process group, so that
// stopping it stops what it spawned.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
