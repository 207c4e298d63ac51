package memindex

import (
	"fmt"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

// Load installs the connections of live sessions it holds and returns the
// others, which count nowhere.
func TestLoadReturnsOrphans(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	session := func(state sessiond.State) *sessiond.Session {
		_, h := sessiond.NewToken("x")
		return &sessiond.Session{ID: sessiond.NewID(at, "alice"), Subject: "alice", State: state, CreatedAt: at, Version: 1, TokenHash: h}
	}
	conn := func(s *sessiond.Session, n int) sessiond.Connection {
		return sessiond.Connection{ID: fmt.Sprintf("%016d.%s", n, s.ID), Kind: "websocket", Node: "n1", ConnectedAt: at}
	}
	live, ended, missing := session(sessiond.StateActive), session(sessiond.StateEnded), session(sessiond.StateActive)
	x := New()
	if orphans := x.Load([]*sessiond.Session{live, ended}, nil); len(orphans) != 0 {
		t.Fatalf("Load of sessions alone returned orphans %+v", orphans)
	}
	orphans := x.Load(nil, []sessiond.Connection{conn(live, 1), conn(ended, 2), conn(missing, 3), conn(live, 4)})
	if len(orphans) != 2 || orphans[0].ID != conn(ended, 2).ID || orphans[1].ID != conn(missing, 3).ID {
		t.Fatalf("orphans = %+v, want the ended and the missing session's", orphans)
	}
	if got := x.Conns(live.ID); len(got) != 2 {
		t.Fatalf("the live session's connections: %+v", got)
	}
	if st := x.Stats(); st.Connections["websocket"] != 2 {
		t.Fatalf("Stats.Connections = %v, want the live session's 2", st.Connections)
	}
	if got := x.NodeConns("n1", 10); len(got) != 2 {
		t.Fatalf("NodeConns(n1) = %+v, want the live session's 2", got)
	}
}
