package jwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessiond/sessiond"
)

// maxJWKSSize bounds the JWKS document read from the network.
const maxJWKSSize = 1 << 20

// jwk is the subset of RFC 7517/7518/8037 fields this package reads.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS parses a JWK Set. Keys that cannot verify signatures here
// (encryption keys, other key types or curves, an "alg" other than the one
// their type maps to, bad key material) are skipped and reported in skipped,
// so that one odd key does not hide the others. Only a document that is not a
// JWK Set at all is an error.
func parseJWKS(data []byte) (keys []key, skipped []error, err error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("not a JWK Set: %w", err)
	}
	if doc.Keys == nil {
		return nil, nil, errors.New(`not a JWK Set: no "keys" member`)
	}
	for i, raw := range doc.Keys {
		var j jwk
		if err := json.Unmarshal(raw, &j); err != nil {
			skipped = append(skipped, fmt.Errorf("key %d: %w", i, err))
			continue
		}
		k, err := j.key()
		if err != nil {
			skipped = append(skipped, fmt.Errorf("key %d (kid %q): %w", i, j.Kid, err))
			continue
		}
		keys = append(keys, k)
	}
	return keys, skipped, nil
}

// key converts a JWK to a verification key.
func (j jwk) key() (key, error) {
	if j.Use != "" && j.Use != "sig" {
		return key{}, fmt.Errorf("use is %q, not sig", j.Use)
	}
	var pub any
	switch {
	case j.Kty == "RSA":
		n, err := b64(j.N)
		if err != nil || len(n) == 0 {
			return key{}, errors.New("bad RSA modulus n")
		}
		e, err := b64(j.E)
		if err != nil || len(e) == 0 || len(e) > 4 {
			return key{}, errors.New("bad RSA exponent e")
		}
		ev := new(big.Int).SetBytes(e).Int64()
		if ev < 3 || ev%2 == 0 {
			return key{}, errors.New("bad RSA exponent e")
		}
		pub = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(ev)}
	case j.Kty == "EC" && j.Crv == "P-256":
		x, errX := b64(j.X)
		y, errY := b64(j.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return key{}, errors.New("bad P-256 coordinates")
		}
		pk, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return key{}, err
		}
		pub = pk
	case j.Kty == "OKP" && j.Crv == "Ed25519":
		x, err := b64(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return key{}, errors.New("bad Ed25519 key x")
		}
		pub = ed25519.PublicKey(x)
	case j.Kty == "EC" || j.Kty == "OKP":
		return key{}, fmt.Errorf("unsupported curve %q", j.Crv)
	default:
		return key{}, fmt.Errorf("unsupported key type %q", j.Kty)
	}
	k, pk, err := publicKey(pub)
	if err != nil {
		return key{}, err
	}
	if j.Alg != "" && j.Alg != k.alg() {
		return key{}, fmt.Errorf("alg %q is not supported for this key type (want %s)", j.Alg, k.alg())
	}
	return key{kind: k, kid: j.Kid, key: pk}, nil
}

func b64(s string) ([]byte, error) { return base64.RawURLEncoding.Strict().DecodeString(s) }

// jwksRetryFirst is the wait before the first retry of a JWK Set that has
// not loaded yet; each failed attempt doubles it, up to the refresh period.
const jwksRetryFirst = time.Second

// jwks holds the keys of one JWKS URL and refreshes them: periodically, and
// on demand when a token names an unknown kid (at most once per minInterval).
// Until a set has loaded, it retries with exponential backoff instead.
// One goroutine, run, does every fetch after the first; close stops it and
// waits for it.
type jwks struct {
	url         string
	client      *http.Client
	ownClient   bool // client was made by New: close its idle connections on close
	log         *slog.Logger
	now         func() time.Time
	every       time.Duration // periodic refresh, and the cap of the retry backoff
	minInterval time.Duration // between unknown-kid refreshes

	// keys is nil until a fetch has succeeded, then never nil again. It is
	// stored under mu (so that status sees it with lastLoad) and loaded
	// without it.
	keys atomic.Pointer[[]key]

	ctx    context.Context // cancelled by close; bounds every background fetch
	cancel context.CancelFunc
	wake   chan struct{} // buffered(1): an on-demand refresh is requested
	wg     sync.WaitGroup

	mu          sync.Mutex
	closed      bool
	lastTrigger time.Time     // when an on-demand request last caused a fetch
	pending     chan struct{} // closed when the requested fetch is done; nil if none is requested
	lastAttempt time.Time     // when the latest fetch ended (by now)
	lastErr     error         // of the latest fetch; nil if it succeeded
	lastLoad    time.Time     // when the latest successful fetch ended
}

// newJWKS returns the key source for rawURL, without fetching it. The URL
// must pass checkJWKSURL. client may be nil (a client with
// DefaultJWKSTimeout is made); it is copied, never modified, so that the
// redirect policy can be added.
func newJWKS(rawURL string, client *http.Client, log *slog.Logger, now func() time.Time, every, minInterval time.Duration) *jwks {
	s := &jwks{
		url:         rawURL,
		log:         log,
		now:         now,
		every:       every,
		minInterval: minInterval,
		wake:        make(chan struct{}, 1),
	}
	if client == nil {
		// An own transport, so that close can drop its idle connections
		// without touching http.DefaultTransport's.
		s.client = &http.Client{Timeout: DefaultJWKSTimeout, Transport: http.DefaultTransport.(*http.Transport).Clone()}
		s.ownClient = true
	} else {
		c := *client
		s.client = &c
	}
	s.client.CheckRedirect = checkJWKSRedirect(s.client.CheckRedirect)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.every == 0 {
		s.every = DefaultJWKSRefresh
	}
	if s.minInterval == 0 {
		s.minInterval = DefaultJWKSUnknownKIDLimit
	}
	// The refresher's lifetime is the Verifier's, not New's ctx.
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// snapshot returns the current keys and whether a set has loaded. The
// slice is never modified after it is published.
func (s *jwks) snapshot() (keys []key, loaded bool) {
	if p := s.keys.Load(); p != nil {
		return *p, true
	}
	return nil, false
}

// fetch downloads and parses the key set. A client without a Timeout of
// its own gets DefaultJWKSTimeout, so that no fetch can hang forever.
func (s *jwks) fetch(ctx context.Context) ([]key, error) {
	if s.client.Timeout == 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultJWKSTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("GET %s: status %s", s.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSSize+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading body: %w", s.url, err)
	}
	if len(body) > maxJWKSSize {
		return nil, fmt.Errorf("GET %s: JWK Set is larger than %d bytes", s.url, maxJWKSSize)
	}
	keys, skipped, err := parseJWKS(body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", s.url, err)
	}
	for _, e := range skipped {
		s.log.Debug("jwt: JWKS key skipped", "url", s.url, "reason", e.Error())
	}
	if len(keys) == 0 {
		s.log.Warn("jwt: JWKS has no usable signing key", "url", s.url, "skipped", len(skipped))
	}
	return keys, nil
}

// refresh fetches the set, publishes it on success, records the outcome for
// Ready and logs a failure (why says which refresh it was). On a failure the
// keys in use, if any, are kept. A fetch cut short by close is neither
// recorded nor logged.
func (s *jwks) refresh(ctx context.Context, why string) {
	keys, err := s.fetch(ctx)
	if err != nil && s.ctx.Err() != nil {
		return
	}
	now := s.now()
	s.mu.Lock()
	s.lastAttempt, s.lastErr = now, err
	if err == nil {
		s.keys.Store(&keys)
		s.lastLoad = now
	}
	s.mu.Unlock()
	switch _, loaded := s.snapshot(); {
	case err == nil:
	case loaded:
		s.log.Warn("jwt: JWKS "+why+" failed; keeping the keys in use", "url", s.url, "err", err)
	default:
		s.log.Warn("jwt: JWKS "+why+" failed; no signing keys from it yet, retrying", "url", s.url, "err", err)
	}
}

// start launches the refresher goroutine.
func (s *jwks) start() {
	s.wg.Go(s.run)
}

func (s *jwks) run() {
	retry := min(jwksRetryFirst, s.every)
	t := time.NewTimer(s.nextWait(&retry))
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.refresh(s.ctx, "refresh")
		case <-s.wake:
			s.refresh(s.ctx, "refresh for an unknown kid")
			s.mu.Lock()
			done := s.pending
			s.pending = nil
			s.mu.Unlock()
			if done != nil {
				close(done)
			}
		}
		t.Reset(s.nextWait(&retry))
	}
}

// nextWait returns the time until the next scheduled fetch: the refresh
// period once a set has loaded; before that, *retry less up to half of it
// at random (so that many servers restarted together do not fetch in step),
// doubling *retry up to the refresh period for the time after.
func (s *jwks) nextWait(retry *time.Duration) time.Duration {
	if _, loaded := s.snapshot(); loaded {
		*retry = min(jwksRetryFirst, s.every)
		return s.every
	}
	d := *retry
	*retry = min(2*d, s.every)
	if d < 2 {
		return d
	}
	return d - rand.N(d/2) //nolint:gosec // G404: jitter, not a secret
}

// request asks the refresher for an on-demand fetch and returns a channel
// closed when it is done. Requests that arrive while one is pending share
// it. A new fetch is requested at most once per minInterval (by the injected
// clock); within that window, or after close, request reports false.
func (s *jwks) request() (done <-chan struct{}, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false
	}
	if s.pending == nil {
		now := s.now()
		if !s.lastTrigger.IsZero() && now.Sub(s.lastTrigger) < s.minInterval {
			return nil, false
		}
		s.lastTrigger = now
		s.pending = make(chan struct{})
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return s.pending, true
}

// refreshUnknown asks for a fetch because a token named a kid not in the
// set, and waits until that fetch is done or ctx ends. Within the rate
// limit it returns at once and the caller uses the keys it has.
func (s *jwks) refreshUnknown(ctx context.Context) {
	done, ok := s.request()
	if !ok {
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	case <-s.ctx.Done():
	}
}

// notLoaded is Verify's error for a token that only keys from this set
// could verify, while no set has loaded.
func (s *jwks) notLoaded() error {
	s.mu.Lock()
	err := s.lastErr
	s.mu.Unlock()
	return &sessiond.Error{Code: sessiond.CodeUnavailable, Message: msgKeysNotLoaded, Err: err}
}

// status reports whether a set has loaded, with a detail for Ready.
func (s *jwks) status() (bool, string) {
	s.mu.Lock()
	keys, loaded := s.snapshot() // under mu: consistent with lastLoad
	attempt, lastErr, load := s.lastAttempt, s.lastErr, s.lastLoad
	s.mu.Unlock()
	switch {
	case !loaded && lastErr == nil:
		return false, "jwks: not loaded yet"
	case !loaded:
		return false, fmt.Sprintf("jwks: not loaded yet: %v; last attempt %s", lastErr, attempt.Format(time.RFC3339))
	}
	n := fmt.Sprintf("%d keys", len(keys))
	if len(keys) == 1 {
		n = "1 key"
	}
	if lastErr != nil {
		return true, fmt.Sprintf("jwks: %s, loaded %s; last refresh failed %s: %v",
			n, load.Format(time.RFC3339), attempt.Format(time.RFC3339), lastErr)
	}
	return true, fmt.Sprintf("jwks: %s, loaded %s", n, load.Format(time.RFC3339))
}

// close stops the refresher and waits for it. It is idempotent.
func (s *jwks) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	if s.ownClient {
		s.client.CloseIdleConnections()
	}
}
