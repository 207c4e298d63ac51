package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// A runtime call is posted as a RuntimeMessage whose webhook-id is the
// call's key, signed so that the standard library verifies it; failures
// are retried with that same id, and a call that never gets a 2xx fails.
func TestRuntimeCallsAreSignedWithTheirKeyAsID(t *testing.T) {
	secret := testSecret(t)
	h := newHookServer(t, 503, 200)
	rt := Runtime(&Sender{URL: h.URL, Secret: secret, Sleep: func(context.Context, time.Duration) error { return nil }})
	s := &sessiond.Session{ID: "06h0c3x1j2k4m5n6p7q8r9s0t1", Subject: "alice", State: sessiond.StateHibernating, Cycle: 3}
	call := sessiond.RuntimeCall{Action: sessiond.RuntimeHibernate, Session: s, Key: s.ID + ".3.hibernate"}
	if err := rt(t.Context(), call); err != nil {
		t.Fatal(err)
	}
	got := h.received()
	if len(got) != 2 {
		t.Fatalf("%d deliveries, want 2 (a 503, then a 200)", len(got))
	}
	wh, err := standardwebhooks.NewWebhook(secret.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range got {
		if err := wh.Verify(r.body, r.header); err != nil {
			t.Fatalf("the standard library refuses the delivery: %v", err)
		}
		if id := r.header.Get(HeaderID); id != call.Key {
			t.Fatalf("webhook-id %q, want the call's key %q", id, call.Key)
		}
		var m sessiond.RuntimeMessage
		if err := json.Unmarshal(r.body, &m); err != nil {
			t.Fatal(err)
		}
		if m.Type != "session.hibernate" || m.Data.Action != sessiond.RuntimeHibernate || m.Data.Key != call.Key ||
			m.Data.Session == nil || m.Data.Session.ID != s.ID || m.Data.Session.State != sessiond.StateHibernating {
			t.Fatalf("body %s", r.body)
		}
	}

	down := newHookServer(t, 500)
	err = Runtime(&Sender{URL: down.URL, Attempts: 3, Sleep: func(context.Context, time.Duration) error { return nil }})(t.Context(), call)
	var de *DeliveryError
	if !errors.As(err, &de) || de.Attempts != 3 || de.Status != 500 {
		t.Fatalf("err = %v, want a DeliveryError after 3 attempts", err)
	}
}
