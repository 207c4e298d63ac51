package sessiond

import "time"

// Observer receives the engine's measurements. The metrics package adapts it
// to Prometheus; a nil Observer in Config measures nothing. Methods are
// called on hot paths and must not block.
type Observer interface {
	// Validated counts one validation by its result: "ok", "rotated",
	// "grace" (a replaced token used within its grace), or an error Code.
	Validated(result string)
	// Transitioned counts one recorded event (a state transition).
	Transitioned(ev *Event)
	// StoreOp records the latency of one store call; op is the method name
	// in snake case (find_token, update, ...).
	StoreOp(op string, d time.Duration, err error)
	// SchedulerLag records how late a deadline was handled.
	SchedulerLag(d time.Duration)
	// SubscriberDropped counts an event subscriber dropped for being slow.
	SubscriberDropped()
	// Disposed counts one resource disposal or ending hook by result: ok,
	// error, panic or timeout.
	Disposed(result string)
	// HeartbeatTimeout counts a connection lost for want of heartbeats.
	HeartbeatTimeout(kind string)
	// Fenced counts this node finding its lease claimed by another node.
	Fenced()
	// RuntimeCalled records one call of the Runtime by action (hibernate,
	// wake, dispose) and result: ok, error, timeout or panic.
	RuntimeCalled(action, result string, d time.Duration)
}

// NopObserver measures nothing. Embed it in an Observer of your own to keep
// compiling when methods are added to the interface.
type NopObserver struct{}

// Validated implements Observer.
func (NopObserver) Validated(string) {}

// Transitioned implements Observer.
func (NopObserver) Transitioned(*Event) {}

// StoreOp implements Observer.
func (NopObserver) StoreOp(string, time.Duration, error) {}

// SchedulerLag implements Observer.
func (NopObserver) SchedulerLag(time.Duration) {}

// SubscriberDropped implements Observer.
func (NopObserver) SubscriberDropped() {}

// Disposed implements Observer.
func (NopObserver) Disposed(string) {}

// HeartbeatTimeout implements Observer.
func (NopObserver) HeartbeatTimeout(string) {}

// Fenced implements Observer.
func (NopObserver) Fenced() {}

// RuntimeCalled implements Observer.
func (NopObserver) RuntimeCalled(string, string, time.Duration) {}
