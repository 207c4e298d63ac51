package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sessiond/sessiond/sessiondtest"
)

const notifySecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// verifyStandardWebhook checks a delivery as the Standard Webhooks
// specification says, written here from the specification rather than
// with the sender's code: the HMAC-SHA256, keyed with the secret's base64
// after "whsec_", of "<webhook-id>.<webhook-timestamp>.<body>", in base64,
// among the space-separated "v1,<signature>" of webhook-signature; the
// timestamp within five minutes of now.
func verifyStandardWebhook(secret string, h http.Header, body []byte) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if id == "" || err != nil {
		return fmt.Errorf("webhook-id %q, webhook-timestamp %q", id, ts)
	}
	if d := time.Since(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("webhook-timestamp %s is %v away", ts, d)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for sig := range strings.FieldsSeq(h.Get("webhook-signature")) {
		version, b64, _ := strings.Cut(sig, ",")
		got, err := base64.StdEncoding.DecodeString(b64)
		if version == "v1" && err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("no v1 signature matches in %q", h.Get("webhook-signature"))
}

// notified is a notification the receiver accepted.
type notified struct {
	id      string
	session string
	version uint64
	typ     string
}

// notifyReceiver accepts signed notifications, or answers 503 while down.
type notifyReceiver struct {
	*httptest.Server
	t *testing.T

	mu       sync.Mutex
	down     bool
	got      []notified
	attempts map[string]int
}

func newNotifyReceiver(t *testing.T) *notifyReceiver {
	r := &notifyReceiver{t: t, attempts: map[string]int{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if err := verifyStandardWebhook(notifySecret, req.Header, body); err != nil {
			t.Errorf("a notification does not verify: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var n struct {
			Type      string    `json:"type"`
			Timestamp time.Time `json:"timestamp"`
			Data      struct {
				Type      string `json:"type"`
				SessionID string `json:"session_id"`
				Version   uint64 `json:"version"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &n); err != nil || n.Type != "session."+n.Data.Type || n.Timestamp.IsZero() {
			t.Errorf("a notification's body %s: %v", body, err)
		}
		id := req.Header.Get("webhook-id")
		if want := fmt.Sprintf("%s.%d.%s", n.Data.SessionID, n.Data.Version, n.Data.Type); id != want {
			t.Errorf("webhook-id %q, want %q", id, want)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.attempts[id]++
		if r.down {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		r.got = append(r.got, notified{id: id, session: n.Data.SessionID, version: n.Data.Version, typ: n.Data.Type})
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *notifyReceiver) setDown(down bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = down
}

func (r *notifyReceiver) tried(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts[id] > 0
}

func (r *notifyReceiver) notifications() []notified {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// waitFor waits until a notification of each "<session id>.<type>" has
// been accepted.
func (r *notifyReceiver) waitFor(t *testing.T, events ...string) {
	t.Helper()
	sessiondtest.Eventually(t, fmt.Sprintf("notifications %v", events), func() bool {
		seen := map[string]bool{}
		for _, n := range r.notifications() {
			seen[n.session+"."+n.typ] = true
		}
		for _, e := range events {
			if !seen[e] {
				return false
			}
		}
		return true
	})
}

// writeNotifyConfig writes a config file with one endpoint, for the
// receiver at url, of created and ended events.
func writeNotifyConfig(t *testing.T, url string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sessiond.yaml")
	doc := fmt.Sprintf(`webhooks:
  - name: lifecycle
    url: %s
    secret: %s
    events: [created, ended]
    max_attempts: 100
`, url, notifySecret)
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestWebhooksThroughTheServer: a server with webhooks: in its config
// file notifies the endpoint of the events it subscribed to, signed so
// that an independent implementation of Standard Webhooks verifies them;
// stopped while the receiver is down, it resumes after a restart where it
// stopped, losing nothing, each session's notifications in order.
func TestWebhooksThroughTheServer(t *testing.T) {
	rcv := newNotifyReceiver(t)
	cfg := testConfig(t)
	cfg.Node = "node-a"
	path := writeNotifyConfig(t, rcv.URL)
	if err := cfg.readFile(path); err != nil {
		t.Fatal(err)
	}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, cfg)
	c := ts.client()
	alice, bob := create(t, c, "alice"), create(t, c, "bob")
	if err := c.Revoke(t.Context(), alice.ID); err != nil {
		t.Fatal(err)
	}
	rcv.waitFor(t, alice.ID+".created", bob.ID+".created", alice.ID+".ended")
	for _, n := range rcv.notifications() {
		if n.typ != "created" && n.typ != "ended" {
			t.Fatalf("notified of %s, which the endpoint did not subscribe to", n.id)
		}
	}
	resp, err := http.Get(ts.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`sessiond_webhook_deliveries_total\{endpoint="lifecycle",result="ok"\} [1-9]`,
		`sessiond_webhook_delivering\{endpoint="lifecycle"\} 1$`,
		`sessiond_webhook_dead_letters_total\{endpoint="lifecycle"\} 0$`,
		`sessiond_webhook_gaps_total\{endpoint="lifecycle"\} 0$`,
	} {
		if !regexp.MustCompile(`(?m)^` + want).Match(body) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// The receiver goes down; the server stops while it retries.
	rcv.setDown(true)
	carol := create(t, c, "carol")
	if err := c.Revoke(t.Context(), bob.ID); err != nil {
		t.Fatal(err)
	}
	sessiondtest.Eventually(t, "carol's creation to be tried", func() bool { return rcv.tried(carol.ID + ".1.created") })
	if err := ts.stop(t); err != nil {
		t.Fatal(err)
	}
	rcv.setDown(false)

	ts = startServer(t, cfg)
	rcv.waitFor(t, carol.ID+".created", bob.ID+".ended")
	if err := ts.client().Revoke(t.Context(), carol.ID); err != nil {
		t.Fatal(err)
	}
	want := []string{alice.ID + ".created", bob.ID + ".created", alice.ID + ".ended", carol.ID + ".created", bob.ID + ".ended", carol.ID + ".ended"}
	rcv.waitFor(t, want...)

	// At least once: each of them, and nothing else. In order per
	// session: a session's notifications, repeats aside, created first.
	got := rcv.notifications()
	seen, last := map[string]bool{}, map[string]notified{}
	repeats := 0
	for _, n := range got {
		if !slices.Contains(want, n.session+"."+n.typ) {
			t.Errorf("unexpected notification %s", n.id)
		}
		if seen[n.id] {
			repeats++
			continue
		}
		seen[n.id] = true
		if prev, ok := last[n.session]; ok && (n.version <= prev.version || prev.typ != "created") {
			t.Errorf("session %s: %s notified after %s", n.session, n.id, prev.id)
		}
		last[n.session] = n
	}
	if len(seen) != len(want) {
		t.Errorf("%d distinct notifications, want %d", len(seen), len(want))
	}
	t.Logf("%d notifications, %d of them repeats", len(got), repeats)
}

// Secrets of webhooks are hidden by `sessiond config`, as other secrets.
func TestWebhookSecretsHiddenByConfig(t *testing.T) {
	path := writeNotifyConfig(t, "https://hooks:p4ssw0rd@app.example/hooks")
	out := mustCLI(t, "config", "--config", path, "--data-dir", t.TempDir())
	if strings.Contains(out, notifySecret) || strings.Contains(out, "p4ssw0rd") {
		t.Fatalf("sessiond config prints a webhook's secret:\n%s", out)
	}
	var got Config
	if err := yaml.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Webhooks) != 1 || got.Webhooks[0].Secret != "(set; hidden)" || got.Webhooks[0].MaxAttempts != 100 ||
		!slices.Equal(got.Webhooks[0].Events, []string{"created", "ended"}) || !strings.Contains(got.Webhooks[0].URL, "app.example/hooks") {
		t.Fatalf("sessiond config printed webhooks %+v", got.Webhooks)
	}
}

// Bad webhooks: entries are refused, naming the entry and what is wrong,
// never quoting the secret.
func TestWebhooksConfigIsChecked(t *testing.T) {
	good := WebhookConfig{Name: "a", URL: "https://app.example/hook", Secret: notifySecret, Events: []string{"ended"}}
	for what, tc := range map[string]struct {
		change func(*Config)
		want   string
	}{
		"no name":         {func(c *Config) { c.Webhooks[0].Name = "" }, "webhooks[0]: name"},
		"bad name":        {func(c *Config) { c.Webhooks[0].Name = "a/b" }, "webhooks[0] (a/b): name"},
		"bad url":         {func(c *Config) { c.Webhooks[0].URL = "file:///etc/passwd" }, "webhooks[0] (a): url: must be an http or https URL"},
		"no secret":       {func(c *Config) { c.Webhooks[0].Secret = "" }, "webhooks[0] (a): secret: required"},
		"bad secret":      {func(c *Config) { c.Webhooks[0].Secret = "whsec_c2hvcnQ=" }, "webhooks[0] (a): secret: a webhook secret's key has 5 bytes"},
		"no events":       {func(c *Config) { c.Webhooks[0].Events = nil }, "webhooks[0] (a): events: list at least one"},
		"unknown event":   {func(c *Config) { c.Webhooks[0].Events = []string{"ended", "exploded"} }, `events: "exploded" is not an event type`},
		"bad attempts":    {func(c *Config) { c.Webhooks[0].MaxAttempts = -2 }, "webhooks[0] (a): max_attempts"},
		"same name twice": {func(c *Config) { c.Webhooks = append(c.Webhooks, c.Webhooks[0]) }, `webhooks[1] (a): name: another endpoint is named "a"`},
		"too many": {func(c *Config) {
			for i := range 16 {
				w := good
				w.Name = fmt.Sprint("e", i)
				c.Webhooks = append(c.Webhooks, w)
			}
		}, "webhooks: at most 16 endpoints (got 17)"},
	} {
		cfg := testConfig(t)
		cfg.Webhooks = []WebhookConfig{good}
		tc.change(&cfg)
		err := cfg.validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want an error with %q", what, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), notifySecret[6:]) {
			t.Errorf("%s: the error quotes the secret: %v", what, err)
		}
	}
	cfg := testConfig(t)
	cfg.Webhooks = []WebhookConfig{good}
	if err := cfg.validate(); err != nil {
		t.Fatalf("a good endpoint: %v", err)
	}
}

// The webhooks example of docs/sessiond.example.yaml, commented out there,
// loads once uncommented.
func TestExampleWebhooksLoad(t *testing.T) {
	b, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	var block []string
	for line := range strings.SplitSeq(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "# webhooks:"):
			block = append(block, strings.TrimPrefix(line, "# "))
		case len(block) > 0 && strings.HasPrefix(line, "#   "):
			block = append(block, strings.TrimPrefix(line, "# "))
		case len(block) > 0:
			goto done
		}
	}
done:
	if len(block) < 3 {
		t.Fatalf("no commented webhooks: example in %s", exampleConfig)
	}
	cfg := testConfig(t)
	dec := yaml.NewDecoder(strings.NewReader(strings.Join(block, "\n")))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("the example's webhooks:\n%s\n%v", strings.Join(block, "\n"), err)
	}
	if err := cfg.validate(); err != nil || len(cfg.Webhooks) == 0 {
		t.Fatalf("the example's webhooks (%d): %v", len(cfg.Webhooks), err)
	}
}
