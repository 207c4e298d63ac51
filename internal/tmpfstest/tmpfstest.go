// Package tmpfstest gives tests a small filesystem of their own to fill: a
// tmpfs mounted for the test and unmounted after it. Mounting needs root
// on Linux; elsewhere the test is skipped, except under CI=true, where it
// fails, so that CI cannot pass by skipping it.
//
// The package builds on every system, so that the tests using it compile
// everywhere: off Linux, Mount skips (tmpfstest_other.go).
package tmpfstest

import (
	"fmt"
	"os"
	"runtime"
	"testing"
)

// cannotMount skips t, or fails it under CI=true, saying why no tmpfs can
// be mounted here.
func cannotMount(t testing.TB) {
	t.Helper()
	msg := fmt.Sprintf("mounting a tmpfs needs root on Linux (this is %s, uid %d)", runtime.GOOS, os.Geteuid())
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; CI must run this test, not skip it")
	}
	t.Skip(msg)
}
