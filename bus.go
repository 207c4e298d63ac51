package sessiond

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/sessiond/sessiond/internal/wait"
)

// ErrSubscriberTooSlow ends a Subscription whose queue overflowed. The
// subscriber can subscribe again from its Cursor and catch up from the
// store's event log.
var ErrSubscriberTooSlow = errors.New("sessiond: event subscriber too slow; dropped")

// ErrSubscriptionClosed is returned by Next after Close or after the
// Manager closed.
var ErrSubscriptionClosed = errors.New("sessiond: subscription closed")

// ErrTooManySubscribers refuses a subscription when MaxSubscribers are open.
var ErrTooManySubscribers = &Error{Code: CodeUnavailable, Message: "too many event subscribers (max_subscribers); retry later"}

// bus delivers the store's event log to in-process subscribers. One pump
// goroutine reads each new event from the store once and offers it to every
// subscriber's bounded queue; a subscriber whose queue is full is dropped
// and counted, so a slow reader never holds up the engine or other readers.
// Queues start small and grow with what a subscriber has not read yet, so
// an idle subscriber costs little.
type bus struct {
	store   Store
	obs     Observer
	buffer  int // most events a subscriber may have unread
	maxSubs int
	kick    chan struct{}
	cancel  context.CancelFunc // stops the pump
	wg      sync.WaitGroup

	mu   sync.Mutex
	subs map[*Subscription]struct{}
	last Cursor // past the last events offered to subscribers

	// watch sees every event before subscribers do, when watching says it
	// wants to; the engine uses it to dispose of resources of sessions that
	// another engine ended. It must not block.
	watch    func(Event)
	watching func() bool
}

func newBus(store Store, obs Observer, buffer, maxSubs int) *bus {
	return &bus{
		store: store, obs: obs, buffer: buffer, maxSubs: maxSubs,
		kick: make(chan struct{}, 1),
		subs: make(map[*Subscription]struct{}),
	}
}

func (b *bus) start(ctx context.Context) error {
	last, err := b.store.Head(ctx)
	if err != nil {
		return err
	}
	b.last = last
	// The pump outlives the call that starts it: it stops with the bus.
	ctx, b.cancel = context.WithCancel(context.WithoutCancel(ctx))
	b.wg.Add(1)
	go b.pump(ctx)
	if w, ok := b.store.(EventWaiter); ok {
		b.wg.Add(1)
		go b.follow(ctx, w, last)
	}
	return nil
}

// followPause is how long follow waits after waking the pump before it
// waits on the log again: under a stream of writes, one wake per pause
// rather than one per write.
const followPause = 10 * time.Millisecond

// follow wakes the pump whenever the store's log grows, whoever wrote to
// it: the events of other engines sharing the store reach this engine's
// subscribers, and its sweeper disposes of what this process holds for
// sessions they ended. (This engine's own writes wake the pump at once.)
func (b *bus) follow(ctx context.Context, w EventWaiter, after Cursor) {
	defer b.wg.Done()
	for failed := 0; ; {
		last, err := w.WaitEvents(ctx, after)
		pause := followPause
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			failed++
			pause = min(time.Duration(failed)*100*time.Millisecond, 5*time.Second)
		default:
			failed, after = 0, last
			b.notify()
		}
		if wait.Sleep(ctx, pause) != nil {
			return
		}
	}
}

func (b *bus) stop() {
	if b.cancel != nil {
		b.cancel()
	}
	b.wg.Wait()
	b.mu.Lock()
	for s := range b.subs {
		b.dropLocked(s, ErrSubscriptionClosed)
	}
	b.mu.Unlock()
}

// notify tells the pump that new events may be in the store.
func (b *bus) notify() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

func (b *bus) pump(ctx context.Context) {
	defer b.wg.Done()
	for {
		select {
		case <-b.kick:
		case <-ctx.Done():
			return
		}
		for b.deliver(ctx) {
		}
	}
}

// deliver offers the next batch of events; it reports whether there may be more.
func (b *bus) deliver(ctx context.Context) bool {
	b.mu.Lock()
	if len(b.subs) == 0 && (b.watching == nil || !b.watching()) {
		// Nobody listens: just move the mark, so that a new subscriber
		// starts from now rather than from history.
		if last, err := b.store.Head(ctx); err == nil {
			b.last = last
		}
		b.mu.Unlock()
		return false
	}
	from := b.last
	b.mu.Unlock()

	evs, err := b.store.Events(ctx, from, 512)
	if err != nil || len(evs) == 0 {
		return false
	}
	if b.watch != nil {
		for _, ev := range evs {
			b.watch(ev)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range evs {
		ev := evs[i]
		for s := range b.subs {
			if s.skip.Covers(ev) {
				continue
			}
			if !s.push(ev, b.buffer) {
				b.dropLocked(s, ErrSubscriberTooSlow)
				b.obs.SubscriberDropped()
			}
		}
		b.last = b.last.After(ev)
	}
	return len(evs) == 512
}

func (b *bus) dropLocked(s *Subscription, err error) {
	if _, ok := b.subs[s]; !ok {
		return
	}
	delete(b.subs, s)
	s.end(err)
}

func (b *bus) subscribe(ctx context.Context, after Cursor) (*Subscription, error) {
	s := &Subscription{b: b, wake: make(chan struct{}, 1)}
	if after.IsFromNow() {
		// The pump may not have caught up with the log yet.
		head, err := b.store.Head(ctx)
		if err != nil {
			return nil, err
		}
		after = head
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := after.Within(max(b.last.Len(), 1)); err != nil {
		return nil, err
	}
	if len(b.subs) >= b.maxSubs {
		return nil, ErrTooManySubscribers
	}
	// What the pump offered already comes from the store's log first;
	// the pump offers the rest, but for what after is past.
	s.skip, s.pos = after.Max(b.last), after
	if after.Behind(b.last) {
		s.replayAfter, s.replayTo = after, b.last
	}
	b.subs[s] = struct{}{}
	return s, nil
}

// Subscription is a stream of events. Events of one session come in the
// order of their transitions; those of sessions in different partitions
// of a shared store, in no promised order.
type Subscription struct {
	b    *bus
	skip Cursor        // the pump's events it is past are not for this subscription
	pos  Cursor        // past the events Next returned (Cursor)
	wake chan struct{} // signalled when queue grows or the subscription ends

	mu    sync.Mutex
	queue []Event // delivered, not read yet
	head  int     // queue[head:] are unread
	err   error   // set when the subscription ends

	// Replay from the store first: the events replayTo is past and
	// replayAfter is not.
	replayAfter, replayTo Cursor
	replay                []Event
}

// Cursor returns the position past the events Next returned: subscribing
// again from it resumes the stream (from the store's retained log).
func (s *Subscription) Cursor() Cursor { return s.pos }

// Next returns the next event, waiting for one. It returns ctx's error,
// ErrSubscriberTooSlow if the subscription was dropped for falling behind,
// or ErrSubscriptionClosed after Close.
func (s *Subscription) Next(ctx context.Context) (Event, error) {
	for len(s.replay) == 0 && s.replayAfter.Behind(s.replayTo) {
		evs, err := s.b.store.Events(ctx, s.replayAfter, 256)
		if err != nil {
			return Event{}, err
		}
		if len(evs) == 0 {
			s.replayAfter = s.replayTo
			break
		}
		for _, ev := range evs {
			if s.replayTo.Covers(ev) {
				s.replay = append(s.replay, ev)
			}
			s.replayAfter = s.replayAfter.After(ev)
		}
	}
	if len(s.replay) > 0 {
		ev := s.replay[0]
		s.replay = s.replay[1:]
		s.pos = s.pos.After(ev)
		return ev, nil
	}
	// Past the replay (and any events trimmed from the log), the stream
	// is where the pump took it up.
	s.pos = s.pos.Max(s.skip)
	for {
		if ev, ok, err := s.pop(); ok || err != nil {
			if ok {
				s.pos = s.pos.After(ev)
			}
			return ev, err
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}

// push queues ev unless the subscriber has max events unread already. The
// queue's array grows as needed and shrinks back once read.
func (s *Subscription) push(ev Event, max int) bool {
	s.mu.Lock()
	if len(s.queue)-s.head >= max {
		s.mu.Unlock()
		return false
	}
	if s.head > 0 && len(s.queue) == cap(s.queue) {
		// Reuse the array's read part before growing it.
		n := copy(s.queue, s.queue[s.head:])
		clear(s.queue[n:])
		s.queue, s.head = s.queue[:n], 0
	}
	s.queue = append(s.queue, ev)
	s.mu.Unlock()
	s.signal()
	return true
}

// pop returns the next unread event, or the error that ended the
// subscription once every event before it was read.
func (s *Subscription) pop() (Event, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.head < len(s.queue) {
		ev := s.queue[s.head]
		s.queue[s.head] = Event{}
		if s.head++; s.head == len(s.queue) {
			s.head, s.queue = 0, s.queue[:0]
			if cap(s.queue) > 64 {
				s.queue = nil // an idle subscriber keeps no large array
			}
		}
		return ev, true, nil
	}
	return Event{}, false, s.err
}

// end ends the subscription with err; events queued before stay readable.
func (s *Subscription) end(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	s.signal()
}

func (s *Subscription) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Close ends the subscription. It is idempotent.
func (s *Subscription) Close() {
	s.b.mu.Lock()
	s.b.dropLocked(s, ErrSubscriptionClosed)
	s.b.mu.Unlock()
}
