//go:build !linux

package main

// stopWithParent does nothing where the kernel cannot signal a parent's
// death: stop the run itself.
func stopWithParent() {}
