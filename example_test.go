package sessiond_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/inmem"
)

// A Manager on the in-memory store: create a session, validate its token,
// revoke it, and read the lifecycle events those calls recorded.
func ExampleManager() {
	ctx := context.Background()
	store := inmem.New(inmem.Options{}) // or pebble.Open(pebble.Options{Dir: "data"}) to keep sessions on disk
	defer store.Close()
	m, err := sessiond.New(sessiond.Config{Store: store, Policies: []sessiond.Policy{sessiond.DefaultPolicy()}})
	if err != nil {
		log.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	// Lifecycle events recorded from now on (0 would replay the whole log).
	sub, err := m.Subscribe(ctx, sessiond.FromNow)
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()

	created, err := m.Create(ctx, sessiond.CreateRequest{Subject: "alice"})
	if err != nil {
		log.Fatal(err)
	}
	// Hand created.Token to the client; it comes back with each request.
	v, err := m.Validate(ctx, created.Token, sessiond.Device{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("valid:", v.Session.Subject, v.Session.State)

	if err := m.Revoke(ctx, created.Session.ID, ""); err != nil {
		log.Fatal(err)
	}
	_, err = m.Validate(ctx, created.Token, sessiond.Device{})
	fmt.Println("after revoke:", errors.Is(err, sessiond.ErrEnded), err)

	for range 3 {
		ev, err := sub.Next(ctx)
		if err != nil {
			log.Fatal(err)
		}
		line := fmt.Sprintf("event %d: %s, state %s", ev.Seq, ev.Type, ev.State)
		if ev.Reason != "" {
			line += ", reason " + string(ev.Reason)
		}
		fmt.Println(line)
	}
	// Output:
	// valid: alice active
	// after revoke: true session ended (revoked)
	// event 1: created, state active
	// event 2: ending, state ending, reason revoked
	// event 3: ended, state ended, reason revoked
}
