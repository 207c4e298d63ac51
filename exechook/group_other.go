//go:build !unix

package exechook

import "os/exec"

// inGroup leaves the command's cancellation as exec has it: the command
// alone is killed (its children are not, on this system).
func inGroup(*exec.Cmd) {}
