package pebble

import (
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
	got, err := decodeEvent(encodeEvent(&ev), 17)
	ev.Seq = 17
	if err != nil || got != ev {
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
