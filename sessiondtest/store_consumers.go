package sessiondtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

// The consumers of the event log (sessiond.Consumers): named cursors, each
// claimed by one owner at a time.

const consumerTTL = 15 * time.Second

func consumers(t testing.TB, st sessiond.Store) sessiond.Consumers {
	t.Helper()
	c, ok := st.(sessiond.Consumers)
	if !ok {
		t.Fatalf("%T does not implement sessiond.Consumers", st)
	}
	return c
}

// sameCursor fails t unless got and want are at the same position.
func sameCursor(t testing.TB, what string, got, want sessiond.Cursor) {
	t.Helper()
	if got.Behind(want) || want.Behind(got) {
		t.Fatalf("%s: cursor %v, want %v", what, got, want)
	}
}

// headAfterEvents writes a few sessions of several subjects (so that a
// store of several partitions has events in more than one) and returns
// the log's head.
func headAfterEvents(t testing.TB, st sessiond.Store) sessiond.Cursor {
	t.Helper()
	for i := range 6 {
		s, _ := NewSession(fmt.Sprint("subject-", i), Epoch)
		mustCreate(t, st, s)
	}
	head, err := st.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return head
}

func testConsumers(t *testing.T, st sessiond.Store) {
	ctx := context.Background()
	c := consumers(t, st)
	head := headAfterEvents(t, st)
	const name = "webhook:billing"

	// A new consumer is recorded at start.
	got, err := c.ClaimConsumer(ctx, name, "a", head, Epoch, consumerTTL)
	if err != nil {
		t.Fatal(err)
	}
	sameCursor(t, "ClaimConsumer(new)", got, head)
	// Claiming it again renews the claim; the start given is ignored.
	got, err = c.ClaimConsumer(ctx, name, "a", sessiond.Cursor{}, Epoch.Add(time.Second), consumerTTL)
	if err != nil {
		t.Fatal(err)
	}
	sameCursor(t, "ClaimConsumer(again, by its owner)", got, head)

	// Another owner is refused while the claim is live (renewed to 16s).
	_, err = c.ClaimConsumer(ctx, name, "b", sessiond.Cursor{}, Epoch.Add(15*time.Second), consumerTTL)
	wantErr(t, err, sessiond.ErrConsumerClaimed, "ClaimConsumer(by another owner, claim live)")
	if err != nil && !strings.Contains(err.Error(), `"a"`) {
		t.Errorf("the refusal does not name the holder: %v", err)
	}
	wantErr(t, c.CommitConsumer(ctx, name, "b", sessiond.Cursor{}, Epoch.Add(15*time.Second), consumerTTL),
		sessiond.ErrConsumerClaimed, "CommitConsumer(by another owner)")

	// The owner commits: the cursor moves and the claim is extended.
	moved := sessiond.Cursor{}
	if evs, err := st.Events(ctx, sessiond.Cursor{}, 3); err != nil || len(evs) != 3 {
		t.Fatalf("Events: %d, %v", len(evs), err)
	} else {
		for _, e := range evs {
			moved = moved.After(e)
		}
	}
	if err := c.CommitConsumer(ctx, name, "a", moved, Epoch.Add(10*time.Second), consumerTTL); err != nil {
		t.Fatal(err)
	}
	_, err = c.ClaimConsumer(ctx, name, "b", sessiond.Cursor{}, Epoch.Add(24*time.Second), consumerTTL)
	wantErr(t, err, sessiond.ErrConsumerClaimed, "ClaimConsumer(by another owner, claim extended by the commit)")

	// Once the claim has passed (by the caller's clock), another owner
	// takes the consumer over, at its cursor.
	got, err = c.ClaimConsumer(ctx, name, "b", sessiond.Cursor{}, Epoch.Add(25*time.Second), consumerTTL)
	if err != nil {
		t.Fatalf("ClaimConsumer(by another owner, claim passed): %v", err)
	}
	sameCursor(t, "ClaimConsumer(taken over)", got, moved)
	// The former owner can neither commit nor claim it back.
	wantErr(t, c.CommitConsumer(ctx, name, "a", head, Epoch.Add(26*time.Second), consumerTTL),
		sessiond.ErrConsumerClaimed, "CommitConsumer(by the former owner)")
	_, err = c.ClaimConsumer(ctx, name, "a", sessiond.Cursor{}, Epoch.Add(26*time.Second), consumerTTL)
	wantErr(t, err, sessiond.ErrConsumerClaimed, "ClaimConsumer(by the former owner)")

	// A commit with ttl 0 releases the claim: another owner claims at once.
	if err := c.CommitConsumer(ctx, name, "b", head, Epoch.Add(30*time.Second), 0); err != nil {
		t.Fatal(err)
	}
	got, err = c.ClaimConsumer(ctx, name, "a", sessiond.Cursor{}, Epoch.Add(30*time.Second), consumerTTL)
	if err != nil {
		t.Fatalf("ClaimConsumer(released): %v", err)
	}
	sameCursor(t, "ClaimConsumer(released)", got, head)

	// Consumers are independent of each other.
	other, err := c.ClaimConsumer(ctx, "webhook:audit", "b", sessiond.Cursor{}, Epoch.Add(30*time.Second), consumerTTL)
	if err != nil {
		t.Fatal(err)
	}
	sameCursor(t, "ClaimConsumer(another consumer)", other, sessiond.Cursor{})
	wantErr(t, c.CommitConsumer(ctx, "webhook:nobody", "a", head, Epoch, consumerTTL),
		sessiond.ErrConsumerClaimed, "CommitConsumer(unknown consumer)")
}

// testConsumersBadInput: bad names, owners, cursors and ttls are refused
// as invalid arguments, and store nothing.
func testConsumersBadInput(t *testing.T, st sessiond.Store) {
	ctx := context.Background()
	c := consumers(t, st)
	far := make([]uint64, sessiond.MaxCursorPartitions)
	far[len(far)-1] = 1
	for what, call := range map[string]func() error{
		"empty name": func() error {
			_, err := c.ClaimConsumer(ctx, "", "a", sessiond.Cursor{}, Epoch, consumerTTL)
			return err
		},
		"long name": func() error {
			_, err := c.ClaimConsumer(ctx, strings.Repeat("n", sessiond.MaxConsumerName+1), "a", sessiond.Cursor{}, Epoch, consumerTTL)
			return err
		},
		"name with a brace": func() error {
			_, err := c.ClaimConsumer(ctx, "a{b}", "a", sessiond.Cursor{}, Epoch, consumerTTL)
			return err
		},
		"name with a space": func() error {
			return c.CommitConsumer(ctx, "a b", "a", sessiond.Cursor{}, Epoch, consumerTTL)
		},
		"empty owner": func() error {
			_, err := c.ClaimConsumer(ctx, "n", "", sessiond.Cursor{}, Epoch, consumerTTL)
			return err
		},
		"no ttl": func() error {
			_, err := c.ClaimConsumer(ctx, "n", "a", sessiond.Cursor{}, Epoch, 0)
			return err
		},
		"negative ttl": func() error {
			return c.CommitConsumer(ctx, "n", "a", sessiond.Cursor{}, Epoch, -time.Second)
		},
		"FromNow": func() error {
			_, err := c.ClaimConsumer(ctx, "n", "a", sessiond.FromNow, Epoch, consumerTTL)
			return err
		},
		"a partition no store has": func() error {
			_, err := c.ClaimConsumer(ctx, "n", "a", sessiond.CursorOf(far...), Epoch, consumerTTL)
			return err
		},
	} {
		if err := call(); !errors.Is(err, sessiond.ErrInvalidArgument) {
			t.Errorf("%s: %v; want invalid_argument", what, err)
		}
	}
	// Nothing was recorded: "n" is new to the first claim.
	got, err := c.ClaimConsumer(ctx, "n", "a", sessiond.CursorOf(7), Epoch, consumerTTL)
	if err != nil {
		t.Fatal(err)
	}
	sameCursor(t, "ClaimConsumer after refused calls", got, sessiond.CursorOf(7))
}

// testConsumersRace: of owners claiming one consumer at once, one wins.
func testConsumersRace(t *testing.T, st sessiond.Store) {
	c := consumers(t, st)
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = c.ClaimConsumer(context.Background(), "race", fmt.Sprint("owner-", i), sessiond.Cursor{}, Epoch, consumerTTL)
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, sessiond.ErrConsumerClaimed):
			t.Fatalf("ClaimConsumer: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d racing owners claimed the consumer, want 1", won, n)
	}
}

// testConsumersReopen: a consumer's cursor and claim survive a reopen.
func testConsumersReopen(t *testing.T, st sessiond.Store, reopen func(testing.TB, sessiond.Store) sessiond.Store) sessiond.Store {
	ctx := context.Background()
	head := headAfterEvents(t, st)
	c := consumers(t, st)
	if _, err := c.ClaimConsumer(ctx, "webhook:billing", "a", sessiond.Cursor{}, Epoch, consumerTTL); err != nil {
		t.Fatal(err)
	}
	if err := c.CommitConsumer(ctx, "webhook:billing", "a", head, Epoch.Add(time.Second), consumerTTL); err != nil {
		t.Fatal(err)
	}
	st = reopen(t, st)
	c = consumers(t, st)
	_, err := c.ClaimConsumer(ctx, "webhook:billing", "b", sessiond.Cursor{}, Epoch.Add(2*time.Second), consumerTTL)
	wantErr(t, err, sessiond.ErrConsumerClaimed, "ClaimConsumer(by another owner, after reopen)")
	got, err := c.ClaimConsumer(ctx, "webhook:billing", "a", sessiond.Cursor{}, Epoch.Add(2*time.Second), consumerTTL)
	if err != nil {
		t.Fatal(err)
	}
	sameCursor(t, "the consumer's cursor after reopen", got, head)
	return st
}
