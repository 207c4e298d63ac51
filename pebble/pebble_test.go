package pebble_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/pebble"
	"github.com/sessiond/sessiond/sessiondtest"
)

func open(t testing.TB, dir string, retain int) *pebble.Store {
	t.Helper()
	s, err := pebble.Open(pebble.Options{Dir: dir, EventRetention: retain})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	dirs := map[sessiond.Store]string{}
	sessiondtest.TestStore(t, sessiondtest.Harness{
		Open: func(t testing.TB) sessiond.Store {
			dir := t.TempDir()
			s := open(t, dir, 0)
			dirs[s] = dir
			return s
		},
		Reopen: func(t testing.TB, old sessiond.Store) sessiond.Store {
			if err := old.Close(); err != nil {
				t.Fatal(err)
			}
			s := open(t, dirs[old], 0)
			dirs[s] = dirs[old]
			return s
		},
	})
}

// TestEngine runs the engine suite on Pebble. Each store is opened where
// its test runs: inside that test's synctest bubble, for most, so that
// Pebble's goroutines belong to the bubble and are gone when it ends.
func TestEngine(t *testing.T) {
	sessiondtest.TestEngine(t, sessiondtest.Harness{
		Open: func(t testing.TB) sessiond.Store { return open(t, t.TempDir(), 0) },
	})
}

func TestEventRetention(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir, 3)
	ctx := t.Context()
	for range 5 {
		s, _ := sessiondtest.NewSession("alice", sessiondtest.Epoch)
		if _, err := st.Create(ctx, sessiond.Change{Session: s, Events: []sessiond.Event{{Type: sessiond.EventCreated, SessionID: s.ID}}}, sessiond.Limit{}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(st *pebble.Store) {
		t.Helper()
		evs, err := st.Events(ctx, sessiond.Cursor{}, 10)
		if err != nil || len(evs) != 3 || evs[0].Seq != 3 || evs[2].Seq != 5 {
			t.Fatalf("with retention 3 after 5 events, Events(0) = %+v, %v; want seqs 3..5", evs, err)
		}
	}
	check(st)
	st.Close()
	st = open(t, dir, 3)
	defer st.Close()
	check(st)
	s, _ := sessiondtest.NewSession("alice", sessiondtest.Epoch)
	ev := []sessiond.Event{{Type: sessiond.EventCreated, SessionID: s.ID}}
	if _, err := st.Create(ctx, sessiond.Change{Session: s, Events: ev}, sessiond.Limit{}); err != nil || ev[0].Seq != 6 {
		t.Fatalf("after reopen, next seq %d (%v), want 6", ev[0].Seq, err)
	}
	evs, _ := st.Events(ctx, sessiond.Cursor{}, 10)
	if len(evs) != 3 || evs[0].Seq != 4 {
		t.Fatalf("trim after reopen: %+v", evs)
	}
}

// BenchmarkCreate measures acknowledged (fsynced) creates with 64
// concurrent callers, through the engine as the server runs it.
//
//	go test -run=^$ -bench=Create -benchtime=200000x ./pebble/
func BenchmarkCreate(b *testing.B) {
	st := open(b, b.TempDir(), 0)
	defer st.Close()
	m, err := sessiond.New(sessiond.Config{Store: st})
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	// Follow the log as the WebSocket edge does: the store is read after
	// every commit.
	ctx, stop := context.WithCancel(b.Context())
	defer stop()
	go func() {
		for ctx.Err() == nil {
			sub, err := m.Subscribe(ctx, sessiond.FromNow)
			if err != nil {
				return
			}
			for {
				if _, err := sub.Next(ctx); err != nil {
					break // too slow: subscribe again; or done
				}
			}
			sub.Close()
		}
	}()
	b.SetParallelism(64 / max(1, runtime.GOMAXPROCS(0)))
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := m.Create(context.Background(), sessiond.CreateRequest{Subject: fmt.Sprint("user-", n.Add(1)%10000)}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
}
