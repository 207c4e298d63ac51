package httpapi_test

// Tests of server-sent events on /v1/events: what is streamed, replay
// after a reconnect, keep-alives, and how a stream ends.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/httpapi"
	"github.com/sessiond/sessiond/sessiondtest"
)

func TestEventsStreamCreatedThenEndingAndEndedOnRevoke(t *testing.T) {
	e := htStart(t, nil)
	st := e.openEvents("", nil)

	c := e.createFor("alice")
	e.clock.Advance(time.Second)
	e.revoke(c.ID)

	evs := htWantEvents(t, st, 0,
		[2]string{"created", c.ID},
		[2]string{"ending", c.ID},
		[2]string{"ended", c.ID},
	)
	created, ending, ended := evs[0].data, evs[1].data, evs[2].data
	if created.Subject != "alice" || created.State != sessiond.StateActive || created.Version != 1 || !created.Time.Equal(htEpoch) {
		t.Errorf("created: got %+v, want subject alice, state active, version 1, time %v", created, htEpoch)
	}
	for _, ev := range []sessiond.Event{ending, ended} {
		if ev.Reason != sessiond.EndRevoked || !ev.Time.Equal(htEpoch.Add(time.Second)) {
			t.Errorf("%s: got reason %q, time %v; want revoked, %v", ev.Type, ev.Reason, ev.Time, htEpoch.Add(time.Second))
		}
	}
	if ending.State != sessiond.StateEnding || ended.State != sessiond.StateEnded {
		t.Errorf("got states %v then %v, want ending then ended", ending.State, ended.State)
	}

	// A rotation is an event too.
	c2 := e.createFor("bob")
	htWantStatus(t, e.send("POST", "/v1/sessions/"+c2.ID+"/rotate", ""), http.StatusOK)
	evs = htWantEvents(t, st, 3, [2]string{"created", c2.ID}, [2]string{"rotated", c2.ID})
	if evs[1].data.Generation != 1 {
		t.Errorf("rotated: got generation %d, want 1", evs[1].data.Generation)
	}
}

func TestEventsReplayMissedEventsAfterReconnect(t *testing.T) {
	for _, tc := range []struct {
		name   string
		resume func(e *htEnv, last uint64) *htStream
	}{
		{"Last-Event-ID header", func(e *htEnv, last uint64) *htStream {
			return e.openEvents("", http.Header{"Last-Event-ID": {strconv.FormatUint(last, 10)}})
		}},
		{"after query parameter", func(e *htEnv, last uint64) *htStream {
			return e.openEvents("?after="+strconv.FormatUint(last, 10), nil)
		}},
		{"header wins over query", func(e *htEnv, last uint64) *htStream {
			return e.openEvents("?after=0", http.Header{"Last-Event-ID": {strconv.FormatUint(last, 10)}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := htStart(t, nil)
			first := e.openEvents("", nil)
			a := e.createFor("alice")
			b := e.createFor("bob")
			seen := htWantEvents(t, first, 0, [2]string{"created", a.ID}, [2]string{"created", b.ID})
			last := seen[len(seen)-1].id
			first.close()

			// Missed while disconnected.
			c := e.createFor("carol")
			e.revoke(a.ID)

			resumed := tc.resume(e, last)
			htWantEvents(t, resumed, last,
				[2]string{"created", c.ID},
				[2]string{"ending", a.ID},
				[2]string{"ended", a.ID},
			)
			// Then live events follow, with nothing repeated or skipped.
			e.revoke(b.ID)
			htWantEvents(t, resumed, last+3, [2]string{"ending", b.ID}, [2]string{"ended", b.ID})
		})
	}
}

func TestEventsReplayFromTheStart(t *testing.T) {
	e := htStart(t, nil)
	a := e.createFor("alice")
	b := e.createFor("bob")
	e.revoke(a.ID)
	// Event ids start at 1 and 0 means "from now", so Last-Event-ID 1 is
	// the earliest resume point: it replays everything after the first event.
	st := e.openEvents("", http.Header{"Last-Event-ID": {"1"}})
	htWantEvents(t, st, 1, [2]string{"created", b.ID}, [2]string{"ending", a.ID}, [2]string{"ended", a.ID})
}

func TestEventsWithoutLastEventIDStartFromNow(t *testing.T) {
	e := htStart(t, nil)
	old := e.createFor("alice")
	e.revoke(old.ID) // events 1 to 3, recorded before anyone listens

	st := e.openEvents("", nil)
	c := e.createFor("bob")
	// The first event is the new one: nothing recorded before the connect.
	htWantEvents(t, st, 3, [2]string{"created", c.ID})
}

func TestEventsStreamEndsWhenServerCloses(t *testing.T) {
	e := htStart(t, nil)
	st := e.openEvents("", nil)
	c := e.createFor("alice")
	htWantEvents(t, st, 0, [2]string{"created", c.ID})

	e.srv.Close()
	rest, err := io.ReadAll(st.rd) // returns at EOF; the stream's context bounds it
	if err != nil {
		t.Fatalf("reading after Close: got %v, want the stream to end (EOF)", err)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		t.Errorf("got %q after Close, want nothing more", rest)
	}

	// A client reconnecting to a closing server is told to go elsewhere.
	htWantError(t, e.send("GET", "/v1/events", ""), http.StatusServiceUnavailable, sessiond.CodeUnavailable, "")
}

func TestEventsStreamEndsWhenManagerCloses(t *testing.T) {
	e := htStart(t, nil)
	st := e.openEvents("", nil)
	e.m.Close()
	if _, err := io.ReadAll(st.rd); err != nil {
		t.Fatalf("reading after Manager.Close: got %v, want the stream to end (EOF)", err)
	}
}

func TestEventsStreamSendsKeepAlive(t *testing.T) {
	e := htStart(t, func(c *httpapi.Config) { c.SSEKeepAlive = 5 * time.Millisecond })
	st := e.openEvents("", nil)
	if block := st.block(); !slices.Equal(block, []string{": keep-alive"}) {
		t.Fatalf("got %q, want a keep-alive comment", block)
	}
	// Events still come through between keep-alives.
	c := e.createFor("alice")
	htWantEvents(t, st, 0, [2]string{"created", c.ID})
}

// A client of the event stream that stops reading is cut: each event's
// write has a deadline (WriteTimeout), so the server does not keep a
// goroutine and a connection blocked on it.
func TestEventStreamCutsAClientThatStopsReading(t *testing.T) {
	e := htStart(t, func(c *httpapi.Config) { c.WriteTimeout = 200 * time.Millisecond })
	conn, err := net.Dial("tcp", e.ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096) // fill up sooner
	}
	fmt.Fprintf(conn, "GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", htKey)
	// Never read; make events until the server gives up on the stream.
	streamEnded := func() bool {
		e.obs.mu.Lock()
		defer e.obs.mu.Unlock()
		for _, o := range e.obs.list {
			if o.route == "GET /v1/events" {
				return true
			}
		}
		return false
	}
	n := 0
	sessiondtest.Eventually(t, "the stream of a client that stopped reading to end", func() bool {
		for range 500 {
			n++
			if _, err := e.m.Create(context.Background(), sessiond.CreateRequest{Subject: fmt.Sprint("filler-", n)}); err != nil {
				t.Fatal(err)
			}
		}
		return streamEnded()
	})
}
