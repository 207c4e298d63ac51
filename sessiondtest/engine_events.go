package sessiondtest

import (
	"errors"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/sessiond/sessiond"
)

func testEventsInOrder(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, h, sessiond.Config{})
		sub, err := e.m.Subscribe(t.Context(), sessiond.FromNow)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		c := e.create("alice")
		if _, err := e.m.Rotate(t.Context(), c.Session.ID); err != nil {
			t.Fatal(err)
		}
		if err := e.m.Revoke(t.Context(), c.Session.ID, ""); err != nil {
			t.Fatal(err)
		}
		var got []string
		var last uint64
		var afterFirst sessiond.Cursor
		for len(got) < 4 {
			ev, err := sub.Next(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if ev.Seq <= last {
				t.Fatalf("seq %d after %d in one session's partition", ev.Seq, last)
			}
			if !sub.Cursor().Covers(ev) {
				t.Fatalf("the subscription's cursor %v is not past the event it returned (%d/%d)", sub.Cursor(), ev.Partition, ev.Seq)
			}
			if len(got) == 0 {
				afterFirst = sub.Cursor()
			}
			last = ev.Seq
			got = append(got, string(ev.Type))
		}
		if fmt.Sprint(got) != "[created rotated ending ended]" {
			t.Fatalf("events %v", got)
		}

		// Resume from a cursor: the missed events are replayed from the
		// log, then live ones follow.
		resumed, err := e.m.Subscribe(t.Context(), afterFirst)
		if err != nil {
			t.Fatal(err)
		}
		defer resumed.Close()
		bob := e.create("bob")
		var again []string
		for len(again) < 4 {
			ev, err := resumed.Next(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			who := "alice"
			if ev.SessionID == bob.Session.ID {
				who = "bob"
			}
			again = append(again, who+":"+string(ev.Type))
		}
		if fmt.Sprint(again) != "[alice:rotated alice:ending alice:ended bob:created]" {
			t.Fatalf("resumed stream %v", again)
		}
		// From the zero cursor: the whole retained log.
		whole, err := e.m.Subscribe(t.Context(), sessiond.Cursor{})
		if err != nil {
			t.Fatal(err)
		}
		defer whole.Close()
		if ev, err := whole.Next(t.Context()); err != nil || ev.Seq != 1 || ev.Type != sessiond.EventCreated {
			t.Fatalf("Subscribe(0) starts with %+v, %v; want a first event", ev, err)
		}
		// A cursor of another deployment is refused.
		_, err = e.m.Subscribe(t.Context(), sessiond.CursorOf(append(make([]uint64, sessiond.MaxCursorPartitions-1), 1)...))
		if !errors.Is(err, sessiond.ErrInvalidArgument) {
			t.Fatalf("Subscribe(a cursor naming partition %d) = %v; want invalid_argument", sessiond.MaxCursorPartitions-1, err)
		}
	})
}

func testSlowSubscriberIsDropped(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, h, sessiond.Config{SubscriberBuffer: 4})
		slow, err := e.m.Subscribe(t.Context(), sessiond.FromNow)
		if err != nil {
			t.Fatal(err)
		}
		defer slow.Close()
		for range 20 { // the engine is never held up by the reader
			e.create("alice")
		}
		synctest.Wait()
		n := 0
		for {
			_, err := slow.Next(t.Context())
			if errors.Is(err, sessiond.ErrSubscriberTooSlow) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != 4 {
			t.Fatalf("a dropped subscriber got %d events, want its buffer's 4", n)
		}
	})
}

// Event subscriptions are capped (MaxSubscribers): one over the cap is
// refused with an unavailable error, and closing one makes room.
func testSubscribersAreCapped(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, h, sessiond.Config{MaxSubscribers: 2})
		a, err := e.m.Subscribe(t.Context(), sessiond.FromNow)
		if err != nil {
			t.Fatal(err)
		}
		b, err := e.m.Subscribe(t.Context(), sessiond.FromNow)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		_, err = e.m.Subscribe(t.Context(), sessiond.FromNow)
		if !errors.Is(err, sessiond.ErrTooManySubscribers) || sessiond.ErrorCode(err) != sessiond.CodeUnavailable {
			t.Fatalf("third subscription: %v; want ErrTooManySubscribers (unavailable)", err)
		}
		a.Close()
		c, err := e.m.Subscribe(t.Context(), sessiond.FromNow)
		if err != nil {
			t.Fatalf("after one closed: %v", err)
		}
		defer c.Close()
		// A subscriber still gets everything in order through its queue.
		for range 100 {
			e.create("alice")
		}
		for i := range 100 {
			ev, err := c.Next(t.Context())
			if err != nil || ev.Type != sessiond.EventCreated {
				t.Fatalf("event %d: %+v, %v", i, ev, err)
			}
		}
	})
}
