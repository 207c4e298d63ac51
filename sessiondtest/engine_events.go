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
		for len(got) < 4 {
			ev, err := sub.Next(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if ev.Seq <= last {
				t.Fatalf("seq %d after %d", ev.Seq, last)
			}
			last = ev.Seq
			got = append(got, string(ev.Type))
		}
		if fmt.Sprint(got) != "[created rotated ending ended]" {
			t.Fatalf("events %v", got)
		}

		// Resume from a Seq: the missed events are replayed from the log,
		// then live ones follow.
		resumed, err := e.m.Subscribe(t.Context(), 1)
		if err != nil {
			t.Fatal(err)
		}
		defer resumed.Close()
		e.create("bob")
		var again []string
		for len(again) < 4 {
			ev, err := resumed.Next(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			again = append(again, fmt.Sprintf("%d:%s", ev.Seq, ev.Type))
		}
		if fmt.Sprint(again) != "[2:rotated 3:ending 4:ended 5:created]" {
			t.Fatalf("resumed stream %v", again)
		}
		// After 0: the whole retained log.
		whole, err := e.m.Subscribe(t.Context(), 0)
		if err != nil {
			t.Fatal(err)
		}
		defer whole.Close()
		if ev, err := whole.Next(t.Context()); err != nil || ev.Seq != 1 || ev.Type != sessiond.EventCreated {
			t.Fatalf("Subscribe(0) starts with %+v, %v; want the first event", ev, err)
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
