//go:build !(linux || darwin || freebsd)

package pebble

// freeBytes cannot read the free space on this system: the threshold is
// not enforced, and Pebble meets a full disk itself.
func freeBytes(string) (uint64, error) {
	return 0, errSpaceUnknown
}
