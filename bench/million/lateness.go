package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/bench/internal/benchenv"
	"github.com/sessiond/sessiond/bench/internal/hist"
	"github.com/sessiond/sessiond/inmem"
)

// targetP99 is the project's target for the scheduler's p99 lateness.
const targetP99 = 10 * time.Millisecond

// lagObserver records each fired deadline's lateness and counts ended
// sessions; it is the Manager's Config.Observer.
type lagObserver struct {
	sessiond.NopObserver
	lag      hist.Histogram
	timeline *timeline
	ended    atomic.Int64
	notExp   atomic.Int64 // ended for another reason than expiry
	target   int64
	allEnded atomic.Int64 // unix ns when the target-th session ended
	done     chan struct{}
}

var _ sessiond.Observer = (*lagObserver)(nil)

func (o *lagObserver) SchedulerLag(d time.Duration) {
	o.lag.Record(d)
	o.timeline.record(d)
}

func (o *lagObserver) Transitioned(ev *sessiond.Event) {
	if ev.Type != sessiond.EventEnded {
		return
	}
	if ev.Reason != sessiond.EndExpired {
		o.notExp.Add(1)
	}
	if o.ended.Add(1) == o.target {
		o.allEnded.Store(time.Now().UnixNano())
		close(o.done)
	}
}

// atomicMin and atomicMax keep the extremes of unix-ns times.
func atomicMin(a *atomic.Int64, v int64) {
	for {
		c := a.Load()
		if (c != 0 && c <= v) || a.CompareAndSwap(c, v) {
			return
		}
	}
}

func atomicMax(a *atomic.Int64, v int64) {
	for {
		c := a.Load()
		if c >= v || a.CompareAndSwap(c, v) {
			return
		}
	}
}

func latenessPhase(o options) (bool, error) {
	n := o.latenessN
	ctx := context.Background()
	runtime.GC()
	debug.FreeOSMemory()
	fmt.Printf("\n== lateness: %d sessions created at a steady pace over %v (%.0f/s), ttl %v, no reads; every deadline fires\n",
		n, o.spread, float64(n)/o.spread.Seconds(), o.ttl)

	obs := &lagObserver{target: int64(n), done: make(chan struct{}), timeline: &timeline{}}
	st := &earlyStore{Store: inmem.New(inmem.Options{})}
	defer st.Close()
	m, err := sessiond.New(sessiond.Config{
		Store: st,
		// The overrides narrow the policy's ttl; a session created a little
		// ahead of its pace (later ones in a batch) needs a little more.
		Policies: []sessiond.Policy{{Name: "lateness", TTL: o.ttl + time.Second}},
		Logger:   quietLogger(),
		Observer: obs,
		Workers:  o.schedWorkers,
	})
	if err != nil {
		return false, err
	}
	if err := m.Start(ctx); err != nil {
		return false, err
	}
	defer m.Close()

	// Session i is created at pace(i) at the earliest, and its deadline is
	// pace(i)+ttl exactly: a ttl override takes off however late the create
	// ran, so deadlines stay evenly spread even when creation stutters.
	var firstDL, lastDL, maxBehind atomic.Int64
	t0 := time.Now().Add(100 * time.Millisecond)
	pace := func(i int) time.Time { return t0.Add(time.Duration(float64(o.spread) * float64(i) / float64(n))) }
	c := &creator{
		m: m, n: n, goroutines: o.goroutines, batch: 32, pace: pace,
		req: func(i int) sessiond.CreateRequest {
			due := pace(i).Add(o.ttl)
			now := time.Now()
			atomicMax(&maxBehind, int64(now.Sub(pace(i))))
			return sessiond.CreateRequest{
				Subject:  subject(i, o.perSubject),
				Override: sessiond.Overrides{TTL: max(due.Sub(now), time.Millisecond)},
			}
		},
		created: func(_ int, c *sessiond.Created) {
			at := c.Session.ExpiresAt.UnixNano()
			atomicMin(&firstDL, at)
			atomicMax(&lastDL, at)
		},
	}
	took, err := c.run(ctx)
	if err != nil {
		return false, err
	}
	createdAt := time.Now()
	first, last := time.Unix(0, firstDL.Load()), time.Unix(0, lastDL.Load())
	fmt.Printf("created %d in %v (paced; %.0f/s achieved); deadlines from %v to %v after the start, over %v\n",
		n, took.Round(time.Millisecond), float64(n)/took.Seconds(),
		first.Sub(t0).Round(time.Millisecond), last.Sub(t0).Round(time.Millisecond), last.Sub(first).Round(time.Millisecond))
	fmt.Printf("creation ran at most %v behind its pace (the ttl override keeps the deadlines on it)\n",
		time.Duration(maxBehind.Load()).Round(time.Millisecond))
	if createdAt.After(first) {
		fmt.Printf("NOTE: creation ran %v past the first deadline: early expiries overlapped creation (raise -ttl)\n",
			createdAt.Sub(first).Round(time.Millisecond))
	}
	if fired := obs.lag.Count(); fired > 0 {
		fmt.Printf("NOTE: %d deadlines fired before creation finished\n", fired)
	}

	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	// A control: a goroutine that sleeps to a deadline every millisecond
	// while the sessions expire, timing its own lateness. It shows what the
	// machine and the Go runtime alone give: when it is late too, the
	// sessions' lateness is the machine's, not the engine's.
	obs.timeline.start(first)
	control := &hist.Histogram{}
	stopControl := make(chan struct{})
	controlDone := make(chan struct{})
	go runControl(time.Until(first), control, stopControl, controlDone)
	limit := time.Until(last) + 2*time.Minute
	timeout := time.NewTimer(limit)
	defer timeout.Stop()
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
wait:
	for {
		select {
		case <-obs.done:
			break wait
		case <-tick.C:
			s, _ := m.Stats(ctx)
			fmt.Printf("  ... %v: %d of %d ended, %d deadlines fired, %d scheduled\n",
				time.Since(t0).Round(time.Second), obs.ended.Load(), n, obs.lag.Count(), s.Scheduled)
		case <-timeout.C:
			return false, fmt.Errorf("only %d of %d sessions ended %v after the last deadline", obs.ended.Load(), n, limit-time.Until(last))
		}
	}
	close(stopControl)
	<-controlDone
	obs.timeline.stop()
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	allEnded := time.Unix(0, obs.allEnded.Load())

	h := &obs.lag
	fmt.Printf("fired deadlines: %d (want %d), ended: %d (%d for a reason other than expired)\n",
		h.Count(), n, obs.ended.Load(), obs.notExp.Load())
	if e := st.early.Load(); e > 0 {
		fmt.Printf("NOTE: %d deadline firings found their session not yet due and rescheduled it (%d of them due by the\n"+
			"      wall clock but not by the monotonic one); the extra firings are in the count above\n", e, st.wallOnly.Load())
	}
	fmt.Printf("lateness: p50 %v  p90 %v  p99 %v  p99.9 %v  max %v  (mean %v)\n",
		hist.Round(h.Quantile(.5)), hist.Round(h.Quantile(.9)), hist.Round(h.Quantile(.99)),
		hist.Round(h.Quantile(.999)), hist.Round(h.Max()), hist.Round(h.Mean()))
	fmt.Printf("control (a bare 1ms sleep loop in this process, same window): p50 %v  p99 %v  p99.9 %v  max %v\n",
		hist.Round(control.Quantile(.5)), hist.Round(control.Quantile(.99)), hist.Round(control.Quantile(.999)), hist.Round(control.Max()))
	fmt.Printf("all %d ended %v after the last deadline (%v after the first)\n",
		n, allEnded.Sub(last).Round(time.Millisecond), allEnded.Sub(first).Round(time.Millisecond))
	fmt.Printf("during the expiries: %d GC cycles, %v total stop-the-world pause, heap %s MiB\n",
		ms1.NumGC-ms0.NumGC, time.Duration(ms1.PauseTotalNs-ms0.PauseTotalNs).Round(time.Microsecond), mib(int64(ms1.HeapAlloc)))
	fmt.Printf("load average now: %s\n", benchenv.LoadAvg())
	if o.timeline {
		obs.timeline.print(n)
	}
	p99 := h.Quantile(.99)
	met := p99 <= targetP99 && obs.ended.Load() == int64(n)
	fmt.Printf("\ntarget: scheduler p99 lateness <= %v: %v: %s\n", targetP99, hist.Round(p99), verdict(met))
	return met, nil
}

// runControl waits `after`, then sleeps to a deadline every millisecond,
// recording how late it wakes, until stop is closed.
func runControl(after time.Duration, h *hist.Histogram, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	select {
	case <-time.After(after):
	case <-stop:
		return
	}
	next := time.Now()
	for {
		next = next.Add(time.Millisecond)
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		late := time.Since(next)
		h.Record(late)
		if late > time.Millisecond {
			next = time.Now() // do not count one stall as many late ticks
		}
		select {
		case <-stop:
			return
		default:
		}
	}
}

// timeline keeps, per second since the first deadline, how many deadlines
// fired, the latest of them, and how many GC cycles ended, so that late
// stretches can be matched with what the runtime did meanwhile.
type timeline struct {
	origin atomic.Int64 // unix ns of the first deadline; 0 before start
	secs   [600]struct {
		fired, maxLag, gcEnded atomic.Int64
		heapLive               atomic.Uint64
	}
	stopGC chan struct{}
	gcDone chan struct{}
}

func (t *timeline) slot(now time.Time) int {
	o := t.origin.Load()
	if o == 0 {
		return -1
	}
	i := int(now.UnixNano()-o) / int(time.Second)
	return max(0, min(i, len(t.secs)-1))
}

func (t *timeline) record(d time.Duration) {
	i := t.slot(time.Now())
	if i < 0 {
		return
	}
	s := &t.secs[i]
	s.fired.Add(1)
	atomicMax(&s.maxLag, int64(d))
}

// start sets the origin and samples the runtime's completed GC cycles and
// live heap every 10ms until stop.
func (t *timeline) start(origin time.Time) {
	t.origin.Store(origin.UnixNano())
	t.stopGC, t.gcDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(t.gcDone)
		samples := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/gc/heap/live:bytes"}}
		metrics.Read(samples)
		last := samples[0].Value.Uint64()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-t.stopGC:
				return
			case now := <-tick.C:
				metrics.Read(samples)
				if c := samples[0].Value.Uint64(); c != last {
					if i := t.slot(now); i >= 0 {
						t.secs[i].gcEnded.Add(int64(c - last))
						t.secs[i].heapLive.Store(samples[1].Value.Uint64())
					}
					last = c
				}
			}
		}
	}()
}

func (t *timeline) stop() {
	if t.stopGC != nil {
		close(t.stopGC)
		<-t.gcDone
	}
}

func (t *timeline) print(n int) {
	last := 0
	for i := range t.secs {
		if t.secs[i].fired.Load() > 0 || t.secs[i].gcEnded.Load() > 0 {
			last = i
		}
	}
	fmt.Println("\ntimeline (seconds since the first deadline): deadlines fired, the latest one's lateness, GC cycles that ended")
	for i := 0; i <= last; i++ {
		s := &t.secs[i]
		gc := ""
		if g := s.gcEnded.Load(); g > 0 {
			gc = fmt.Sprintf("  GC cycle ended (%d), live heap %s MiB", g, mib(int64(s.heapLive.Load())))
		}
		fmt.Printf("  %3ds  %7d fired  max %-9v%s\n", i, s.fired.Load(), hist.Round(time.Duration(s.maxLag.Load())), gc)
	}
}

// earlyStore counts reads of sessions that are live and not yet due: in
// this phase only the scheduler reads sessions, so each is a deadline that
// fired before its session was due, which the engine then reschedules.
type earlyStore struct {
	sessiond.Store
	early, wallOnly atomic.Int64
}

func (s *earlyStore) Get(ctx context.Context, id string) (*sessiond.Session, error) {
	sess, err := s.Store.Get(ctx, id)
	if err == nil && sess.State.Live() && !sess.ExpiresAt.IsZero() {
		now := time.Now()
		if now.Before(sess.ExpiresAt) { // monotonic, as the engine compares
			s.early.Add(1)
			if !now.Round(0).Before(sess.ExpiresAt.Round(0)) { // wall, as the scheduler compares
				s.wallOnly.Add(1)
			}
		}
	}
	return sess, err
}
