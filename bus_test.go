package sessiond_test

import (
	"errors"
	"testing"
	"testing/synctest"

	"github.com/sessiond/sessiond"
)

// Event subscriptions are capped (MaxSubscribers): one over the cap is
// refused with an unavailable error, and closing one makes room.
func TestSubscribersAreCapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := start(t, sessiond.Config{MaxSubscribers: 2})
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
