package httpapi

import (
	"container/list"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of the limit on failed API key attempts.
const (
	DefaultAuthFailureLimit     = 10
	DefaultAuthFailureWindow    = time.Minute
	DefaultAuthFailureAddresses = 10_000
)

// failureLimiter counts failed admin authentications per client address in
// fixed windows: the first failure opens an address's window; once it has
// limit failures in it, the address is refused until the window ends.
//
// Its memory is bounded: at most max addresses, kept in the order their
// windows opened. Windows that ended are dropped as they reach the front,
// during the calls that happen anyway, and when the table is full the
// oldest window is dropped to make room. Nothing scans the table on a timer.
type failureLimiter struct {
	limit  int
	window time.Duration
	max    int
	now    func() time.Time

	size    atomic.Int64 // len(entries), read without the lock
	mu      sync.Mutex
	entries map[string]*list.Element // of *failures
	order   *list.List               // oldest window first
}

type failures struct {
	ip    string
	start time.Time // when the window opened
	n     int
}

func newFailureLimiter(limit int, window time.Duration, max int, now func() time.Time) *failureLimiter {
	return &failureLimiter{limit: limit, window: window, max: max, now: now,
		entries: make(map[string]*list.Element), order: list.New()}
}

// blocked reports whether ip has used up its failures, and how long until
// its window ends. A nil limiter blocks nothing.
func (l *failureLimiter) blocked(ip string) (time.Duration, bool) {
	if l == nil || l.size.Load() == 0 {
		return 0, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.prune(now)
	el, ok := l.entries[ip]
	if !ok {
		return 0, false
	}
	f := el.Value.(*failures)
	if f.n < l.limit {
		return 0, false
	}
	return f.start.Add(l.window).Sub(now), true
}

// fail records a failed attempt from ip.
func (l *failureLimiter) fail(ip string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.prune(now)
	if el, ok := l.entries[ip]; ok {
		el.Value.(*failures).n++
		return
	}
	if l.order.Len() >= l.max {
		l.remove(l.order.Front())
	}
	l.entries[ip] = l.order.PushBack(&failures{ip: ip, start: now, n: 1})
	l.size.Store(int64(len(l.entries)))
}

// prune drops the windows at the front that have ended. Each entry is
// dropped once, so the work is bounded by the failures recorded.
func (l *failureLimiter) prune(now time.Time) {
	for el := l.order.Front(); el != nil; el = l.order.Front() {
		if now.Sub(el.Value.(*failures).start) < l.window {
			return
		}
		l.remove(el)
	}
}

func (l *failureLimiter) remove(el *list.Element) {
	delete(l.entries, l.order.Remove(el).(*failures).ip)
	l.size.Store(int64(len(l.entries)))
}

// len returns how many addresses the limiter remembers.
func (l *failureLimiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}
