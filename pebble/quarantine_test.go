package pebble_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	cpebble "github.com/cockroachdb/pebble/v2"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/pebble"
	"github.com/sessiond/sessiond/sessiondtest"
)

// A record that does not decode is quarantined at open, logged with its
// kind and (hashed) id, counted, listed by Check, and the store opens with
// the others.
func TestCorruptRecordQuarantined(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir, 0)
	ctx := context.Background()
	var all []*sessiond.Session
	for range 5 {
		s, _ := sessiondtest.NewSession("alice", sessiondtest.Epoch)
		if _, err := st.Create(ctx, sessiond.Change{Session: s, Events: []sessiond.Event{{Type: sessiond.EventCreated, SessionID: s.ID}}}, sessiond.Limit{}); err != nil {
			t.Fatal(err)
		}
		all = append(all, s)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// Corrupt the third session and the second event, with Pebble directly.
	bad := all[2]
	db, err := cpebble.Open(dir, &cpebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	badEvent := append([]byte{'e'}, binary.BigEndian.AppendUint64(nil, 2)...)
	if err := db.Set(append([]byte{'s'}, bad.ID...), []byte{2, 0xff, 0xff}, cpebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Set(badEvent, []byte{9, 9, 9}, cpebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Check, before any open, finds both and changes nothing.
	rep, err := pebble.Check(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || len(rep.Corrupt) != 2 || len(rep.Quarantined) != 0 || rep.Sessions != 4 || rep.Events != 4 {
		t.Fatalf("Check before open: %+v", rep)
	}

	var logs bytes.Buffer
	st, err = pebble.Open(pebble.Options{Dir: dir, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("the store does not open with a corrupt record: %v", err)
	}
	if d := st.Disk(); d.Quarantined != 2 {
		t.Errorf("Disk().Quarantined = %d, want 2", d.Quarantined)
	}
	for _, s := range all {
		_, err := st.Get(ctx, s.ID)
		if s == bad && !errors.Is(err, sessiond.ErrNotFound) {
			t.Errorf("the corrupt session reads as %v", err)
		}
		if s != bad && err != nil {
			t.Errorf("session %s, not corrupt, did not load: %v", s.ID, err)
		}
	}
	evs, err := st.Events(ctx, sessiond.Cursor{}, 10)
	if err != nil || len(evs) != 4 || evs[0].Seq != 1 || evs[1].Seq != 3 {
		t.Errorf("Events after quarantine = %+v, %v; want seqs 1, 3, 4, 5", evs, err)
	}
	s, _ := sessiondtest.NewSession("bob", sessiondtest.Epoch)
	ev := []sessiond.Event{{Type: sessiond.EventCreated, SessionID: s.ID}}
	if _, err := st.Create(ctx, sessiond.Change{Session: s, Events: ev}, sessiond.Limit{}); err != nil || ev[0].Seq != 6 {
		t.Errorf("next event seq %d (%v), want 6", ev[0].Seq, err)
	}
	for _, want := range []string{
		`"level":"ERROR"`, `"kind":"session"`, `"record":"sid:` + sessiond.LogID(bad.ID) + `"`,
		`"kind":"event"`, `"record":"seq:2"`, "quarantined",
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks %s:\n%s", want, logs.String())
		}
	}
	if strings.Contains(logs.String(), bad.ID) {
		t.Errorf("the log shows the session id in clear:\n%s", logs.String())
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// Check after: nothing corrupt left, both quarantined with their keys.
	rep, err = pebble.Check(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || len(rep.Corrupt) != 0 || len(rep.Quarantined) != 2 || rep.Sessions != 5 {
		t.Fatalf("Check after open: %+v", rep)
	}
	keys := map[string]bool{}
	for _, r := range rep.Quarantined {
		keys[string(r.Key)] = true
	}
	if !keys["s"+bad.ID] || !keys[string(badEvent)] {
		t.Errorf("quarantined keys %v, want the corrupt session's and event's", keys)
	}

	// Reopening quarantines nothing more and counts what is there.
	st = open(t, dir, 0)
	defer st.Close()
	if d := st.Disk(); d.Quarantined != 2 {
		t.Errorf("after reopening, Disk().Quarantined = %d, want 2", d.Quarantined)
	}
}

// Check on a store in use says so.
func TestCheckWhileOpen(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir, 0)
	defer st.Close()
	_, err := pebble.Check(context.Background(), dir)
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("Check on an open store: %v, want an error saying it is in use", err)
	}
}

// The connections of a session whose record is quarantined are set aside
// with it: they count nowhere (Stats, NodeConns, ConnNodes), the open logs
// them, Disk and Check count them as quarantined, and they do not come
// back if the session record is restored by hand.
func TestQuarantinedSessionLosesItsConnections(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir, 0)
	ctx := context.Background()
	conn := func(s *sessiond.Session, name, node string) sessiond.Connection {
		return sessiond.Connection{ID: name + "bcdefghijklmnop." + s.ID, Kind: "websocket", Node: node, ConnectedAt: sessiondtest.Epoch, LastHeartbeat: sessiondtest.Epoch}
	}
	a, _ := sessiondtest.NewSession("alice", sessiondtest.Epoch)
	b, _ := sessiondtest.NewSession("bob", sessiondtest.Epoch)
	aConns := []sessiond.Connection{conn(a, "a", "n1"), conn(a, "b", "n1")}
	bConns := []sessiond.Connection{conn(b, "c", "n2")}
	for _, c := range []sessiond.Change{{Session: a, PutConns: aConns}, {Session: b, PutConns: bConns}} {
		if _, err := st.Create(ctx, c, sessiond.Limit{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := cpebble.Open(dir, &cpebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	good, closer, err := db.Get(append([]byte{'s'}, a.ID...))
	if err != nil {
		t.Fatal(err)
	}
	good = bytes.Clone(good)
	closer.Close()
	if err := db.Set(append([]byte{'s'}, a.ID...), []byte{3, 0xff}, cpebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	noneOfAlices := func(st *pebble.Store, when string) {
		t.Helper()
		if got, _ := st.Conns(ctx, a.ID); len(got) != 0 {
			t.Errorf("%s: Conns(alice's session) = %+v", when, got)
		}
		if _, err := st.Conn(ctx, aConns[0].ID); !errors.Is(err, sessiond.ErrNotFound) {
			t.Errorf("%s: Conn(alice's connection): %v, want not found", when, err)
		}
		if got, _ := st.NodeConns(ctx, "n1", 10); len(got) != 0 {
			t.Errorf("%s: NodeConns(n1) = %+v", when, got)
		}
		if got, _ := st.ConnNodes(ctx); len(got) != 1 || got[0] != "n2" {
			t.Errorf("%s: ConnNodes = %v, want [n2]", when, got)
		}
		if stats, _ := st.Stats(ctx); stats.Connections["websocket"] != 1 {
			t.Errorf("%s: Stats.Connections = %v, want bob's one websocket", when, stats.Connections)
		}
		if got, _ := st.Conns(ctx, b.ID); len(got) != 1 {
			t.Errorf("%s: bob's connections = %+v", when, got)
		}
	}

	var logs bytes.Buffer
	st, err = pebble.Open(pebble.Options{Dir: dir, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, a.ID); !errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("the corrupt session reads as %v", err)
	}
	noneOfAlices(st, "after the quarantine")
	if d := st.Disk(); d.Quarantined != 3 {
		t.Errorf("Disk().Quarantined = %d, want 3 (the session and its 2 connections)", d.Quarantined)
	}
	for _, want := range []string{`"kind":"session"`, "connection records whose session is not stored live", `"connections":2`, `"sid:` + sessiond.LogID(a.ID) + `"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks %s:\n%s", want, logs.String())
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := pebble.Check(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	conns := 0
	for _, r := range rep.Quarantined {
		if r.Kind == "connection" {
			conns++
			if !strings.Contains(r.Error, "not stored live") {
				t.Errorf("Check says of a set-aside connection: %q", r.Error)
			}
		}
	}
	if len(rep.Quarantined) != 3 || conns != 2 || rep.Connections != 1 || len(rep.Corrupt) != 0 {
		t.Fatalf("Check after the open: %+v", rep)
	}

	// The session record restored by hand: its connections stay gone.
	db, err = cpebble.Open(dir, &cpebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set(append([]byte{'s'}, a.ID...), good, cpebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	st = open(t, dir, 0)
	defer st.Close()
	if got, err := st.Get(ctx, a.ID); err != nil || got.ConnCount != 0 {
		t.Fatalf("the restored session: %+v, %v; want it without connections", got, err)
	}
	noneOfAlices(st, "after restoring the session record")
}

// The consumers' records (sessiond.Consumers) are known to Check, and one
// that does not decode is quarantined at open like any other record: the
// store opens, without it (the consumer starts afresh).
func TestConsumerRecordsChecked(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir, 0)
	ctx := context.Background()
	for _, name := range []string{"webhook:a", "webhook:b"} {
		if _, err := st.ClaimConsumer(ctx, name, "n1", sessiond.CursorOf(3), sessiondtest.Epoch, 15*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := pebble.Check(ctx, dir)
	if err != nil || !rep.OK() || rep.Consumers != 2 {
		t.Fatalf("Check of a store with two consumers: %+v, %v", rep, err)
	}

	db, err := cpebble.Open(dir, &cpebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("fwebhook:b"), []byte{1, 0xff}, cpebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if rep, err = pebble.Check(ctx, dir); err != nil || rep.OK() || len(rep.Corrupt) != 1 || rep.Corrupt[0].Kind != "consumer" || rep.Consumers != 1 {
		t.Fatalf("Check with a corrupt consumer record: %+v, %v", rep, err)
	}
	st = open(t, dir, 0)
	defer st.Close()
	// webhook:a kept its claim and cursor; webhook:b is new again.
	if _, err := st.ClaimConsumer(ctx, "webhook:a", "n2", sessiond.Cursor{}, sessiondtest.Epoch, 15*time.Second); !errors.Is(err, sessiond.ErrConsumerClaimed) {
		t.Fatalf("webhook:a after the quarantine: %v", err)
	}
	if c, err := st.ClaimConsumer(ctx, "webhook:b", "n2", sessiond.CursorOf(9), sessiondtest.Epoch, 15*time.Second); err != nil || c.String() != "9" {
		t.Fatalf("webhook:b after its record was quarantined: %v, %v; want it new", c, err)
	}
	if d := st.Disk(); d.Quarantined != 1 {
		t.Fatalf("quarantined %d records, want 1", d.Quarantined)
	}
}
