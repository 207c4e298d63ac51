// Package ratelimit counts events per key (a client address, a subject)
// in fixed windows, in a table of bounded size: the first event opens a
// key's window; once the window holds Limit events, the key is refused
// until the window ends.
//
// Memory is bounded: at most Max keys, kept in the order their windows
// opened. Windows that ended are dropped as they reach the front, during
// the calls that happen anyway, and when the table is full the oldest
// window is dropped to make room. Nothing scans the table on a timer.
package ratelimit

import (
	"container/list"
	"sync"
	"sync/atomic"
	"time"
)

// Windows counts events per key. A nil *Windows refuses nothing.
type Windows struct {
	limit  int
	window time.Duration
	max    int
	now    func() time.Time

	full    atomic.Int64 // keys whose window is used up, read without the lock
	mu      sync.Mutex
	entries map[string]*list.Element // of *count
	order   *list.List               // oldest window first
}

type count struct {
	key   string
	start time.Time // when the window opened
	n     int
}

// New returns a table allowing limit events per key in each window, for at
// most max keys at once. now tells the time (time.Now if nil).
func New(limit int, window time.Duration, max int, now func() time.Time) *Windows {
	if now == nil {
		now = time.Now
	}
	return &Windows{limit: limit, window: window, max: max, now: now,
		entries: make(map[string]*list.Element), order: list.New()}
}

// Blocked reports whether key has used up its window, and how long until
// the window ends.
func (l *Windows) Blocked(key string) (time.Duration, bool) {
	if !l.Refusing() {
		return 0, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.prune(now)
	if c := l.lookup(key); c != nil && c.n >= l.limit {
		return c.start.Add(l.window).Sub(now), true
	}
	return 0, false
}

// Add counts one event of key.
func (l *Windows) Add(key string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addLocked(key, l.now())
}

// Take counts one event of key unless its window is used up, in which case
// it reports false and how long until the window ends.
func (l *Windows) Take(key string) (time.Duration, bool) {
	if l == nil {
		return 0, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.prune(now)
	if c := l.lookup(key); c != nil {
		if c.n >= l.limit {
			return c.start.Add(l.window).Sub(now), false
		}
		l.count(c)
		return 0, true
	}
	l.addLocked(key, now)
	return 0, true
}

// count adds one event to c.
func (l *Windows) count(c *count) {
	if c.n++; c.n == l.limit {
		l.full.Add(1)
	}
}

func (l *Windows) lookup(key string) *count {
	if el, ok := l.entries[key]; ok {
		return el.Value.(*count)
	}
	return nil
}

func (l *Windows) addLocked(key string, now time.Time) {
	l.prune(now)
	c := l.lookup(key)
	if c == nil {
		if l.order.Len() >= l.max {
			l.remove(l.order.Front())
		}
		c = &count{key: key, start: now}
		l.entries[key] = l.order.PushBack(c)
	}
	l.count(c)
}

// prune drops the windows at the front that have ended. Each entry is
// dropped once, so the work is bounded by the events recorded.
func (l *Windows) prune(now time.Time) {
	for el := l.order.Front(); el != nil; el = l.order.Front() {
		if now.Sub(el.Value.(*count).start) < l.window {
			return
		}
		l.remove(el)
	}
}

func (l *Windows) remove(el *list.Element) {
	c := l.order.Remove(el).(*count)
	delete(l.entries, c.key)
	if c.n >= l.limit {
		l.full.Add(-1)
	}
}

// Refusing reports, without a lock, whether some key has used up its
// window (one whose window has ended counts until a call drops it). While
// it is false Blocked refuses nobody, and a caller may skip working out
// its key.
func (l *Windows) Refusing() bool { return l != nil && l.full.Load() > 0 }

// Len returns how many keys the table remembers.
func (l *Windows) Len() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}
