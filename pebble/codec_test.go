package pebble

import (
	"reflect"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/sessiondtest"
)

func TestSessionRoundTrip(t *testing.T) {
	s, _ := sessiondtest.NewSession("alice@example.com", sessiondtest.Epoch)
	s.Device = sessiond.Device{ID: "d", Type: "glasses", Name: "Ålice", IP: "2001:db8::1", UserAgent: "ua"}
	s.Metadata = []byte(`{"k":[1,2]}`)
	s.State, s.EndReason, s.EndedAt = sessiond.StateEnded, sessiond.EndRotatedReuse, sessiondtest.Epoch.Add(time.Hour)
	_, s.PrevTokenHash = sessiond.NewToken()
	s.RotatedAt, s.PrevTokenUntil, s.Generation, s.Version = sessiondtest.Epoch.Add(time.Minute), sessiondtest.Epoch.Add(2*time.Minute), 3, 9
	s.DisconnectedAt = sessiondtest.Epoch.Add(3 * time.Minute)
	s.Conns = []sessiond.Connection{
		{ID: "c1", Kind: "websocket", Node: "n1", ClientIP: "10.0.0.9", UserAgent: "ua", ConnectedAt: sessiondtest.Epoch, LastHeartbeat: sessiondtest.Epoch.Add(time.Second)},
		{ID: "c2", Kind: "vnc", ConnectedAt: sessiondtest.Epoch, LastHeartbeat: sessiondtest.Epoch},
	}
	got, err := decodeSession(encodeSession(s))
	if err != nil {
		t.Fatal(err)
	}
	sessiondtest.SameSession(t, got, s)

	bare, _ := sessiondtest.NewSession("b", sessiondtest.Epoch)
	bare.ExpiresAt, bare.IdleTimeout = time.Time{}, 0
	got, err = decodeSession(encodeSession(bare))
	if err != nil {
		t.Fatal(err)
	}
	sessiondtest.SameSession(t, got, bare)
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
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := decodeSession(b); err == nil {
			again, err := decodeSession(encodeSession(s))
			if err != nil {
				t.Fatalf("re-encoding a decoded session fails: %v", err)
			}
			sessiondtest.SameSession(t, again, s)
		}
		decodeEvent(b, 1)
	})
}

// Records written by the first version of the codec still read.
func TestReadsVersion1Records(t *testing.T) {
	s, _ := sessiondtest.NewSession("alice", sessiondtest.Epoch)
	v2 := encodeSession(s)
	// A version 1 record is the version 2 one without its last two fields
	// (a zero time and a zero count: one byte each) and with the old tag.
	v1 := append([]byte{sessionV1}, v2[1:len(v2)-2]...)
	got, err := decodeSession(v1)
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
