// Package deadline schedules one deadline per key (a session, a
// connection: any comparable key type) and calls a function for each as it
// comes due.
//
// It is a binary min-heap indexed by key, with one timer armed for the
// earliest deadline. Setting, moving or removing a deadline costs O(log n);
// a firing costs O(log n) per key that is due. Nothing is ever visited
// because of the passage of time alone, so the cost of a tick follows what
// is due, not what exists.
package deadline

import (
	"sync"
	"time"
)

// Clock is where the scheduler takes its time from.
type Clock struct {
	Now       func() time.Time
	AfterFunc func(d time.Duration, f func()) Timer
}

// Timer is a timer made by Clock.AfterFunc.
type Timer interface {
	Stop() bool
	Reset(d time.Duration) bool
}

// SystemClock is the real clock.
var SystemClock = Clock{
	Now:       time.Now,
	AfterFunc: func(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) },
}

// Func handles a key that came due. at is the deadline it was set for; the
// difference to the clock's time is the lateness. A key is removed before
// its Func runs: to keep it, Set it again.
type Func[K comparable] func(key K, at time.Time)

type item[K comparable] struct {
	key   K
	at    int64 // unix nanoseconds
	index int32
}

// Scheduler runs a Func for keys as their deadlines pass.
type Scheduler[K comparable] struct {
	clock Clock
	fn    Func[K]

	mu      sync.Mutex
	heap    []*item[K]
	items   map[K]*item[K]
	timer   Timer
	armedAt int64 // deadline the timer is armed for; 0 when unarmed
	closed  bool

	wake chan struct{}
	work chan item[K]
	done chan struct{}
	wg   sync.WaitGroup
}

// New returns a Scheduler that runs fn on workers goroutines. Call Close to
// stop it.
func New[K comparable](clock Clock, workers int, fn Func[K]) *Scheduler[K] {
	if workers < 1 {
		workers = 1
	}
	s := &Scheduler[K]{
		clock: clock,
		fn:    fn,
		items: make(map[K]*item[K]),
		wake:  make(chan struct{}, 1),
		work:  make(chan item[K]),
		done:  make(chan struct{}),
	}
	s.wg.Add(1 + workers)
	go s.dispatch()
	for range workers {
		go s.worker()
	}
	return s
}

// Set schedules key at t, replacing any deadline it had. A zero t removes it.
func (s *Scheduler[K]) Set(key K, t time.Time) {
	if t.IsZero() {
		s.Remove(key)
		return
	}
	at := t.UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if it, ok := s.items[key]; ok {
		if it.at == at {
			return
		}
		it.at = at
		s.fix(int(it.index))
	} else {
		it := &item[K]{key: key, at: at, index: int32(len(s.heap))}
		s.items[key] = it
		s.heap = append(s.heap, it)
		s.up(len(s.heap) - 1)
	}
	if s.armedAt == 0 || at < s.armedAt {
		s.armLocked()
	}
}

// Remove forgets key's deadline, if it has one.
func (s *Scheduler[K]) Remove(key K) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.items[key]
	if !ok {
		return
	}
	s.removeAt(int(it.index))
	// The timer may now fire early; dispatch finds nothing due and re-arms.
}

// Len returns the number of keys scheduled.
func (s *Scheduler[K]) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.heap)
}

// Next returns the earliest deadline, or zero.
func (s *Scheduler[K]) Next() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.heap) == 0 {
		return time.Time{}
	}
	return time.Unix(0, s.heap[0].at)
}

// Close stops the timer and the workers and waits for running Funcs to return.
// Keys still scheduled are dropped. Close is idempotent.
func (s *Scheduler[K]) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
	s.mu.Unlock()
	close(s.done)
	s.wg.Wait()
}

// armLocked points the timer at the earliest deadline.
func (s *Scheduler[K]) armLocked() {
	if len(s.heap) == 0 || s.closed {
		s.armedAt = 0
		return
	}
	at := s.heap[0].at
	d := time.Duration(at - s.clock.Now().UnixNano())
	s.armedAt = at
	if s.timer == nil {
		s.timer = s.clock.AfterFunc(d, s.signal)
	} else {
		s.timer.Reset(d)
	}
}

func (s *Scheduler[K]) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Scheduler[K]) dispatch() {
	defer s.wg.Done()
	defer close(s.work)
	for {
		select {
		case <-s.wake:
		case <-s.done:
			return
		}
		for {
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				return
			}
			now := s.clock.Now().UnixNano()
			if len(s.heap) == 0 || s.heap[0].at > now {
				s.armedAt = 0
				s.armLocked()
				s.mu.Unlock()
				break
			}
			it := *s.heap[0]
			s.removeAt(0)
			s.mu.Unlock()
			select {
			case s.work <- it:
			case <-s.done:
				return
			}
		}
	}
}

func (s *Scheduler[K]) worker() {
	defer s.wg.Done()
	for it := range s.work {
		s.fn(it.key, time.Unix(0, it.at))
	}
}

// Heap operations. s.mu is held.

func (s *Scheduler[K]) less(i, j int) bool { return s.heap[i].at < s.heap[j].at }

func (s *Scheduler[K]) swap(i, j int) {
	s.heap[i], s.heap[j] = s.heap[j], s.heap[i]
	s.heap[i].index = int32(i)
	s.heap[j].index = int32(j)
}

func (s *Scheduler[K]) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !s.less(j, i) {
			break
		}
		s.swap(i, j)
		j = i
	}
}

func (s *Scheduler[K]) down(i int) bool {
	i0, n := i, len(s.heap)
	for {
		j := 2*i + 1
		if j >= n {
			break
		}
		if r := j + 1; r < n && s.less(r, j) {
			j = r
		}
		if !s.less(j, i) {
			break
		}
		s.swap(i, j)
		i = j
	}
	return i > i0
}

func (s *Scheduler[K]) fix(i int) {
	if !s.down(i) {
		s.up(i)
	}
}

func (s *Scheduler[K]) removeAt(i int) {
	last := len(s.heap) - 1
	it := s.heap[i]
	if i != last {
		s.swap(i, last)
	}
	s.heap[last] = nil
	s.heap = s.heap[:last]
	if i != last {
		s.fix(i)
	}
	delete(s.items, it.key)
}
