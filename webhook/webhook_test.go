package webhook

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func testSecret(t *testing.T) Secret {
	t.Helper()
	s, err := ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// hookServer records what it receives and answers with statuses in turn
// (the last one from then on).
type hookServer struct {
	*httptest.Server
	mu       sync.Mutex
	got      []received
	statuses []int
}

type received struct {
	header http.Header
	body   []byte
}

func newHookServer(t *testing.T, statuses ...int) *hookServer {
	h := &hookServer{statuses: statuses}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.got = append(h.got, received{r.Header.Clone(), body})
		status := h.statuses[min(len(h.got), len(h.statuses))-1]
		h.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) received() []received {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]received(nil), h.got...)
}

// A delivery verifies with the Standard Webhooks project's own Go library,
// an implementation of the scheme independent of this one.
func TestDeliveryVerifiesWithTheStandardLibrary(t *testing.T) {
	secret := testSecret(t)
	h := newHookServer(t, 204)
	s := &Sender{URL: h.URL, Secret: secret}
	body := []byte(`{"type":"session.ending","data":{"id":"s1"}}`)
	if err := s.Send(context.Background(), Message{ID: "s1.ending", Body: body}); err != nil {
		t.Fatal(err)
	}
	got := h.received()
	if len(got) != 1 {
		t.Fatalf("%d deliveries, want 1", len(got))
	}
	wh, err := standardwebhooks.NewWebhook(secret.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(got[0].body, got[0].header); err != nil {
		t.Fatalf("the standard library refuses the delivery: %v (headers %v)", err, got[0].header)
	}
	if got[0].header.Get(HeaderID) != "s1.ending" || string(got[0].body) != string(body) {
		t.Fatalf("delivered id %q body %s", got[0].header.Get(HeaderID), got[0].body)
	}
	// And a tampered body does not verify.
	if err := wh.Verify([]byte(`{"type":"session.ending","data":{"id":"s2"}}`), got[0].header); err == nil {
		t.Fatal("the standard library verified a changed body")
	}
}

// Failed attempts are retried with the same id, each signed for its own
// time, after waits within the backoff's caps; a 2xx ends it.
func TestRetriesUntilAnAnswerIs2xx(t *testing.T) {
	secret := testSecret(t)
	h := newHookServer(t, 500, 503, 429, 200)
	var waits []time.Duration
	clock := time.Unix(1_700_000_000, 0)
	s := &Sender{
		URL: h.URL, Secret: secret, Attempts: 5, BaseDelay: 100 * time.Millisecond, MaxDelay: 250 * time.Millisecond,
		Now: func() time.Time { return clock },
		Sleep: func(_ context.Context, d time.Duration) error {
			waits = append(waits, d)
			clock = clock.Add(d + time.Second)
			return nil
		},
	}
	if err := s.Send(context.Background(), Message{ID: "s1.wake.3", Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	got := h.received()
	if len(got) != 4 {
		t.Fatalf("%d attempts, want 4 (three failures, then 200)", len(got))
	}
	wh, _ := standardwebhooks.NewWebhookRaw(secret)
	for i, r := range got {
		if id := r.header.Get(HeaderID); id != "s1.wake.3" {
			t.Fatalf("attempt %d carries id %q; the id is the same on every retry", i+1, id)
		}
		if err := wh.VerifyIgnoringTimestamp(r.body, r.header); err != nil {
			t.Fatalf("attempt %d does not verify: %v", i+1, err)
		}
	}
	if got[0].header.Get(HeaderTimestamp) == got[1].header.Get(HeaderTimestamp) {
		t.Fatal("a retry carries its first attempt's timestamp; each attempt is signed for its own time")
	}
	caps := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 250 * time.Millisecond}
	if len(waits) != 3 {
		t.Fatalf("waited %d times, want 3", len(waits))
	}
	for i, w := range waits {
		if w < 0 || w > caps[i] {
			t.Fatalf("wait %d was %v, want within [0, %v]", i+1, w, caps[i])
		}
	}
}

// When every attempt fails, the error says how many were made and what
// the last answer was.
func TestGivesUpAfterItsAttempts(t *testing.T) {
	h := newHookServer(t, 500)
	s := &Sender{URL: h.URL, Attempts: 3, Sleep: func(context.Context, time.Duration) error { return nil }}
	err := s.Send(context.Background(), Message{ID: "x", Body: []byte(`{}`)})
	var de *DeliveryError
	if !errors.As(err, &de) || de.Attempts != 3 || de.Status != 500 {
		t.Fatalf("Send to a hook that always fails: %v; want a DeliveryError after 3 attempts, status 500", err)
	}
	if n := len(h.received()); n != 3 {
		t.Fatalf("%d attempts reached the hook, want 3", n)
	}
}

// A hook that does not answer is cut at the attempt's timeout, and tried
// again. (Real time: an HTTP request's timeout, 50 ms.)
func TestASlowHookTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	s := &Sender{URL: srv.URL, Attempts: 2, AttemptTimeout: 50 * time.Millisecond, Sleep: func(context.Context, time.Duration) error { return nil }}
	begin := time.Now()
	err := s.Send(context.Background(), Message{ID: "slow", Body: []byte(`{}`)})
	var de *DeliveryError
	if !errors.As(err, &de) || de.Attempts != 2 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send to a hook that never answers: %v; want a DeliveryError after 2 timed-out attempts", err)
	}
	if took := time.Since(begin); took > 5*time.Second {
		t.Fatalf("two attempts of 50 ms took %v", took)
	}
}

// The caller's context ends a delivery at once, also between attempts.
func TestContextEndsTheDelivery(t *testing.T) {
	h := newHookServer(t, 500)
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sender{URL: h.URL, Attempts: 10, Sleep: func(ctx context.Context, _ time.Duration) error {
		cancel()
		return ctx.Err()
	}}
	if err := s.Send(ctx, Message{ID: "x", Body: []byte(`{}`)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Send with its context canceled while waiting to retry: %v", err)
	}
	if n := len(h.received()); n != 1 {
		t.Fatalf("%d attempts after the context ended, want 1", n)
	}
}

func TestParseSecret(t *testing.T) {
	s := testSecret(t)
	if back, err := ParseSecret(s.String()); err != nil || string(back) != string(s) {
		t.Fatalf("a secret's String does not parse back: %v", err)
	}
	for _, bad := range []string{"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_!!!", "whsec_c2hvcnQ=", "whsec_" + strings.Repeat("QUFB", 30)} {
		if _, err := ParseSecret(bad); err == nil {
			t.Errorf("ParseSecret(%q) = nil error", bad)
		}
	}
}

func TestBackoffStaysWithinItsCaps(t *testing.T) {
	s := &Sender{BaseDelay: time.Second, MaxDelay: 10 * time.Second}
	for n := 1; n <= 100; n++ {
		limit := 10 * time.Second // the cap, from 2^4 s on
		if n-1 < 4 {
			limit = time.Second << (n - 1)
		}
		for range 50 {
			if d := s.backoff(n); d < 0 || d > limit {
				t.Fatalf("backoff(%d) = %v, want within [0, %v]", n, d, limit)
			}
		}
	}
}
