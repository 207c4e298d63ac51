package pebble

import (
	"encoding/binary"
	"testing"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/codec"
	"github.com/sessiond/sessiond/sessiondtest"
)

// encodeV2 writes a session as the second format did: its connections
// inside the record (the third format's record, tagged 2, without its empty
// retired list, then the count and each connection as a connection record
// writes it after its tag).
func encodeV2(s *sessiond.Session, conns []sessiond.Connection) []byte {
	v3 := codec.EncodeSession(s)
	b := append([]byte{2}, v3[1:len(v3)-1]...)
	b = binary.AppendUvarint(b, uint64(len(conns)))
	for i := range conns {
		b = append(b, codec.EncodeConn(&conns[i])[1:]...)
	}
	return b
}

// A store written by the second format (connections inside session
// records) opens with every connection in a record of its own, and the
// session records rewritten: nothing of a live session's connections is
// lost, and an ended session's are dropped.
func TestMigratesConnectionsOutOfSessions(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
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
	if err := db.Set(sessionKey(live.ID), encodeV2(live, []sessiond.Connection{conn(live, "a"), conn(live, "b")}), cpebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Set(sessionKey(ended.ID), encodeV2(ended, []sessiond.Connection{conn(ended, "c")}), cpebble.Sync); err != nil {
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
