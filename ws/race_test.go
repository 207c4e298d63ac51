package ws_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sessiond/sessiond/sessiondtest"
	"github.com/sessiond/sessiond/wire"
)

// raceClient follows one socket of a race: its ack, then its close code
// (0 while it is open).
type raceClient struct {
	mu     sync.Mutex
	connID string
	code   websocket.StatusCode
}

func (r *raceClient) get() (string, websocket.StatusCode) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.connID, r.code
}

// follow reads the socket until it closes.
func (r *raceClient) follow(c *websocket.Conn) {
	for {
		_, b, err := c.Read(context.Background())
		if err != nil {
			r.mu.Lock()
			r.code = websocket.CloseStatus(err)
			r.mu.Unlock()
			return
		}
		var m map[string]any
		if json.Unmarshal(b, &m) == nil && m["type"] == "connected" {
			r.mu.Lock()
			r.connID, _ = m["connection_id"].(string)
			r.mu.Unlock()
		}
	}
}

// Sixteen sockets of one subject and device connect at the same instant
// under a policy where a new connection replaces the others: exactly one
// stays open, every other one is closed with 4502, and the session's
// connections are exactly the edge's open sockets. Raced for many rounds:
// a socket replaced between its attach in the store and its registration
// on the edge used to stay open, unknown to its session.
func TestSimultaneousConnectsLeaveOneSocket(t *testing.T) {
	e := newEnv(t, unlimited)
	const rounds, n = 40, 16
	for round := range rounds {
		tok := e.token(fmt.Sprint("racer-", round), time.Hour)
		clients := make([]*raceClient, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			clients[i] = &raceClient{}
			wg.Go(func() {
				<-start
				c, _, err := e.dial(tok, "device_id=glasses", nil)
				if err != nil {
					t.Errorf("round %d: dial: %v", round, err)
					return
				}
				go clients[i].follow(c.c)
			})
		}
		close(start)
		wg.Wait()
		sessiondtest.Eventually(e.t, fmt.Sprintf("round %d: one socket open and %d closed", round, n-1), func() bool {
			closed, acked := 0, 0
			for _, c := range clients {
				id, code := c.get()
				if code != 0 {
					closed++
				} else if id != "" {
					acked++
				}
			}
			return closed == n-1 && acked == 1 && e.edge.Open() == round+1
		})
		var open string
		for _, c := range clients {
			id, code := c.get()
			switch wire.CloseCode(code) {
			case 0:
				open = id
			case wire.CloseReplaced:
			default:
				t.Fatalf("round %d: a socket closed with %d, want %d (replaced)", round, code, wire.CloseReplaced)
			}
		}
		sid := sessionOf(t, open)
		if conns := e.conns(sid); len(conns) != 1 || conns[0].ID != open {
			t.Fatalf("round %d: the session lists %+v; the open socket is %s", round, conns, open)
		}
	}
	st := e.edge.Stats()
	if st.Open != rounds {
		t.Fatalf("edge counts %d open sockets, want %d (one per round)", st.Open, rounds)
	}
}

func sessionOf(t testing.TB, connID string) string {
	t.Helper()
	for i := range connID {
		if connID[i] == '.' {
			return connID[i+1:]
		}
	}
	t.Fatalf("%q is not a connection id", connID)
	return ""
}
