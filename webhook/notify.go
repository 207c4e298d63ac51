package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessiond/sessiond"
)

// Notification webhooks: a Notifier follows a store's durable event log
// and POSTs the events of the types each endpoint subscribed to, signed
// (Sender), to its URL.
//
//   - At least once, in log order. Each endpoint has a cursor of its own
//     in the store (sessiond.Consumers, named "webhook:"+Name), committed
//     after every Batch events delivered, every CommitEvery, and when the
//     Notifier stops; after a crash, the events delivered since the last
//     commit are delivered again. The webhook-id, "<session id>.<version>.<type>",
//     is the same every time: the receiver's idempotency key.
//   - In order per session: the events of an endpoint are sent one at a
//     time, in the log's order (which is each session's order), each
//     retried before the next is sent; a receiver that fails holds up its
//     endpoint, not the others.
//   - Dead letters: an event that no attempt delivered (MaxAttempts, with
//     the Sender's backoff) is logged, counted and skipped, so that one
//     bad event or a long outage of the receiver does not stop the
//     endpoint forever. The log line names the delivery.
//   - One node delivers per endpoint. Of the nodes that share a store, the
//     one that claims the endpoint's cursor delivers; it renews its claim
//     (ClaimTTL) while it runs and releases it when it stops, and the
//     others stand by, trying the claim every third of ClaimTTL: another
//     takes over once the holder stops, or within ClaimTTL and a third of
//     it if the holder dies.
//   - A new endpoint starts at the log's head: it is sent what happens
//     from then on, not the history. Events that fell out of the store's
//     log before they were read (an outage longer than its retention)
//     are counted as gaps and logged.

// Limits and defaults of notifications.
const (
	// MaxEndpoints is the most endpoints a Notifier delivers to.
	MaxEndpoints = 16
	// ConsumerPrefix starts the names of the endpoints' cursors in the
	// store.
	ConsumerPrefix = "webhook:"
	// MaxEndpointName bounds an endpoint's name.
	MaxEndpointName = sessiond.MaxConsumerName - len(ConsumerPrefix)
	// MaxAttemptsLimit bounds Endpoint.MaxAttempts.
	MaxAttemptsLimit = 100

	DefaultClaimTTL    = 15 * time.Second
	DefaultBatch       = 100
	DefaultCommitEvery = time.Second
	DefaultPoll        = time.Second

	// maxPause is the longest wait before trying the store again after
	// it failed.
	maxPause = 5 * time.Second
	// releaseTimeout bounds the commit that releases a claim as the
	// Notifier stops.
	releaseTimeout = 5 * time.Second
)

// Endpoint is a URL subscribed to event types.
type Endpoint struct {
	// Name names the endpoint in logs and metrics, and its cursor in the
	// store (ConsumerPrefix+Name): sessiond.CheckConsumer's characters,
	// at most MaxEndpointName. Renaming an endpoint starts it afresh, at
	// the log's head.
	Name string
	// URL is POSTed the notifications: http or https.
	URL string
	// Secret signs them (webhook-signature). Required.
	Secret Secret
	// Events are the types sent (sessiond.EventTypes); at least one.
	Events []sessiond.EventType
	// MaxAttempts is how many times a notification is tried before it is
	// a dead letter; 0 means DefaultAttempts.
	MaxAttempts int
}

// Validate returns what is wrong with the endpoint, naming the field, or
// nil.
func (e *Endpoint) Validate() error {
	if e.Name == "" || len(e.Name) > MaxEndpointName || sessiond.CheckConsumer(ConsumerPrefix+e.Name) != nil {
		return fmt.Errorf("name: %q: 1 to %d bytes of ASCII letters, digits and . _ : - ", e.Name, MaxEndpointName)
	}
	if u, err := url.Parse(e.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("url: must be an http or https URL")
	}
	if len(e.Secret) == 0 {
		return errors.New(`secret: required: "whsec_" and 24 to 64 bytes in base64 (openssl rand -base64 32)`)
	}
	if len(e.Secret) < MinSecretBytes || len(e.Secret) > MaxSecretBytes {
		return fmt.Errorf("secret: the key has %d bytes; it must have %d to %d", len(e.Secret), MinSecretBytes, MaxSecretBytes)
	}
	if len(e.Events) == 0 {
		return fmt.Errorf("events: list at least one event type (%s)", typeList())
	}
	for _, t := range e.Events {
		if !slices.Contains(sessiond.EventTypes, t) {
			return fmt.Errorf("events: %q is not an event type (%s)", t, typeList())
		}
	}
	if e.MaxAttempts < 0 || e.MaxAttempts > MaxAttemptsLimit {
		return fmt.Errorf("max_attempts: %d; 1 to %d, or 0 for the default (%d)", e.MaxAttempts, MaxAttemptsLimit, DefaultAttempts)
	}
	return nil
}

func typeList() string {
	names := make([]string, len(sessiond.EventTypes))
	for i, t := range sessiond.EventTypes {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

// NotifierOptions configure a Notifier. Zero durations and counts mean
// the defaults.
type NotifierOptions struct {
	// Store is the store whose log is followed; it keeps the endpoints'
	// cursors, so it must be a sessiond.Consumers too.
	Store sessiond.Store
	// Endpoints are delivered to: 1 to MaxEndpoints, names unique.
	Endpoints []Endpoint
	// Owner names this process among those that share the store (the
	// node's name): the holder of the endpoints it claims. Required. A
	// process that comes back under its name resumes its claims at once.
	Owner string
	// Clock times the claims, commits and retries; nil means the system's.
	Clock sessiond.Clock
	// Client sends the notifications; nil means a client that does not
	// follow redirects (a 3xx is a failed attempt).
	Client *http.Client
	// Logger receives deliveries' failures, dead letters, gaps and claims.
	Logger *slog.Logger
	// ClaimTTL is how long a claim on an endpoint lasts unless renewed
	// (every third of it): DefaultClaimTTL.
	ClaimTTL time.Duration
	// Batch is how many events are read at once, and delivered between
	// two commits at most: DefaultBatch.
	Batch int
	// CommitEvery is how often the cursor is committed while events are
	// delivered: DefaultCommitEvery.
	CommitEvery time.Duration
	// Poll is how long to wait for new events on a store that cannot say
	// when its log grows (sessiond.EventWaiter): DefaultPoll.
	Poll time.Duration
	// AttemptTimeout, BaseDelay and MaxDelay tune each endpoint's Sender:
	// 0 means the Sender's defaults.
	AttemptTimeout, BaseDelay, MaxDelay time.Duration
}

// Notifier delivers a store's events to webhook endpoints (see the
// comment at the top of notify.go). It starts nothing until Run.
type Notifier struct {
	o       NotifierOptions
	cons    sessiond.Consumers
	log     *slog.Logger
	eps     []*endpoint
	running atomic.Bool
}

// endpoint is an Endpoint being delivered to, with its counts.
type endpoint struct {
	Endpoint
	consumer string
	types    map[sessiond.EventType]bool
	sender   *Sender

	ok, rejected, failed, retries, dead, gaps, storeErrs atomic.Int64
	delivering                                           atomic.Bool
}

// NewNotifier checks the options and returns a Notifier.
func NewNotifier(o NotifierOptions) (*Notifier, error) {
	if o.Store == nil {
		return nil, errors.New("webhook: NotifierOptions.Store is required")
	}
	cons, ok := o.Store.(sessiond.Consumers)
	if !ok {
		return nil, fmt.Errorf("webhook: the store (%T) keeps no cursors for notifiers (sessiond.Consumers)", o.Store)
	}
	if o.Owner == "" || len(o.Owner) > sessiond.MaxConsumerOwner {
		return nil, fmt.Errorf("webhook: NotifierOptions.Owner: 1 to %d bytes naming this node (got %d)", sessiond.MaxConsumerOwner, len(o.Owner))
	}
	if len(o.Endpoints) == 0 || len(o.Endpoints) > MaxEndpoints {
		return nil, fmt.Errorf("webhook: 1 to %d endpoints (got %d)", MaxEndpoints, len(o.Endpoints))
	}
	if o.Clock == nil {
		o.Clock = sessiond.SystemClock{}
	}
	if o.Client == nil {
		o.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.ClaimTTL = orDefault(o.ClaimTTL, DefaultClaimTTL)
	o.Batch = orDefault(o.Batch, DefaultBatch)
	o.CommitEvery = orDefault(o.CommitEvery, DefaultCommitEvery)
	o.Poll = orDefault(o.Poll, DefaultPoll)
	n := &Notifier{o: o, cons: cons, log: o.Logger}
	seen := map[string]bool{}
	for i := range o.Endpoints {
		e := o.Endpoints[i]
		if err := e.Validate(); err != nil {
			return nil, fmt.Errorf("webhook: endpoint %q: %w", e.Name, err)
		}
		if seen[e.Name] {
			return nil, fmt.Errorf("webhook: two endpoints are named %q", e.Name)
		}
		seen[e.Name] = true
		e.Events = slices.Clone(e.Events)
		ep := &endpoint{Endpoint: e, consumer: ConsumerPrefix + e.Name, types: map[sessiond.EventType]bool{}}
		for _, t := range e.Events {
			ep.types[t] = true
		}
		ep.sender = &Sender{
			URL: e.URL, Secret: e.Secret, Client: o.Client, Attempts: e.MaxAttempts,
			AttemptTimeout: o.AttemptTimeout, BaseDelay: o.BaseDelay, MaxDelay: o.MaxDelay,
			Now:       o.Clock.Now,
			Sleep:     func(ctx context.Context, d time.Duration) error { return sessiond.Sleep(ctx, o.Clock, d) },
			OnAttempt: ep.attempted,
		}
		n.eps = append(n.eps, ep)
	}
	return n, nil
}

// attempted counts a delivery attempt.
func (ep *endpoint) attempted(n, status int, err error) {
	switch {
	case err == nil && status/100 == 2:
		ep.ok.Add(1)
	case err == nil:
		ep.rejected.Add(1)
	default:
		ep.failed.Add(1)
	}
	if n > 1 {
		ep.retries.Add(1)
	}
}

// EndpointStats are an endpoint's counts since the Notifier was made.
type EndpointStats struct {
	Endpoint string
	// Attempts by outcome: a 2xx answer, another answer, no answer (the
	// connection failed or the attempt timed out).
	Delivered, Rejected, Failed int64

	Retries     int64 // attempts after a notification's first
	DeadLetters int64 // notifications dropped after their last attempt failed
	Gaps        int64 // places where the log no longer held events not yet read
	StoreErrors int64 // store calls that failed (and were tried again)
	Delivering  bool  // this process holds the endpoint's claim
}

// Stats returns each endpoint's counts, in the order of the options.
func (n *Notifier) Stats() []EndpointStats {
	out := make([]EndpointStats, len(n.eps))
	for i, ep := range n.eps {
		out[i] = EndpointStats{
			Endpoint: ep.Name, Delivered: ep.ok.Load(), Rejected: ep.rejected.Load(), Failed: ep.failed.Load(),
			Retries: ep.retries.Load(), DeadLetters: ep.dead.Load(), Gaps: ep.gaps.Load(),
			StoreErrors: ep.storeErrs.Load(), Delivering: ep.delivering.Load(),
		}
	}
	return out
}

// Run delivers until ctx is done, then commits what was delivered,
// releases the claims it holds (so another node takes over at once) and
// returns ctx's error once every goroutine it started has ended. A
// Notifier runs once.
func (n *Notifier) Run(ctx context.Context) error {
	if !n.running.CompareAndSwap(false, true) {
		return errors.New("webhook: the notifier has run already")
	}
	var wg sync.WaitGroup
	for _, ep := range n.eps {
		wg.Go(func() { n.follow(ctx, ep) })
	}
	wg.Wait()
	return ctx.Err()
}

// follow claims the endpoint and delivers to it, again whenever it loses
// the claim, until ctx is done.
func (n *Notifier) follow(ctx context.Context, ep *endpoint) {
	for {
		from, ok := n.claim(ctx, ep)
		if !ok {
			return
		}
		n.deliver(ctx, ep, from)
		if ctx.Err() != nil {
			return
		}
	}
}

// claim claims the endpoint's cursor, standing by while another node
// holds it; a new endpoint's cursor starts at the log's head. It returns
// false when ctx is done first.
func (n *Notifier) claim(ctx context.Context, ep *endpoint) (sessiond.Cursor, bool) {
	pause, standby := 100*time.Millisecond, false
	for {
		head, err := n.o.Store.Head(ctx)
		if err == nil {
			var from sessiond.Cursor
			if from, err = n.cons.ClaimConsumer(ctx, ep.consumer, n.o.Owner, head, n.o.Clock.Now(), n.o.ClaimTTL); err == nil {
				n.log.Info("webhook: delivering to the endpoint", "endpoint", ep.Name, "from", from.String())
				return from, true
			}
		}
		wait := n.o.ClaimTTL / 3
		switch {
		case ctx.Err() != nil:
			return sessiond.Cursor{}, false
		case errors.Is(err, sessiond.ErrConsumerClaimed):
			if !standby {
				n.log.Info("webhook: another node delivers to the endpoint; standing by", "endpoint", ep.Name, "why", err.Error())
				standby = true
			}
		default:
			ep.storeErrs.Add(1)
			n.log.Warn("webhook: claiming the endpoint's cursor; trying again", "endpoint", ep.Name, "in", pause, "err", err)
			wait, pause = pause, min(2*pause, maxPause)
		}
		if sessiond.Sleep(ctx, n.o.Clock, wait) != nil {
			return sessiond.Cursor{}, false
		}
	}
}

// deliver sends the endpoint's events from the cursor while it holds the
// claim: this goroutine reads and sends, a keeper commits and renews. It
// returns when ctx is done (the keeper then releases the claim) or the
// claim is lost (another node took it).
func (n *Notifier) deliver(ctx context.Context, ep *endpoint, from sessiond.Cursor) {
	ep.delivering.Store(true)
	defer ep.delivering.Store(false)
	dctx, lose := context.WithCancel(ctx)
	defer lose()
	k := &keeper{n: n, ep: ep, done: from, committed: from, renewed: n.o.Clock.Now(), kick: make(chan struct{}, 1)}
	var wg sync.WaitGroup
	lost := false
	wg.Go(func() {
		if lost = !k.run(dctx); lost {
			lose()
		}
	})
	n.read(dctx, ep, k, from) // returns once dctx is done: ctx, or lost
	wg.Wait()
	if !lost {
		k.release(ctx)
	}
}

// read sends the endpoint's events after cur, in log order, until ctx is
// done.
func (n *Notifier) read(ctx context.Context, ep *endpoint, k *keeper, cur sessiond.Cursor) {
	pause := 100 * time.Millisecond
	for ctx.Err() == nil {
		evs, err := n.o.Store.Events(ctx, cur, n.o.Batch)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			ep.storeErrs.Add(1)
			n.log.Warn("webhook: reading the event log; trying again", "endpoint", ep.Name, "in", pause, "err", err)
			_ = sessiond.Sleep(ctx, n.o.Clock, pause)
			pause = min(2*pause, maxPause)
			continue
		}
		pause = 100 * time.Millisecond
		if len(evs) == 0 {
			cur = n.checkHead(ctx, ep, k, cur)
			sessiond.AwaitEvents(ctx, n.o.Clock, n.o.Store, cur, n.o.Poll)
			continue
		}
		for _, e := range evs {
			if missed := cur.Missed(e); missed > 0 {
				ep.gaps.Add(1)
				n.log.Warn("webhook: the store's log no longer held events the endpoint had not been sent (an outage longer than event_retention); they are lost to it",
					"endpoint", ep.Name, "partition", e.Partition, "missed", missed)
			}
			if ep.types[e.Type] && !n.send(ctx, ep, e) {
				return // ctx is done: the event is not passed, and is sent again by whoever claims next
			}
			cur = cur.After(e)
			k.advance(cur)
		}
	}
}

// checkHead returns cur, or, if cur is past the log's head in some
// partition (the log started again: its events would never reach cur),
// cur moved back to the head there, counted as a gap.
func (n *Notifier) checkHead(ctx context.Context, ep *endpoint, k *keeper, cur sessiond.Cursor) sessiond.Cursor {
	head, err := n.o.Store.Head(ctx)
	if err != nil || !head.Behind(cur) {
		return cur
	}
	seqs := make([]uint64, max(cur.Len(), head.Len()))
	for p := range seqs {
		seqs[p] = min(cur.Seq(p), head.Seq(p))
	}
	back := sessiond.CursorOf(seqs...)
	ep.gaps.Add(1)
	n.log.Warn("webhook: the endpoint's cursor is past the store's event log (the log started again); going on from the log's head",
		"endpoint", ep.Name, "cursor", cur.String(), "head", head.String())
	k.advance(back)
	return back
}

// notification is a delivery's body.
type notification struct {
	Type      string         `json:"type"`      // "session." and the event's type
	Timestamp time.Time      `json:"timestamp"` // the event's time
	Data      sessiond.Event `json:"data"`      // as GET /v1/events sends it
}

// DeliveryID is the webhook-id of an event's notification: the same on
// every attempt and after a restart, the receiver's idempotency key.
func DeliveryID(e sessiond.Event) string {
	return e.SessionID + "." + strconv.FormatUint(e.Version, 10) + "." + string(e.Type)
}

// send delivers one event, retrying; an event no attempt delivered is a
// dead letter, logged and counted. It returns false if ctx ended first.
func (n *Notifier) send(ctx context.Context, ep *endpoint, e sessiond.Event) bool {
	body, err := json.Marshal(notification{Type: "session." + string(e.Type), Timestamp: e.Time.UTC(), Data: e})
	if err == nil {
		err = ep.sender.Send(ctx, Message{ID: DeliveryID(e), Body: body})
	}
	switch {
	case err == nil:
		return true
	case ctx.Err() != nil:
		return false
	}
	ep.dead.Add(1)
	n.log.Error("webhook: notification not delivered; dropped (dead letter)", "endpoint", ep.Name,
		"sid", sessiond.LogID(e.SessionID), "version", e.Version, "type", e.Type, "partition", e.Partition, "seq", e.Seq, "err", err)
	return true
}

// keeper commits an endpoint's cursor while it is delivered to, and so
// renews the claim: after Batch events, every CommitEvery when events
// were sent, every third of ClaimTTL when none were, and once more,
// releasing the claim, when delivery stops.
type keeper struct {
	n    *Notifier
	ep   *endpoint
	kick chan struct{}

	mu    sync.Mutex
	done  sessiond.Cursor // past the events handled
	since int             // events handled since the last commit

	committed sessiond.Cursor // keeper's goroutine only
	renewed   time.Time       // when the claim was last extended
}

// advance records that the events up to c are handled.
func (k *keeper) advance(c sessiond.Cursor) {
	k.mu.Lock()
	k.done = c
	k.since++
	full := k.since >= k.n.o.Batch
	k.mu.Unlock()
	if full {
		select {
		case k.kick <- struct{}{}:
		default:
		}
	}
}

// run commits until ctx is done, or returns false once the claim is lost
// (or lapsed).
func (k *keeper) run(ctx context.Context) bool {
	every := min(k.n.o.CommitEvery, k.n.o.ClaimTTL/3)
	tick := make(chan struct{}, 1)
	t := k.n.o.Clock.AfterFunc(every, func() {
		select {
		case tick <- struct{}{}:
		default:
		}
	})
	defer t.Stop()
	for {
		select {
		case <-k.kick:
		case <-tick:
			t.Reset(every)
		case <-ctx.Done():
			return true
		}
		if !k.commit(ctx) {
			return false
		}
	}
}

// commit commits the cursor, if events were handled since the last commit
// or the claim is due for renewal. It returns false if the claim is lost.
func (k *keeper) commit(ctx context.Context) bool {
	n, ep := k.n, k.ep
	k.mu.Lock()
	done, since := k.done, k.since
	k.mu.Unlock()
	now := n.o.Clock.Now()
	moved := done.Behind(k.committed) || k.committed.Behind(done)
	if !moved && now.Sub(k.renewed) < n.o.ClaimTTL/3 {
		return true
	}
	err := n.cons.CommitConsumer(ctx, ep.consumer, n.o.Owner, done, now, n.o.ClaimTTL)
	switch {
	case err == nil:
		k.committed, k.renewed = done, now
		k.mu.Lock()
		k.since -= since
		k.mu.Unlock()
		return true
	case ctx.Err() != nil:
		return true
	case errors.Is(err, sessiond.ErrConsumerClaimed):
		n.log.Warn("webhook: lost the endpoint's claim (this node was taken for dead: a pause or a store outage longer than the claim); another node delivers",
			"endpoint", ep.Name, "why", err.Error())
		return false
	}
	ep.storeErrs.Add(1)
	if now.Sub(k.renewed) >= n.o.ClaimTTL {
		n.log.Warn("webhook: could not renew the endpoint's claim before it lapsed; stopping until it is claimed again", "endpoint", ep.Name, "err", err)
		return false
	}
	n.log.Warn("webhook: committing the endpoint's cursor; trying again", "endpoint", ep.Name, "err", err)
	return true
}

// release commits what was delivered and releases the claim, as the
// Notifier stops (ctx is done).
func (k *keeper) release(ctx context.Context) {
	k.mu.Lock()
	done := k.done
	k.mu.Unlock()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	if err := k.n.cons.CommitConsumer(rctx, k.ep.consumer, k.n.o.Owner, done, k.n.o.Clock.Now(), 0); err != nil {
		k.n.log.Warn("webhook: releasing the endpoint's claim as the notifier stops", "endpoint", k.ep.Name, "err", err)
	}
}
