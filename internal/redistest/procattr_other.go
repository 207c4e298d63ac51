//go:build !linux && !windows

package redistest

import "syscall"

// procAttr starts a server in a process group of its own. Off Linux there
// is no parent-death signal: a test binary that dies leaves it running.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
