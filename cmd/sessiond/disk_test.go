package main

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cpebble "github.com/cockroachdb/pebble/v2"
	"go.yaml.in/yaml/v3"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/pebble"
	"github.com/sessiond/sessiond/sessiondtest"
)

// modes returns the permission bits of everything under dir, by path.
func modes(t *testing.T, dir string) map[string]fs.FileMode {
	t.Helper()
	m := map[string]fs.FileMode{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		m[path] = info.Mode().Perm()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The data directory and everything in it are private to the server's
// user after every start, whether the API key was generated or configured,
// including files an older version or an operator left wider.
func TestDataDirPrivate(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		link bool // the data directory is a symbolic link to the real one
	}{
		{"generated key", nil, false},
		{"configured key", []string{"--api-key", "sdk_test_configured_key_of_32_bytes_at_least"}, false},
		{"linked directory", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			arg := dir
			if tc.link {
				arg = filepath.Join(t.TempDir(), "link")
				if err := os.Symlink(dir, arg); err != nil {
					t.Fatal(err)
				}
			}
			st, err := pebble.Open(pebble.Options{Dir: filepath.Join(dir, "store")})
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			// As an older version or a careless copy leaves it.
			if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644); err != nil { //nolint:gosec // G306: the point
				t.Fatal(err)
			}
			for path, mode := range modes(t, dir) {
				want := fs.FileMode(0o644)
				if mode.IsDir() || path == dir || filepath.Ext(path) == "" && isDir(t, path) {
					want = 0o755
				}
				if err := os.Chmod(path, want); err != nil {
					t.Fatal(err)
				}
			}

			_, _, _, stop := serveInProcess(t, append([]string{"--data-dir", arg}, tc.args...)...)
			if code := stop(); code != 0 {
				t.Fatalf("serve exited with %d", code)
			}
			got := modes(t, dir)
			if len(got) < 5 {
				t.Fatalf("only %d entries under %s: %v", len(got), dir, got)
			}
			for path, mode := range got {
				want := fs.FileMode(0o600)
				if isDir(t, path) {
					want = 0o700
				}
				if mode != want {
					t.Errorf("%s: mode %v, want %v", path, mode, want)
				}
			}
			_, err = os.Stat(filepath.Join(dir, "api_key"))
			if generated := tc.args == nil; generated == errors.Is(err, fs.ErrNotExist) {
				t.Errorf("api_key file: %v (generated key: %v)", err, generated)
			}
		})
	}
}

func isDir(t *testing.T, path string) bool {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.IsDir()
}

// `sessiond store check` lists a corrupt record and exits 1; the server
// starts with the other records, quarantines that one, logs it and counts
// it in /metrics; check then lists it as quarantined, and says the store
// is in use while the server runs.
func TestStoreCheckCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	storeDir := filepath.Join(dir, "store")
	st, err := pebble.Open(pebble.Options{Dir: storeDir})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range 3 {
		s, _ := sessiondtest.NewSession("alice", time.Now())
		s.ExpiresAt = time.Now().Add(time.Hour)
		if _, err := st.Create(context.Background(), sessiond.Change{Session: s}, sessiond.Limit{}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := cli(t, noEnv, "store", "check", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "sessions:    3 records") || !strings.Contains(out, "\nok\n") {
		t.Fatalf("check of a sound store: exit %d\n%s%s", code, out, errOut)
	}

	db, err := cpebble.Open(storeDir, &cpebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("s"+ids[1]), []byte("not a session"), cpebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	code, out, errOut = cli(t, noEnv, "store", "check", "--data-dir", dir)
	if code != 1 || !strings.Contains(out, "sessions:    2 records") || !strings.Contains(out, "corrupt:     1 (quarantined when the server next starts)") ||
		!strings.Contains(out, `session "`+ids[1]+`"  13 bytes  corrupt record`) || !strings.Contains(errOut, "1 corrupt, 0 quarantined") {
		t.Fatalf("check of a store with a corrupt record: exit %d\n%s%s", code, out, errOut)
	}

	addr, _, logs, stop := serveInProcess(t, "--data-dir", dir)
	key := readKey(t, dir)
	c := clientFor(addr, key)
	for i, id := range ids {
		_, err := c.Get(context.Background(), id)
		if i == 1 && !errIs(err, sessiond.ErrNotFound) || i != 1 && err != nil {
			t.Errorf("GET session %d of 3 (%s): %v", i+1, id, err)
		}
	}
	if !strings.Contains(logs.String(), `"level":"ERROR","msg":"pebble: a stored record does not decode: quarantined; the store opens without it","component":"pebble","kind":"session","record":"sid:`+sessiond.LogID(ids[1])) {
		t.Errorf("no error line naming the quarantined record:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "sessiond store check") {
		t.Errorf("no log line pointing at store check:\n%s", logs)
	}
	if m := scrape(t, addr); !strings.Contains(m, "\nsessiond_store_quarantined_records 1\n") {
		t.Errorf("/metrics lacks sessiond_store_quarantined_records 1:\n%s", grepLines(m, "sessiond_store_"))
	}
	code, _, errOut = cli(t, noEnv, "store", "check", "--data-dir", dir)
	if code != 1 || !strings.Contains(errOut, "in use by another process") {
		t.Errorf("check while the server runs: exit %d, %s", code, errOut)
	}
	if code := stop(); code != 0 {
		t.Fatalf("serve exited with %d", code)
	}

	code, out, _ = cli(t, noEnv, "store", "check", "--data-dir", dir)
	if code != 1 || !strings.Contains(out, "corrupt:     0") || !strings.Contains(out, "quarantined: 1") ||
		!strings.Contains(out, `session "`+ids[1]+`"  13 bytes  corrupt record`) {
		t.Fatalf("check after the server quarantined the record: exit %d\n%s", code, out)
	}
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestMinFreeSpaceSetting(t *testing.T) {
	for in, want := range map[string]ByteSize{
		"512MiB": 512 << 20, "1GiB": 1 << 30, "1gib": 1 << 30, "0": 0, "1.5GiB": 3 << 29, "10MB": 10_000_000,
		"4096": 4096, "64 MiB": 64 << 20, "2G": 2 << 30, "100B": 100,
	} {
		if got, err := ParseByteSize(in); err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "lots", "-1MiB", "MiB", "1 PiB"} {
		if got, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) = %v, want an error", in, got)
		}
	}

	cfgOf := func(getenv func(string) string, args ...string) Config {
		t.Helper()
		code, out, errOut := cli(t, getenv, append([]string{"config"}, args...)...)
		if code != 0 {
			t.Fatalf("config %v: exit %d: %s", args, code, errOut)
		}
		var c Config
		if err := yaml.Unmarshal([]byte(out), &c); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return c
	}
	if c := cfgOf(noEnv); c.MinFreeSpace != 256<<20 {
		t.Errorf("default min_free_space %v, want 256MiB", c.MinFreeSpace)
	}
	file := writeFile(t, "c.yaml", "min_free_space: 1GiB\n")
	if c := cfgOf(noEnv, "--config", file); c.MinFreeSpace != 1<<30 {
		t.Errorf("from the file: %v", c.MinFreeSpace)
	}
	env := envOf(map[string]string{"SESSIOND_MIN_FREE_SPACE": "512MiB", "SESSIOND_CONFIG": file})
	if c := cfgOf(env); c.MinFreeSpace != 512<<20 {
		t.Errorf("from the environment over the file: %v", c.MinFreeSpace)
	}
	if c := cfgOf(env, "--min-free-space", "0"); c.MinFreeSpace != 0 {
		t.Errorf("flag over the environment: %v", c.MinFreeSpace)
	}
	code, _, errOut := cli(t, noEnv, "config", "--config", writeFile(t, "bad.yaml", "retention: 1h\nmin_free_space: plenty\n"))
	if code != 2 || !strings.Contains(errOut, `line 2: min_free_space: "plenty" is not a size like "512MiB", "1GiB" or "0"`) {
		t.Errorf("a bad size in the file: exit %d, %s", code, errOut)
	}
	code, _, errOut = cli(t, noEnv, "config", "--min-free-space", "lots")
	if code != 2 || !strings.Contains(errOut, `min-free-space: "lots" is not a size`) {
		t.Errorf("a bad size flag: exit %d, %s", code, errOut)
	}
}

func readKey(t *testing.T, dataDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "api_key"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func clientFor(addr, key string) *client.Client { return client.New(addr, key) }

func errIs(err, target error) bool { return errors.Is(err, target) }
