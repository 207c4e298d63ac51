package httpapi_test

import (
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/httpapi"
	"github.com/sessiond/sessiond/internal/realip"
)

// htAuthCounts records the calls of httpapi.Config.AuthFailed.
type htAuthCounts struct {
	mu             sync.Mutex
	wrong, limited int
}

func (c *htAuthCounts) add(limited bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if limited {
		c.limited++
	} else {
		c.wrong++
	}
}

func (c *htAuthCounts) get() (wrong, limited int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wrong, c.limited
}

// htBehindProxy makes the test server see the client address in
// X-Forwarded-For: the test client (loopback) is the trusted proxy.
func htBehindProxy(c *httpapi.Config) {
	c.ClientIP = realip.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}).ClientIP
}

func htFrom(ip, key string) http.Header {
	return http.Header{"X-Forwarded-For": {ip}, "Authorization": {"Bearer " + key}}
}

func TestFailedAPIKeysFromOneAddressAreRateLimitedUntilTheWindowEnds(t *testing.T) {
	counts := &htAuthCounts{}
	e := htStart(t, func(c *httpapi.Config) {
		htBehindProxy(c)
		c.AuthFailed = counts.add
	})
	const attacker, neighbour = "203.0.113.66", "203.0.113.67"

	// Ten wrong keys are answered 401.
	for i := range httpapi.DefaultAuthFailureLimit {
		r := e.sendWith("GET", "/v1/stats", "", htFrom(attacker, "wrong-"+string(rune('a'+i))))
		htWantError(t, r, http.StatusUnauthorized, sessiond.CodeUnauthorized, "")
		e.clock.Advance(time.Second)
	}
	// The eleventh request is refused even with the right key.
	r := e.sendWith("GET", "/v1/stats", "", htFrom(attacker, htKey))
	htWantError(t, r, http.StatusTooManyRequests, sessiond.CodeRateLimited, "")
	if got := r.header.Get("Retry-After"); got != "50" {
		t.Errorf("Retry-After %q, want 50 (the window opened 10s ago)", got)
	}
	// Every admin route is closed to it; public ones are not.
	htWantError(t, e.sendWith("POST", "/v1/sessions", `{"subject":"x"}`, htFrom(attacker, htKey)), http.StatusTooManyRequests, sessiond.CodeRateLimited, "")
	htWantStatus(t, e.sendWith("GET", "/healthz", "", htFrom(attacker, "")), http.StatusOK)
	// Another address is not affected.
	htWantStatus(t, e.sendWith("GET", "/v1/stats", "", htFrom(neighbour, htKey)), http.StatusOK)

	e.clock.Advance(49 * time.Second)
	r = e.sendWith("GET", "/v1/stats", "", htFrom(attacker, htKey))
	htWantError(t, r, http.StatusTooManyRequests, sessiond.CodeRateLimited, "")
	if got := r.header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q a second before the window ends, want 1", got)
	}

	// Once the window has passed, the right key works again, and a wrong
	// one opens a new window with ten attempts.
	e.clock.Advance(time.Second)
	htWantStatus(t, e.sendWith("GET", "/v1/stats", "", htFrom(attacker, htKey)), http.StatusOK)
	htWantError(t, e.sendWith("GET", "/v1/stats", "", htFrom(attacker, "wrong")), http.StatusUnauthorized, sessiond.CodeUnauthorized, "")
	htWantStatus(t, e.sendWith("GET", "/v1/stats", "", htFrom(attacker, htKey)), http.StatusOK)

	if wrong, limited := counts.get(); wrong != 11 || limited != 3 {
		t.Errorf("AuthFailed counted %d wrong keys and %d limited requests, want 11 and 3", wrong, limited)
	}
}

func TestMissingKeyCountsAsAFailure(t *testing.T) {
	e := htStart(t, func(c *httpapi.Config) {
		htBehindProxy(c)
		c.AuthFailureLimit = 2
	})
	for range 2 {
		htWantStatus(t, e.sendWith("GET", "/v1/stats", "", http.Header{"X-Forwarded-For": {"198.51.100.1"}}), http.StatusUnauthorized)
	}
	htWantStatus(t, e.sendWith("GET", "/v1/stats", "", htFrom("198.51.100.1", htKey)), http.StatusTooManyRequests)
}

func TestForgedForwardedForFromAnUntrustedPeerDoesNotEscapeTheLimit(t *testing.T) {
	// No trusted proxy: X-Forwarded-For is the client's own claim, and
	// changing it does not make a new address.
	e := htStart(t, func(c *httpapi.Config) { c.AuthFailureLimit = 3 })
	for i := range 3 {
		htWantStatus(t, e.sendWith("GET", "/v1/stats", "", htFrom("192.0.2."+string(rune('1'+i)), "wrong")), http.StatusUnauthorized)
	}
	r := e.sendWith("GET", "/v1/stats", "", htFrom("192.0.2.200", htKey))
	if r.status != http.StatusTooManyRequests || !strings.Contains(string(r.body), "rate_limited") {
		t.Fatalf("after 3 failures with varying X-Forwarded-For: %s, want 429 rate_limited", r)
	}
}
