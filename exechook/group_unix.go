//go:build unix

package exechook

import (
	"os/exec"
	"syscall"
)

// inGroup starts the command in a process group of its own, and makes
// its cancellation kill the whole group: the command and its children.
func inGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
