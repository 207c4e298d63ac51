package ws_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/sessiondtest"
)

// After many connect, disconnect and expire cycles, goroutines and timers
// are back where they started: nothing a connection starts outlives it.
// (The heap is reported by BenchmarkConnectCycle.)
func TestNoLeaksAfterCycles(t *testing.T) {
	const cycles, parallel = 10_000, 100
	// Ended sessions are purged at once, so nothing is kept between cycles.
	e := newEnvWith(t, unlimited, sessiond.Config{Retention: -1})
	ctx := context.Background()
	// Warm up the pools and goroutines that live as long as the server.
	e.cycle(t, ctx, 0, parallel)
	settle(t, e)
	baseG, baseT := runtime.NumGoroutine(), e.clock.Pending()

	for batch := 1; batch <= cycles/parallel; batch++ {
		e.cycle(t, ctx, batch, parallel)
	}
	settle(t, e)
	sessiondtest.Eventually(t, fmt.Sprintf("the goroutines to go back to the baseline's %d", baseG), func() bool { return runtime.NumGoroutine() <= baseG })
	if g, tm := runtime.NumGoroutine(), e.clock.Pending(); g > baseG || tm > baseT {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Fatalf("after %d cycles: %d goroutines (baseline %d), %d timers (baseline %d)\n%s", cycles, g, baseG, tm, baseT, buf[:n])
	}
	st, _ := e.m.Stats(ctx)
	if e.edge.Open() != 0 || st.Total != 0 {
		t.Fatalf("after %d cycles: %d sockets open, %d sessions stored", cycles, e.edge.Open(), st.Total)
	}
	t.Logf("%d cycles: goroutines %d, timers %d, as at the start", cycles, baseG, baseT)
}

// cycle connects n devices at once, closes them from the client side, and
// lets their disconnect grace end the sessions.
func (e *wsEnv) cycle(t testing.TB, ctx context.Context, batch, n int) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, _, err := e.dial(e.token(fmt.Sprint("user-", i), time.Hour), fmt.Sprintf("device_id=d%d-%d", batch, i), nil)
			if err != nil {
				t.Error(err)
				return
			}
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if _, _, err := c.c.Read(rctx); err != nil { // the ack
				t.Error(err)
			}
			_ = c.c.Close(websocket.StatusNormalClosure, "")
		})
	}
	wg.Wait()
	sessiondtest.Eventually(e.t, "every socket closed", func() bool { return e.edge.Open() == 0 })
	sessiondtest.Eventually(e.t, "every session disconnected", func() bool {
		st, _ := e.m.Stats(ctx)
		return st.Sessions[sessiond.StateActive] == 0
	})
	// The sockets are closed and time has not moved: their timers must be
	// stopped already, leaving only the three that live as long as the
	// server: the scheduler's, the lease renewal's and the edge's reconcile.
	if p := e.clock.Pending(); p > 3 {
		t.Errorf("batch %d: %d timers pending after every socket closed; want only the scheduler's, the lease's and the reconcile's", batch, p)
	}
	e.clock.Advance(device().DisconnectGrace) // the grace ends them all
	sessiondtest.Eventually(e.t, "every session ended and purged", func() bool {
		st, _ := e.m.Stats(ctx)
		return st.Total == 0
	})
}

func settle(t testing.TB, e *wsEnv) {
	t.Helper()
	runtime.GC()
	sessiondtest.Eventually(e.t, "sockets closed", func() bool { return e.edge.Open() == 0 })
}
