package pebble

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/sessiondtest"
)

func TestSessionRoundTrip(t *testing.T) {
	s, _ := sessiondtest.NewSession("alice@example.com", sessiondtest.Epoch)
	s.Device = sessiond.Device{ID: "d", Type: "glasses", Name: "Ålice", IP: "2001:db8::1", UserAgent: "ua"}
	s.Metadata = []byte(`{"k":[1,2]}`)
	s.State, s.EndReason, s.EndedAt = sessiond.StateEnded, sessiond.EndRotatedReuse, sessiondtest.Epoch.Add(time.Hour)
	_, s.PrevTokenHash = sessiond.NewToken()
	_, r1 := sessiond.NewToken()
	_, r2 := sessiond.NewToken()
	s.RetiredTokens = []sessiond.TokenHash{r1, r2}
	s.RotatedAt, s.PrevTokenUntil, s.Generation, s.Version = sessiondtest.Epoch.Add(time.Minute), sessiondtest.Epoch.Add(2*time.Minute), 3, 9
	s.DisconnectedAt = sessiondtest.Epoch.Add(3 * time.Minute)
	got, conns, err := decodeSession(encodeSession(s))
	if err != nil || conns != nil {
		t.Fatal(err, conns)
	}
	sessiondtest.SameSession(t, got, s)

	bare, _ := sessiondtest.NewSession("b", sessiondtest.Epoch)
	bare.ExpiresAt, bare.IdleTimeout = time.Time{}, 0
	got, _, err = decodeSession(encodeSession(bare))
	if err != nil {
		t.Fatal(err)
	}
	sessiondtest.SameSession(t, got, bare)
}

func TestConnAndLeaseRoundTrip(t *testing.T) {
	c := sessiond.Connection{ID: "abcdefghijklmnop.sid", Kind: "websocket", Node: "n1", ClientIP: "10.0.0.9", UserAgent: "ua",
		ConnectedAt: sessiondtest.Epoch, LastHeartbeat: sessiondtest.Epoch.Add(time.Second)}
	got, err := decodeConn(encodeConn(&c))
	if err != nil || !got.ConnectedAt.Equal(c.ConnectedAt) || !got.LastHeartbeat.Equal(c.LastHeartbeat) || got.ID != c.ID || got.Node != c.Node || got.UserAgent != c.UserAgent {
		t.Fatalf("connection round trip: %+v, %v; want %+v", got, err, c)
	}
	if _, err := decodeConn(encodeConn(&sessiond.Connection{ID: "not-a-connection-id"})); err == nil {
		t.Fatal("a connection record with a bad id decoded")
	}
	l := sessiond.NodeLease{Node: "n1", Until: sessiondtest.Epoch, Dead: true, Version: 7}
	gl, err := decodeLease(encodeLease(&l))
	if err != nil || gl.Node != l.Node || !gl.Until.Equal(l.Until) || !gl.Dead || gl.Version != 7 {
		t.Fatalf("lease round trip: %+v, %v", gl, err)
	}
}

func TestEventRoundTrip(t *testing.T) {
	ev := sessiond.Event{Type: sessiond.EventEnded, SessionID: "id", Subject: "sub", Time: sessiondtest.Epoch,
		State: sessiond.StateEnded, Reason: sessiond.EndIdle, Version: 4, Generation: 2}
	ev.Connection, ev.Replaced = "conn-2", []string{"conn-1", "conn-0"}
	got, err := decodeEvent(encodeEvent(&ev), 17)
	ev.Seq = 17
	if err != nil || !reflect.DeepEqual(got, ev) {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, ev)
	}
}

// FuzzDecode: records read from disk may be torn or corrupt; decoding them
// must fail cleanly, never panic.
func FuzzDecode(f *testing.F) {
	s, _ := sessiondtest.NewSession("alice", sessiondtest.Epoch)
	f.Add(encodeSession(s))
	f.Add(encodeEvent(&sessiond.Event{Type: "created", SessionID: "x"}))
	f.Add(encodeConn(&sessiond.Connection{ID: "abcdefghijklmnop.x", Kind: "vnc"}))
	f.Add(encodeLease(&sessiond.NodeLease{Node: "n", Version: 1}))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, _, err := decodeSession(b); err == nil {
			again, _, err := decodeSession(encodeSession(s))
			if err != nil {
				t.Fatalf("re-encoding a decoded session fails: %v", err)
			}
			sessiondtest.SameSession(t, again, s)
		}
		if c, err := decodeConn(b); err == nil {
			if again, err := decodeConn(encodeConn(&c)); err != nil || again.ID != c.ID {
				t.Fatalf("re-encoding a decoded connection: %+v, %v", again, err)
			}
		}
		if l, err := decodeLease(b); err == nil {
			if again, err := decodeLease(encodeLease(&l)); err != nil || again.Node != l.Node || again.Version != l.Version {
				t.Fatalf("re-encoding a decoded lease: %+v, %v", again, err)
			}
		}
		decodeEvent(b, 1)
	})
}

// encodeV2 writes a session as the second format did: its connections
// inside the record.
func encodeV2(s *sessiond.Session, conns []sessiond.Connection) []byte {
	v3 := encodeSession(&sessiond.Session{
		ID: s.ID, Subject: s.Subject, Policy: s.Policy, Device: s.Device, Metadata: s.Metadata, State: s.State,
		EndReason: s.EndReason, CreatedAt: s.CreatedAt, LastActive: s.LastActive, ExpiresAt: s.ExpiresAt,
		IdleTimeout: s.IdleTimeout, RotatedAt: s.RotatedAt, EndedAt: s.EndedAt, Version: s.Version,
		Generation: s.Generation, TokenHash: s.TokenHash, PrevTokenHash: s.PrevTokenHash,
		PrevTokenUntil: s.PrevTokenUntil, DisconnectedAt: s.DisconnectedAt,
	})
	e := encoder{b: append([]byte{sessionV2}, v3[1:len(v3)-1]...)} // without the empty retired list
	e.uint(uint64(len(conns)))
	for i := range conns {
		e.conn(&conns[i])
	}
	return e.b
}

// Records written by earlier versions of the codec still read.
func TestReadsOlderRecords(t *testing.T) {
	s, _ := sessiondtest.NewSession("alice", sessiondtest.Epoch)
	c := sessiond.Connection{ID: "abcdefghijklmnop." + s.ID, Kind: "vnc", ConnectedAt: sessiondtest.Epoch, LastHeartbeat: sessiondtest.Epoch}
	v2 := encodeV2(s, []sessiond.Connection{c})
	got, conns, err := decodeSession(v2)
	if err != nil || len(conns) != 1 || conns[0].ID != c.ID {
		t.Fatalf("v2 record: %v, %+v", err, conns)
	}
	sessiondtest.SameSession(t, got, s)
	// A version 1 record is the version 2 one without its last two fields
	// (a zero time and a zero count: one byte each) and with the old tag.
	bare := encodeV2(s, nil)
	v1 := append([]byte{sessionV1}, bare[1:len(bare)-2]...)
	got, _, err = decodeSession(v1)
	if err != nil {
		t.Fatal(err)
	}
	sessiondtest.SameSession(t, got, s)
	ev := sessiond.Event{Type: sessiond.EventCreated, SessionID: "x", Subject: "y", Time: sessiondtest.Epoch, State: sessiond.StateActive, Version: 1}
	e2 := encodeEvent(&ev)
	e1 := append([]byte{eventV1}, e2[1:len(e2)-2]...)
	if got, err := decodeEvent(e1, 3); err != nil || got.SessionID != "x" || got.Seq != 3 {
		t.Fatalf("v1 event: %+v, %v", got, err)
	}
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

// A store of the second format migrates in batches of bounded size, and
// a migration stopped between two batches (a crash, a failed commit)
// finishes at the next open: every session is either migrated with its
// connections or left as it was, never split.
func TestMigrationInBatchesIsRestartable(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
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
		if err := b.Set(sessionKey(s.ID), encodeV2(s, conns[s.ID]), nil); err != nil {
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
			if want := version == sessionV3 && s.State.Live(); has != want {
				t.Errorf("session record version %d (%v): its connection has a record of its own: %v", version, s.State, has)
			}
		}
		if version == sessionV3 {
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
