package deadline_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sessiond/sessiond/internal/deadline"
)

type fired struct {
	key      string
	at, when time.Time
}

func run(t *testing.T, f func(s *deadline.Scheduler[string], got func() []fired)) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var log []fired
		s := deadline.New[string](deadline.SystemClock, 4, func(key string, at time.Time) {
			mu.Lock()
			log = append(log, fired{key, at, time.Now()})
			mu.Unlock()
		})
		defer s.Close()
		f(s, func() []fired {
			synctest.Wait()
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(log)
		})
	})
}

func TestFiresOnTimeInOrder(t *testing.T) {
	run(t, func(s *deadline.Scheduler[string], got func() []fired) {
		start := time.Now()
		perm := rand.Perm(200)
		for _, i := range perm {
			s.Set(fmt.Sprint(i), start.Add(time.Duration(i+1)*time.Second))
		}
		time.Sleep(100*time.Second + time.Millisecond)
		log := got()
		if len(log) != 100 {
			t.Fatalf("after 100s, %d fired, want 100", len(log))
		}
		for _, f := range log {
			if !f.when.Equal(f.at) {
				t.Fatalf("%s fired at %v, due %v", f.key, f.when.Sub(start), f.at.Sub(start))
			}
		}
		if s.Len() != 100 {
			t.Fatalf("%d left scheduled, want 100", s.Len())
		}
	})
}

func TestMoveAndRemove(t *testing.T) {
	run(t, func(s *deadline.Scheduler[string], got func() []fired) {
		now := time.Now()
		s.Set("a", now.Add(time.Minute))
		s.Set("b", now.Add(2*time.Minute))
		s.Set("c", now.Add(3*time.Minute))
		s.Set("a", now.Add(10*time.Minute)) // moved later
		s.Set("c", now.Add(30*time.Second)) // moved earlier
		s.Remove("b")
		s.Set("d", time.Time{}) // zero: nothing
		time.Sleep(5 * time.Minute)
		if log := got(); len(log) != 1 || log[0].key != "c" || log[0].when.Sub(now) != 30*time.Second {
			t.Fatalf("fired %+v; want only c at 30s", log)
		}
		time.Sleep(5 * time.Minute)
		if log := got(); len(log) != 2 || log[1].key != "a" || log[1].when.Sub(now) != 10*time.Minute {
			t.Fatalf("fired %+v; want a at 10m", log)
		}
		if s.Len() != 0 || !s.Next().IsZero() {
			t.Fatalf("scheduler not empty: %d", s.Len())
		}
	})
}

func TestPastDeadlinesFireAtOnce(t *testing.T) {
	run(t, func(s *deadline.Scheduler[string], got func() []fired) {
		now := time.Now()
		for i := range 50 {
			s.Set(fmt.Sprint(i), now.Add(-time.Duration(i)*time.Hour))
		}
		if log := got(); len(log) != 50 {
			t.Fatalf("%d of 50 past deadlines fired", len(log))
		}
	})
}

func TestCloseStopsEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := deadline.New[string](deadline.SystemClock, 2, func(string, time.Time) { t.Error("fired after Close") })
		s.Set("x", time.Now().Add(time.Second))
		s.Close()
		s.Close()
		s.Set("y", time.Now())
		time.Sleep(time.Minute)
	})
}
