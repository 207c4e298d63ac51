package memindex

import (
	"context"
	"sync"

	"github.com/sessiond/sessiond"
)

// EventRing holds the newest events of a store's log, up to a fixed
// number, for readers that follow the log: the whole log of the memory
// store, the tail of the embedded store's (which reads older events from
// disk). Events are appended in Seq order; once the ring is full the
// oldest fall out. It is safe for concurrent use.
type EventRing struct {
	mu   sync.Mutex
	buf  []sessiond.Event
	head int           // index of the oldest event held
	n    int           // events held
	last uint64        // Seq of the newest event appended; 0 before any
	grew chan struct{} // closed at the next Append; nil until a Wait
}

// NewEventRing returns an empty ring that holds up to size events (at
// least one).
func NewEventRing(size int) *EventRing {
	return &EventRing{buf: make([]sessiond.Event, max(size, 1))}
}

// Append adds events, already numbered, in Seq order. Each must follow
// the newest held (Seq one more); one that does not starts the ring
// afresh from it, so that the ring never holds a gap.
func (r *EventRing) Append(events []sessiond.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	size := len(r.buf)
	for _, ev := range events {
		if r.n > 0 && ev.Seq != r.last+1 {
			clear(r.buf)
			r.head, r.n = 0, 0
		}
		if r.n < size {
			r.buf[(r.head+r.n)%size] = ev
			r.n++
		} else {
			r.buf[r.head] = ev
			r.head = (r.head + 1) % size
		}
		r.last = ev.Seq
	}
	if len(events) > 0 && r.grew != nil {
		close(r.grew)
		r.grew = nil
	}
}

// Wait returns the Seq of the newest event appended once it is past
// after, or ctx's error (sessiond.EventWaiter for the stores that keep
// their newest events here).
func (r *EventRing) Wait(ctx context.Context, after uint64) (uint64, error) {
	for {
		r.mu.Lock()
		last := r.last
		if r.grew == nil {
			r.grew = make(chan struct{})
		}
		grew := r.grew
		r.mu.Unlock()
		if last > after {
			return last, nil
		}
		select {
		case <-grew:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// Last returns the Seq of the newest event appended, or 0.
func (r *EventRing) Last() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// After returns up to limit events with Seq > after that the ring holds,
// oldest first, and whether they are all there are: false when the ring
// is empty or events after after have fallen out of it (or were never in
// it), which the caller may read elsewhere or report as a jump in Seq.
func (r *EventRing) After(after uint64, limit int) (events []sessiond.Event, complete bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == 0 {
		return nil, false
	}
	first := r.buf[r.head].Seq
	complete = after+1 >= first
	start := 0
	if complete {
		start = int(min(after+1-first, uint64(r.n)))
	}
	for i := start; i < r.n && len(events) < limit; i++ {
		events = append(events, r.buf[(r.head+i)%len(r.buf)])
	}
	return events, complete
}
