//go:build linux || darwin || freebsd

package pebble

import "syscall"

// freeBytes is the space on dir's filesystem available to unprivileged
// users (root may use a reserve beyond it).
func freeBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil //nolint:gosec,unconvert // G115: block counts and sizes are not negative; the field types vary by system
}
