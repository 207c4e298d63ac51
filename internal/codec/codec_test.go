package codec

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
	_, s.PrevTokenHash = sessiond.NewToken("x")
	_, r1 := sessiond.NewToken("x")
	_, r2 := sessiond.NewToken("x")
	s.RetiredTokens = []sessiond.TokenHash{r1, r2}
	s.RotatedAt, s.PrevTokenUntil, s.Generation, s.Version = sessiondtest.Epoch.Add(time.Minute), sessiondtest.Epoch.Add(2*time.Minute), 3, 9
	s.DisconnectedAt = sessiondtest.Epoch.Add(3 * time.Minute)
	got, conns, err := DecodeSession(EncodeSession(s))
	if err != nil || conns != nil {
		t.Fatal(err, conns)
	}
	sessiondtest.SameSession(t, got, s)

	bare, _ := sessiondtest.NewSession("b", sessiondtest.Epoch)
	bare.ExpiresAt, bare.IdleTimeout = time.Time{}, 0
	got, _, err = DecodeSession(EncodeSession(bare))
	if err != nil {
		t.Fatal(err)
	}
	sessiondtest.SameSession(t, got, bare)
}

func TestConnAndLeaseRoundTrip(t *testing.T) {
	c := sessiond.Connection{ID: "abcdefghijklmnop.sid", Kind: "websocket", Node: "n1", ClientIP: "10.0.0.9", UserAgent: "ua",
		ConnectedAt: sessiondtest.Epoch, LastHeartbeat: sessiondtest.Epoch.Add(time.Second)}
	got, err := DecodeConn(EncodeConn(&c))
	if err != nil || !got.ConnectedAt.Equal(c.ConnectedAt) || !got.LastHeartbeat.Equal(c.LastHeartbeat) || got.ID != c.ID || got.Node != c.Node || got.UserAgent != c.UserAgent {
		t.Fatalf("connection round trip: %+v, %v; want %+v", got, err, c)
	}
	if _, err := DecodeConn(EncodeConn(&sessiond.Connection{ID: "not-a-connection-id"})); err == nil {
		t.Fatal("a connection record with a bad id decoded")
	}
	l := sessiond.NodeLease{Node: "n1", Until: sessiondtest.Epoch, Dead: true, Version: 7}
	gl, err := DecodeLease(EncodeLease(&l))
	if err != nil || gl.Node != l.Node || !gl.Until.Equal(l.Until) || !gl.Dead || gl.Version != 7 {
		t.Fatalf("lease round trip: %+v, %v", gl, err)
	}
}

func TestConsumerRoundTrip(t *testing.T) {
	until := sessiondtest.Epoch.Add(15 * time.Second)
	name, owner, gotUntil, cur, err := DecodeConsumer(EncodeConsumer("webhook:billing", "node-1", until, sessiond.CursorOf(4, 0, 9)))
	if err != nil || name != "webhook:billing" || owner != "node-1" || !gotUntil.Equal(until) || cur.String() != "4.0.9" {
		t.Fatalf("consumer round trip: %q %q %v %v, %v", name, owner, gotUntil, cur, err)
	}
	for _, bad := range [][]byte{nil, {2}, EncodeConsumer("a b", "o", until, sessiond.Cursor{}), EncodeConsumer("n", "", until, sessiond.Cursor{}),
		append(EncodeConsumer("n", "o", until, sessiond.Cursor{}), 0)} {
		if _, _, _, _, err := DecodeConsumer(bad); err == nil {
			t.Errorf("DecodeConsumer(%q) decoded", bad)
		}
	}
}

func TestEventRoundTrip(t *testing.T) {
	ev := sessiond.Event{Type: sessiond.EventEnded, SessionID: "id", Subject: "sub", Time: sessiondtest.Epoch,
		State: sessiond.StateEnded, Reason: sessiond.EndIdle, Version: 4, Generation: 2}
	ev.Connection, ev.Replaced = "conn-2", []string{"conn-1", "conn-0"}
	got, err := DecodeEvent(EncodeEvent(&ev), 17)
	ev.Seq = 17
	if err != nil || !reflect.DeepEqual(got, ev) {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, ev)
	}
}

// An event that describes its connection keeps every detail, open or
// closed; one that does not is written in version 2, which the versions
// before connection details read.
func TestEventWithConnectionRoundTrip(t *testing.T) {
	opened := sessiond.ConnDetail{Kind: "websocket", Node: "node-1", ClientIP: "2001:db8::7", UserAgent: "Mozilla/5.0 (X11) Ä",
		OpenedAt: sessiondtest.Epoch.Add(time.Millisecond)}
	closed := opened
	closed.ClosedAt, closed.CloseCode, closed.CloseReason = sessiondtest.Epoch.Add(90*time.Minute+time.Nanosecond), 4002, sessiond.ClosedHeartbeatTimeout
	for _, d := range []sessiond.ConnDetail{opened, closed, {Kind: "vnc"}} {
		ev := sessiond.Event{Type: sessiond.EventConnectionClosed, SessionID: "id", Subject: "sub", Time: sessiondtest.Epoch,
			State: sessiond.StateDisconnected, Version: 4, Connection: "abcdefghijklmnop.id", Conn: &d}
		b := EncodeEvent(&ev)
		if b[0] != eventV3 {
			t.Fatalf("an event with a connection detail is written in version %d, want %d", b[0], eventV3)
		}
		got, err := DecodeEvent(b, 5)
		ev.Seq = 5
		if err != nil || !reflect.DeepEqual(got, ev) {
			t.Fatalf("round trip: %+v (%+v), %v; want %+v (%+v)", got, got.Conn, err, ev, ev.Conn)
		}
	}
	plain := sessiond.Event{Type: sessiond.EventCreated, SessionID: "id", Subject: "sub", Time: sessiondtest.Epoch, Version: 1}
	if b := EncodeEvent(&plain); b[0] != eventV2 {
		t.Fatalf("an event without a connection detail is written in version %d, want %d", b[0], eventV2)
	}
	// Version 3 without a detail (flag 0) reads too; a bad flag or close
	// code is corruption.
	v3 := append([]byte{eventV3}, EncodeEvent(&plain)[1:]...)
	if got, err := DecodeEvent(append(v3, 0), 1); err != nil || got.Conn != nil || got.SessionID != "id" {
		t.Fatalf("v3 event without a detail: %+v, %v", got, err)
	}
	if _, err := DecodeEvent(append(v3, 2), 1); err == nil {
		t.Fatal("a v3 event with detail flag 2 decoded")
	}
	ev := sessiond.Event{Type: sessiond.EventConnected, SessionID: "id", Conn: &sessiond.ConnDetail{Kind: "vnc", CloseCode: 70000}}
	if _, err := DecodeEvent(EncodeEvent(&ev), 1); err == nil {
		t.Fatal("an event with close code 70000 decoded")
	}
}

// FuzzDecode: records read from disk may be torn or corrupt; decoding them
// must fail cleanly, never panic.
func FuzzDecode(f *testing.F) {
	s, _ := sessiondtest.NewSession("alice", sessiondtest.Epoch)
	f.Add(EncodeSession(s))
	f.Add(EncodeEvent(&sessiond.Event{Type: "created", SessionID: "x"}))
	f.Add(EncodeEvent(&sessiond.Event{Type: "connection_closed", SessionID: "x", Connection: "c",
		Conn: &sessiond.ConnDetail{Kind: "websocket", OpenedAt: sessiondtest.Epoch, ClosedAt: sessiondtest.Epoch.Add(time.Second), CloseCode: 1000, CloseReason: "closed"}}))
	f.Add(EncodeConn(&sessiond.Connection{ID: "abcdefghijklmnop.x", Kind: "vnc"}))
	f.Add(EncodeLease(&sessiond.NodeLease{Node: "n", Version: 1}))
	f.Add(EncodeConsumer("webhook:a", "n", sessiondtest.Epoch, sessiond.CursorOf(3, 4)))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, _, err := DecodeSession(b); err == nil {
			again, _, err := DecodeSession(EncodeSession(s))
			if err != nil {
				t.Fatalf("re-encoding a decoded session fails: %v", err)
			}
			sessiondtest.SameSession(t, again, s)
		}
		if c, err := DecodeConn(b); err == nil {
			if again, err := DecodeConn(EncodeConn(&c)); err != nil || again.ID != c.ID {
				t.Fatalf("re-encoding a decoded connection: %+v, %v", again, err)
			}
		}
		if l, err := DecodeLease(b); err == nil {
			if again, err := DecodeLease(EncodeLease(&l)); err != nil || again.Node != l.Node || again.Version != l.Version {
				t.Fatalf("re-encoding a decoded lease: %+v, %v", again, err)
			}
		}
		if name, owner, until, cur, err := DecodeConsumer(b); err == nil {
			if n2, o2, u2, c2, err := DecodeConsumer(EncodeConsumer(name, owner, until, cur)); err != nil || n2 != name || o2 != owner || !u2.Equal(until) || c2.String() != cur.String() {
				t.Fatalf("re-encoding a decoded consumer: %q %q %v %v, %v", n2, o2, u2, c2, err)
			}
		}
		if ev, err := DecodeEvent(b, 1); err == nil {
			again, err := DecodeEvent(EncodeEvent(&ev), 1)
			if err != nil || !reflect.DeepEqual(again, ev) {
				t.Fatalf("re-encoding a decoded event: %+v, %v; want %+v", again, err, ev)
			}
		}
	})
}

// Records written by earlier versions of the codec still read.
func TestReadsOlderRecords(t *testing.T) {
	s, _ := sessiondtest.NewSession("alice", sessiondtest.Epoch)
	s.StateSince = time.Time{} // older formats did not have it
	c := sessiond.Connection{ID: "abcdefghijklmnop." + s.ID, Kind: "vnc", ConnectedAt: sessiondtest.Epoch, LastHeartbeat: sessiondtest.Epoch}
	v2 := EncodeSessionAt(sessionV2, s, []sessiond.Connection{c})
	got, conns, err := DecodeSession(v2)
	if err != nil || len(conns) != 1 || conns[0].ID != c.ID {
		t.Fatalf("v2 record: %v, %+v", err, conns)
	}
	sessiondtest.SameSession(t, got, s)
	for _, v := range []byte{sessionV1, SessionV3} {
		got, _, err = DecodeSession(EncodeSessionAt(v, s, nil))
		if err != nil {
			t.Fatalf("version %d record: %v", v, err)
		}
		sessiondtest.SameSession(t, got, s)
	}
	ev := sessiond.Event{Type: sessiond.EventCreated, SessionID: "x", Subject: "y", Time: sessiondtest.Epoch, State: sessiond.StateActive, Version: 1}
	e2 := EncodeEvent(&ev)
	e1 := append([]byte{eventV1}, e2[1:len(e2)-2]...)
	if got, err := DecodeEvent(e1, 3); err != nil || got.SessionID != "x" || got.Seq != 3 {
		t.Fatalf("v1 event: %+v, %v", got, err)
	}
}
