package sessiond

import (
	"sync"
	"time"
)

// DefaultValidationCacheSize is how many sessions the validation cache
// holds when Config.ValidationCacheSize leaves it zero.
const DefaultValidationCacheSize = 100_000

// validationCache keeps sessions as Validate last read them, for up to
// ttl, so that a validation can skip the store (Config.ValidationCache).
// It caches reads only: a validation that must write (activity due, a
// rotation, a theft, an expiry) still writes with a compare-and-set on the
// stored version, which a stale copy loses, and it then reads the store.
//
// What keeps it from serving a session that changed:
//   - this engine's own writes replace the cached copy in the same step as
//     they land, before the call that made them returns, and a copy read
//     before a write can never replace the copy the write left: an entry
//     only moves to a newer version. So on the node that revoked a
//     session, no validation after the revoke returned is served from the
//     cache.
//   - other engines' writes reach it through the event log it follows
//     (their events carry the version they wrote): the entry is dropped
//     once the event arrives, tens of milliseconds on Redis.
//   - whatever the log does, an entry lives ttl at most.
type validationCache struct {
	ttl time.Duration
	max int

	mu sync.Mutex
	m  map[string]cacheEntry
}

// cacheEntry is a cached session, or with s nil, the version a write or
// an event said the session reached, which older reads may not replace.
type cacheEntry struct {
	s       *Session
	version uint64
	until   time.Time
}

func newValidationCache(ttl time.Duration, size int) *validationCache {
	if ttl <= 0 {
		return nil
	}
	return &validationCache{ttl: ttl, max: size, m: make(map[string]cacheEntry)}
}

// get returns the cached session with the id, or nil.
func (c *validationCache) get(id string, now time.Time) *Session {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok || e.s == nil || !now.Before(e.until) {
		return nil
	}
	return e.s
}

// put caches s (which the caller no longer changes) unless the entry is
// at a newer version already.
func (c *validationCache) put(s *Session, now time.Time) {
	c.set(s.ID, s, s.Version, now)
}

// seen records that the session with the id reached version elsewhere: a
// cached copy older than it goes.
func (c *validationCache) seen(id string, version uint64, now time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if ok && e.version < version {
		c.set(id, nil, version, now)
	}
}

func (c *validationCache) set(id string, s *Session, version uint64, now time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[id]; ok {
		if e.version > version {
			return // a newer version was written or seen: this copy is stale
		}
	} else if len(c.m) >= c.max {
		for k := range c.m { // full: make room, any entry (map order is random)
			delete(c.m, k)
			break
		}
	}
	c.m[id] = cacheEntry{s: s, version: version, until: now.Add(c.ttl)}
}
