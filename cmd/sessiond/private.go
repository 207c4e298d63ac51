package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// makePrivate makes the data directory private to the server's user: every
// directory under it 0700 and every file 0600, fixing what an older
// version, a copy or a hand left wider. It follows no symbolic link and
// returns how many modes it changed. A missing dir is created.
func makePrivate(dir string) (fixed int, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, err
	}
	if dir, err = filepath.EvalSymlinks(dir); err != nil { // a data directory may be a link to elsewhere
		return 0, err
	}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking (Pebble's temporary files)
			}
			return err
		}
		want := fs.FileMode(0o600)
		switch {
		case d.IsDir():
			want = 0o700
		case !d.Type().IsRegular():
			return nil // symbolic links, sockets: not ours to change
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		if info.Mode().Perm() == want {
			return nil
		}
		if err := os.Chmod(path, want); err != nil { //nolint:gosec // G302: 0700 is right for a directory
			return err
		}
		fixed++
		return nil
	})
	return fixed, err
}
