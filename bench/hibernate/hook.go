package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/workers"
	"github.com/sessiond/sessiond/pebble"
)

// hookTarget is the bound on the hibernate hook's p99 lateness.
const hookTarget = 50 * time.Millisecond

// hibernation is what the runtime callback saw of one hibernate call.
type hibernation struct {
	at         time.Time // when the callback was entered
	lastActive time.Time // the session's LastActive as the call carries it
	stateSince time.Time // when the hibernating transition was decided
}

// writeObserver records the latency of the store's writes (Store.Update:
// a group commit with its fsync) while on is set: the hibernating writes,
// which a claim waits for before it claims the next due sessions.
type writeObserver struct {
	sessiond.NopObserver
	on     atomic.Bool
	mu     sync.Mutex
	writes []time.Duration
}

func (o *writeObserver) StoreOp(op string, d time.Duration, err error) {
	if op != "update" || err != nil || !o.on.Load() {
		return
	}
	o.mu.Lock()
	o.writes = append(o.writes, d)
	o.mu.Unlock()
}

// hookMode runs -mode hook (see the package comment).
func hookMode(o options) error {
	dir, cleanup, err := tempDir(o)
	if err != nil {
		return err
	}
	defer cleanup()
	store, err := pebble.Open(pebble.Options{Dir: filepath.Join(dir, "store")})
	if err != nil {
		return err
	}
	defer store.Close()

	// The callback's records, by session id; ids are registered before
	// any session can come due (activity lasts until -window, due times
	// are -after after it).
	var (
		mu    sync.Mutex
		index = make(map[string]int, o.n)
		calls = make([][]hibernation, o.n)
		got   atomic.Int64
		done  = make(chan struct{})
	)
	runtime := func(_ context.Context, call sessiond.RuntimeCall) error {
		now := time.Now()
		if call.Action != sessiond.RuntimeHibernate {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		i, ok := index[call.Session.ID]
		if !ok {
			return nil
		}
		calls[i] = append(calls[i], hibernation{at: now, lastActive: call.Session.LastActive, stateSince: call.Session.StateSince})
		if len(calls[i]) == 1 && got.Add(1) == int64(o.n) {
			close(done)
		}
		return nil
	}
	policy := sessiond.Policy{Name: "workspace", TTL: time.Hour, IdleTimeout: 30 * time.Minute,
		HibernateAfter: o.after, WakeTimeout: 30 * time.Second}
	obs := &writeObserver{}
	m, err := sessiond.New(sessiond.Config{
		Store: store, Policies: []sessiond.Policy{policy}, Runtime: runtime, Node: "bench", Observer: obs,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := m.Start(ctx); err != nil {
		return err
	}
	defer m.Close()
	p, _ := m.Policy("workspace")
	fmt.Printf("# embedded store in %s (fsync on); policy: hibernate_after %v, touch_interval %v (its default), idle_timeout %v, ttl %v\n",
		dir, p.HibernateAfter, p.TouchInterval, p.IdleTimeout, p.TTL)
	fmt.Printf("# %d sessions, each validated every %v until its last activity; last activities spread evenly over %v\n",
		o.n, o.every, o.window)

	// Create the sessions, 16 at a time.
	tokens := make([]string, o.n)
	t0 := time.Now()
	if err := workers.Each(o.n, 16, func(i int) error {
		c, err := m.Create(ctx, sessiond.CreateRequest{Subject: "hib-" + strconv.Itoa(i), Policy: "workspace"})
		if err != nil {
			return err
		}
		mu.Lock()
		index[c.Session.ID] = i
		mu.Unlock()
		tokens[i] = c.Token
		return nil
	}); err != nil {
		return err
	}
	fmt.Printf("created %d sessions in %v\n", o.n, time.Since(t0).Round(time.Millisecond))

	// Activity: session i is validated every -every (from a random phase)
	// until start + (i+1)*window/n, and once exactly then.
	start := time.Now().Add(50 * time.Millisecond)
	lastValidated := make([]time.Time, o.n)
	var validations atomic.Int64
	if err := workers.Each(o.n, o.n, func(i int) error {
		end := start.Add(time.Duration(i+1) * o.window / time.Duration(o.n))
		at := start.Add(time.Duration(rand.Int64N(int64(o.every))))
		for {
			if at.After(end) {
				at = end
			}
			time.Sleep(time.Until(at))
			before := time.Now()
			if _, err := m.Validate(ctx, tokens[i], sessiond.Device{}); err != nil {
				return err
			}
			validations.Add(1)
			lastValidated[i] = before
			if !at.Before(end) {
				return nil
			}
			at = at.Add(o.every)
		}
	}); err != nil {
		return err
	}
	fmt.Printf("activity: %d validations over %v\n", validations.Load(), time.Since(start).Round(time.Millisecond))
	obs.on.Store(true)

	timeout := o.after + 30*time.Second
	select {
	case <-done:
	case <-time.After(timeout):
		fmt.Printf("only %d of %d sessions hibernated within %v of the end of activity\n", got.Load(), o.n, timeout)
	}
	// Calls made twice would show now; give them a moment.
	time.Sleep(200 * time.Millisecond)

	mu.Lock()
	defer mu.Unlock()
	var late, claim, dispatch, vsActivity, touchGap []time.Duration
	twice := 0
	for i, cs := range calls {
		if len(cs) == 0 {
			continue
		}
		if len(cs) > 1 {
			twice++
		}
		c := cs[0]
		due := c.lastActive.Add(p.HibernateAfter)
		late = append(late, c.at.Sub(due))
		claim = append(claim, c.stateSince.Sub(due))
		dispatch = append(dispatch, c.at.Sub(c.stateSince))
		vsActivity = append(vsActivity, c.at.Sub(lastValidated[i].Add(p.HibernateAfter)))
		touchGap = append(touchGap, lastValidated[i].Sub(c.lastActive))
	}
	fmt.Printf("\n%d sessions hibernated (%d called more than once)\n", len(late), twice)
	row("hook call - (stored LastActive + hibernate_after)", late)
	row("  claim: StateSince - due", claim)
	row("  dispatch: hook call - StateSince", dispatch)
	obs.mu.Lock()
	row("store writes after the activity (fsync each)", obs.writes)
	obs.mu.Unlock()
	row("last validation - stored LastActive", touchGap)
	fmt.Println("  (negative below: earlier than hibernate_after after the last validation)")
	row("hook call - (last validation + hibernate_after)", vsActivity)
	_, p99, _ := quantiles(late)
	fmt.Printf("\ntarget: p99 lateness against the stored LastActive <= %v: %s (p99 %s)\n", hookTarget, verdict(p99, hookTarget), ms(p99))
	if len(late) < o.n {
		return errors.New("not every session hibernated")
	}
	return nil
}
