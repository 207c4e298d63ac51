package pebble

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/codec"
	"github.com/sessiond/sessiond/sessiondtest"
)

// emptyStore makes a store of the current format with nothing in it, and
// returns its directory: the tests then write records of older formats
// into it.
func emptyStore(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	st, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A store written by the second format (connections inside session
// records) opens with every connection in a record of its own, and the
// session records rewritten: nothing of a live session's connections is
// lost, and an ended session's are dropped.
func TestMigratesConnectionsOutOfSessions(t *testing.T) {
	dir := emptyStore(t)
	live, _ := sessiondtest.NewSession("alice", sessiondtest.Epoch)
	ended, _ := sessiondtest.NewSession("bob", sessiondtest.Epoch)
	ended.State, ended.EndReason, ended.EndedAt = sessiond.StateEnded, sessiond.EndRevoked, sessiondtest.Epoch
	conn := func(s *sessiond.Session, n string) sessiond.Connection {
		return sessiond.Connection{ID: n + "bcdefghijklmnop." + s.ID, Kind: "websocket", Node: "n1", ConnectedAt: sessiondtest.Epoch, LastHeartbeat: sessiondtest.Epoch}
	}
	db, err := cpebble.Open(dir, &cpebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set(sessionKey(live.ID), codec.EncodeSessionAt(2, live, []sessiond.Connection{conn(live, "a"), conn(live, "b")}), cpebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Set(sessionKey(ended.ID), codec.EncodeSessionAt(2, ended, []sessiond.Connection{conn(ended, "c")}), cpebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second open reads what the first migrated
		st, err := Open(Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		conns, _ := st.Conns(t.Context(), live.ID)
		if len(conns) != 2 {
			t.Fatalf("connections of the live session after migration: %+v", conns)
		}
		if got, _ := st.Get(t.Context(), live.ID); got.ConnCount != 2 {
			t.Fatalf("ConnCount %d, want 2", got.ConnCount)
		}
		if conns, _ := st.Conns(t.Context(), ended.ID); len(conns) != 0 {
			t.Fatalf("an ended session kept connections: %+v", conns)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// A store of the second format migrates in batches of bounded size, and
// a migration stopped between two batches (a crash, a failed commit)
// finishes at the next open: every session is either migrated with its
// connections or left as it was, never split.
func TestMigrationInBatchesIsRestartable(t *testing.T) {
	dir := emptyStore(t)
	const n = 120
	var all []*sessiond.Session
	conns := map[string][]sessiond.Connection{}
	db, err := cpebble.Open(dir, &cpebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := db.NewBatch()
	for i := range n {
		s, _ := sessiondtest.NewSession(fmt.Sprint("user-", i), sessiondtest.Epoch)
		k := 2
		if i%5 == 0 {
			s.State, s.EndReason, s.EndedAt, k = sessiond.StateEnded, sessiond.EndRevoked, sessiondtest.Epoch, 1
		}
		for j := range k {
			conns[s.ID] = append(conns[s.ID], sessiond.Connection{ID: fmt.Sprintf("%016d.%s", j, s.ID), Kind: "websocket", Node: "n1", ConnectedAt: sessiondtest.Epoch, LastHeartbeat: sessiondtest.Epoch})
		}
		if err := b.Set(sessionKey(s.ID), codec.EncodeSessionAt(2, s, conns[s.ID]), nil); err != nil {
			t.Fatal(err)
		}
		all = append(all, s)
	}
	if err := b.Commit(cpebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Stopped after its third batch of at most 20 keys.
	stop := errors.New("stopped after 3 batches")
	_, err = Open(Options{Dir: dir, migrate: migrateOptions{keys: 20, afterBatch: func(n int) error {
		if n == 3 {
			return stop
		}
		return nil
	}}})
	if !errors.Is(err, stop) {
		t.Fatalf("open stopped in the migration: %v", err)
	}
	db, err = cpebble.Open(dir, &cpebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	migrated := 0
	for _, s := range all {
		v, closer, err := db.Get(sessionKey(s.ID))
		if err != nil {
			t.Fatal(err)
		}
		version := v[0]
		closer.Close()
		for _, c := range conns[s.ID] {
			_, closer, err := db.Get(connKey(c.ID))
			has := err == nil
			if has {
				closer.Close()
			}
			if want := version >= codec.SessionV3 && s.State.Live(); has != want {
				t.Errorf("session record version %d (%v): its connection has a record of its own: %v", version, s.State, has)
			}
		}
		if version >= codec.SessionV3 {
			migrated++
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if migrated == 0 || migrated == n {
		t.Fatalf("%d of %d sessions migrated when the migration stopped after 3 batches", migrated, n)
	}

	var logs bytes.Buffer
	for i := range 2 { // the second open migrates nothing more
		logs.Reset()
		st, err := Open(Options{Dir: dir, Logger: slog.New(slog.NewJSONHandler(&logs, nil)), migrate: migrateOptions{keys: 20}})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range all {
			got, err := st.Conns(t.Context(), s.ID)
			want := len(conns[s.ID])
			if !s.State.Live() {
				want = 0
			}
			if err != nil || len(got) != want {
				t.Fatalf("open %d: session %s (%v): %d connections, %v; want %d", i+1, s.ID, s.State, len(got), err, want)
			}
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		moved := fmt.Sprintf(`"sessions":%d,`, n-migrated)
		switch {
		case i == 0 && (!strings.Contains(logs.String(), moved) || strings.Contains(logs.String(), `"batches":1}`)):
			t.Fatalf("the migration that finished does not log %s in several batches:\n%s", moved, logs.String())
		case i == 1 && strings.Contains(logs.String(), "rewritten"):
			t.Fatalf("a migrated store migrated again:\n%s", logs.String())
		}
	}
}
