//go:build !linux

package tmpfstest

import "testing"

// Mount mounts a tmpfs of size bytes on a new directory and returns it.
// Off Linux there is none to mount: it skips t (fails it under CI=true).
func Mount(t testing.TB, size int64) string {
	t.Helper()
	cannotMount(t)
	return ""
}

// Resize changes the size of the tmpfs Mount mounted on dir. Off Linux,
// Mount has skipped the test before this can be called.
func Resize(t testing.TB, dir string, size int64) {
	t.Helper()
	t.Fatal("tmpfstest.Resize: no tmpfs on this system (Mount skips)")
}

// Free returns the bytes free on dir's filesystem for unprivileged users.
// Off Linux, Mount has skipped the test before this can be called.
func Free(t testing.TB, dir string) uint64 {
	t.Helper()
	t.Fatal("tmpfstest.Free: no tmpfs on this system (Mount skips)")
	return 0
}

// Fill writes a file named path until at most leave bytes are free on its
// filesystem. Off Linux, Mount has skipped the test before this can be
// called.
func Fill(t testing.TB, path string, leave uint64) int64 {
	t.Helper()
	t.Fatal("tmpfstest.Fill: no tmpfs on this system (Mount skips)")
	return 0
}
