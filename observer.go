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
}

type nopObserver struct{}

func (nopObserver) Validated(string)                     {}
func (nopObserver) Transitioned(*Event)                  {}
func (nopObserver) StoreOp(string, time.Duration, error) {}
func (nopObserver) SchedulerLag(time.Duration)           {}
func (nopObserver) SubscriberDropped()                   {}
