package ws_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/inmem"
)

// noCleanups is a testing.TB whose Cleanup drops the function. wsEnv.dial
// registers a CloseNow per client with its TB, which a benchmark would keep,
// and every client with it, until it ends: the heap would grow with b.N for
// the harness's sake. The benchmarks close their clients themselves.
type noCleanups struct{ testing.TB }

func (noCleanups) Cleanup(func()) {}

// BenchmarkConnectCycle runs b.N connect (device mode), ack, close cycles
// on an in-process edge, in parallel batches of 100 (wsEnv.cycle): each
// batch's sessions wait out their disconnect grace, which the manual clock
// then skips, so they end and are purged (Retention -1). After the cycles
// it reports the heap after runtime.GC (twice, so sync.Pool caches are
// emptied too), in total and per cycle, and its growth over the heap after
// the warm-up (which fills the event log to its retention: some 20,000
// cycles, a few seconds). Nothing a cycle leaves behind may accumulate: the
// totals must stay flat from one b.N to another, e.g.
//
//	go test ./ws -run '^$' -bench ConnectCycle -benchtime 10000x
//	go test ./ws -run '^$' -bench ConnectCycle -benchtime 20000x
//
// (the per-cycle figures then halve). The heap includes the clients
// (coder/websocket, in the same process), which are closed and dropped too.
func BenchmarkConnectCycle(b *testing.B) {
	const parallel = 100
	e := newEnvWith(b, unlimited, sessiond.Config{Retention: -1})
	e.t = noCleanups{b}
	ctx := context.Background()
	// Warm up the pools and the goroutines that live as long as the edge,
	// and fill the store's event log (a ring of inmem.DefaultEventRetention
	// events, about five a cycle): until it wraps, each event's strings are
	// new heap, bounded by the retention but not flat.
	e.cycle(b, ctx, 0, parallel)
	for batch := -1; ; batch-- {
		if head, err := e.store.Head(ctx); err != nil || head.Seq(0) >= inmem.DefaultEventRetention {
			break
		}
		e.cycle(b, ctx, batch, 500)
	}
	base := settledHeap(b, e)
	b.ReportAllocs()
	b.ResetTimer()
	for done, batch := 0, 1; done < b.N; batch++ {
		n := min(parallel, b.N-done)
		e.cycle(b, ctx, batch, n)
		done += n
	}
	b.StopTimer()
	after := settledHeap(b, e)
	if st, _ := e.m.Stats(ctx); e.edge.Open() != 0 || st.Total != 0 {
		b.Fatalf("after %d cycles: %d sockets open, %d sessions stored", b.N, e.edge.Open(), st.Total)
	}
	n := float64(b.N)
	b.ReportMetric(float64(after.HeapInuse), "heapinuse-B")
	b.ReportMetric(float64(after.HeapAlloc), "heapalloc-B")
	b.ReportMetric(float64(after.HeapInuse)/n, "heapinuse-B/cycle")
	b.ReportMetric(float64(after.HeapAlloc)/n, "heapalloc-B/cycle")
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(base.HeapAlloc)), "heapalloc-growth-B")
	b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
}

// settledHeap waits for every socket to be closed and returns the heap
// after two collections.
func settledHeap(b *testing.B, e *wsEnv) runtime.MemStats {
	b.Helper()
	settle(b, e)
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms
}

// BenchmarkConnectAck measures connects per second through an in-process
// edge: dial (device mode, each its own subject and device), HS256
// verification, session create, ack; the client then closes. Credentials
// are signed before the timer starts. Client and server share the process
// and its cores, so this is a quick local check; the target (>= 5,000/s) is
// measured by bench/wsload against the sessiond binary.
//
//	go test ./ws -run '^$' -bench ConnectAck -benchtime 20000x
func BenchmarkConnectAck(b *testing.B) {
	e := newEnvWith(b, unlimited, sessiond.Config{})
	e.t = noCleanups{b}
	run := fmt.Sprint(time.Now().UnixNano())
	tokens := make([]string, b.N)
	for i := range tokens {
		tokens[i] = e.token(fmt.Sprintf("bench-%s-%d", run, i), time.Hour)
	}
	var next atomic.Int64
	b.SetParallelism(32) // 32 dialers per P: 64 on two cores, as wsload's -c 64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			c, _, err := e.dial(tokens[i], fmt.Sprintf("device_id=bench-%s-%d", run, i), nil)
			if err != nil {
				b.Error(err)
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, _, err = c.c.Read(ctx) // the ack
			cancel()
			if err != nil {
				b.Error(err)
			}
			_ = c.c.Close(websocket.StatusNormalClosure, "")
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "connects/s")
}
