package redistest

import "syscall"

// procAttr starts a server in a process group of its own, killed if the
// thread that started it (the spawner's, which lives as long as the test
// binary) dies.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
