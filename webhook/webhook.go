// Package webhook delivers signed HTTP callbacks following the Standard
// Webhooks convention (https://www.standardwebhooks.com), so that a
// receiver verifies them with any of its libraries: each POST carries
//
//	webhook-id:        the message's id, the same on every retry: the
//	                   receiver's idempotency key
//	webhook-timestamp: the attempt's time, Unix seconds
//	webhook-signature: v1,<base64 of HMAC-SHA256(secret, id.timestamp.body)>
//
// The secret is written as the libraries take it: "whsec_" and the key in
// base64. A Sender retries what fails (no answer, a timeout, a non-2xx
// status) with exponential backoff and full jitter, up to a number of
// attempts, each bounded by its own timeout.
//
// A Notifier (notify.go) follows a store's event log and sends the events
// each endpoint subscribed to through a Sender: at least once, in order
// per session, from a cursor kept in the store (docs/webhooks.md).
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sessiond/sessiond/internal/wait"
)

// Headers of a delivery.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

const secretPrefix = "whsec_"

// Secret is a signing key.
type Secret []byte

// MinSecretBytes and MaxSecretBytes bound a secret's key, as the Standard
// Webhooks specification recommends (24 to 64 bytes).
const (
	MinSecretBytes = 24
	MaxSecretBytes = 64
)

// ParseSecret reads a secret in the "whsec_<base64>" form.
func ParseSecret(s string) (Secret, error) {
	b64, ok := strings.CutPrefix(s, secretPrefix)
	if !ok {
		return nil, errors.New(`a webhook secret starts with "whsec_" (then the key in base64)`)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New("a webhook secret's key is not base64 (after whsec_)")
	}
	if len(key) < MinSecretBytes || len(key) > MaxSecretBytes {
		return nil, fmt.Errorf("a webhook secret's key has %d bytes; it must have %d to %d", len(key), MinSecretBytes, MaxSecretBytes)
	}
	return Secret(key), nil
}

// String returns the secret in the "whsec_<base64>" form.
func (s Secret) String() string { return secretPrefix + base64.StdEncoding.EncodeToString(s) }

// Sign returns the webhook-signature header of a message: "v1," and the
// base64 HMAC-SHA256 of "<id>.<unix seconds>.<body>".
func (s Secret) Sign(id string, at time.Time, body []byte) string {
	h := hmac.New(sha256.New, s)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write([]byte(strconv.FormatInt(at.Unix(), 10)))
	h.Write([]byte{'.'})
	h.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// Message is one webhook: its id (the idempotency key, the same on every
// attempt) and its JSON body.
type Message struct {
	ID   string
	Body []byte
}

// Defaults of a Sender's zero fields.
const (
	DefaultAttempts       = 5
	DefaultAttemptTimeout = 5 * time.Second
	DefaultBaseDelay      = 500 * time.Millisecond
	DefaultMaxDelay       = 30 * time.Second
	// maxAnswer is how much of an answer's body is read (and dropped).
	maxAnswer = 64 << 10
)

// Sender posts messages to one URL.
type Sender struct {
	URL    string
	Secret Secret // nil: deliveries carry the id and timestamp, unsigned
	Client *http.Client
	// Attempts is how many times a message is tried in all; 0 means
	// DefaultAttempts.
	Attempts int
	// AttemptTimeout bounds each attempt; 0 means DefaultAttemptTimeout.
	AttemptTimeout time.Duration
	// BaseDelay and MaxDelay shape the wait before attempt n+1: a random
	// duration up to min(MaxDelay, BaseDelay·2^(n-1)) (full jitter). 0
	// means DefaultBaseDelay, DefaultMaxDelay.
	BaseDelay, MaxDelay time.Duration
	// Now and Sleep default to the system clock; tests replace them.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// OnAttempt, if set, is told of each attempt but one that failed
	// because ctx ended: its number (1 for the first), the answer's status (0 if none
	// came) and its error (nil if an answer came).
	OnAttempt func(n, status int, err error)
}

// DeliveryError is a message that no attempt delivered.
type DeliveryError struct {
	Attempts int
	Status   int   // the last answer's status; 0 if none came
	Err      error // the last attempt's error, if it had one
}

func (e *DeliveryError) Error() string {
	what := e.Err
	if what == nil {
		what = fmt.Errorf("answered %d", e.Status)
	}
	return fmt.Sprintf("webhook not delivered after %d attempts: %v", e.Attempts, what)
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// Send delivers m: it returns nil once an attempt gets a 2xx answer, and
// a *DeliveryError when every attempt failed, or ctx's error when ctx
// ends first (an attempt in flight is abandoned).
func (s *Sender) Send(ctx context.Context, m Message) error {
	attempts := orDefault(s.Attempts, DefaultAttempts)
	var last DeliveryError
	for n := 1; n <= attempts; n++ {
		if n > 1 {
			if err := s.sleep(ctx, s.backoff(n-1)); err != nil {
				return err
			}
		}
		status, err := s.attempt(ctx, m)
		ok := err == nil && status/100 == 2
		if !ok && ctx.Err() != nil {
			return ctx.Err()
		}
		if s.OnAttempt != nil {
			s.OnAttempt(n, status, err)
		}
		if ok {
			return nil
		}
		last = DeliveryError{Attempts: n, Status: status, Err: err}
	}
	return &last
}

// attempt posts m once and returns the answer's status.
func (s *Sender) attempt(ctx context.Context, m Message) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, orDefault(s.AttemptTimeout, DefaultAttemptTimeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(m.Body))
	if err != nil {
		return 0, err
	}
	at := s.now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sessiond-webhook/1")
	req.Header.Set(HeaderID, m.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
	if s.Secret != nil {
		req.Header.Set(HeaderSignature, s.Secret.Sign(m.ID, at, m.Body))
	}
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
	return resp.StatusCode, nil
}

// backoff is the wait after the n-th failed attempt: full jitter over an
// exponential cap.
func (s *Sender) backoff(n int) time.Duration {
	base, most := orDefault(s.BaseDelay, DefaultBaseDelay), orDefault(s.MaxDelay, DefaultMaxDelay)
	limit := most
	if n < 32 && base<<(n-1) > 0 && base<<(n-1) < most {
		limit = base << (n - 1)
	}
	return time.Duration(rand.Int64N(int64(limit) + 1)) //nolint:gosec // jitter, not a secret
}

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Sender) sleep(ctx context.Context, d time.Duration) error {
	if s.Sleep != nil {
		return s.Sleep(ctx, d)
	}
	return wait.Sleep(ctx, d)
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}
