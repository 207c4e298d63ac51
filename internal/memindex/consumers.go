package memindex

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sessiond/sessiond"
)

// Consumer is the record of a consumer of the event log (sessiond.Consumers):
// who holds it, until when, and its cursor.
type Consumer struct {
	Owner  string
	Until  time.Time
	Cursor sessiond.Cursor
}

// Consumers holds the consumers of the event log, by name, and decides
// their claims for the stores built on this package. Writers hold Lock
// from their Claim or Commit to their Put, so that a durable store can
// write in between.
type Consumers struct {
	mu sync.Mutex
	m  map[string]Consumer
}

// Lock serialises the writers; call the result to unlock.
func (c *Consumers) Lock() func() {
	c.mu.Lock()
	return c.mu.Unlock
}

// Claim decides sessiond.Consumers.ClaimConsumer, the arguments checked:
// the record to store and the cursor to answer, or an error matching
// sessiond.ErrConsumerClaimed. The caller holds Lock.
func (c *Consumers) Claim(name, owner string, start sessiond.Cursor, now time.Time, ttl time.Duration) (Consumer, error) {
	old, ok := c.m[name]
	if !ok {
		return Consumer{Owner: owner, Until: now.Add(ttl), Cursor: start}, nil
	}
	if old.Owner != owner && old.Until.After(now) {
		return Consumer{}, Claimed(old.Owner, old.Until)
	}
	return Consumer{Owner: owner, Until: now.Add(ttl), Cursor: old.Cursor}, nil
}

// Commit decides sessiond.Consumers.CommitConsumer, the arguments
// checked: the record to store, or an error matching
// sessiond.ErrConsumerClaimed. The caller holds Lock.
func (c *Consumers) Commit(name, owner string, cur sessiond.Cursor, now time.Time, ttl time.Duration) (Consumer, error) {
	old, ok := c.m[name]
	switch {
	case !ok:
		return Consumer{}, fmt.Errorf("%w: no consumer %q", sessiond.ErrConsumerClaimed, name)
	case old.Owner != owner:
		return Consumer{}, Claimed(old.Owner, old.Until)
	}
	return Consumer{Owner: owner, Until: now.Add(ttl), Cursor: cur}, nil
}

// Claimed is the error of a consumer that owner holds until then.
func Claimed(owner string, until time.Time) error {
	return fmt.Errorf("%w: held by %q until %s", sessiond.ErrConsumerClaimed, owner, until.UTC().Format(time.RFC3339Nano))
}

// Put installs a consumer's record (decided, and durable if the store is).
func (c *Consumers) Put(name string, rec Consumer) {
	if c.m == nil {
		c.m = make(map[string]Consumer)
	}
	rec.Owner = strings.Clone(rec.Owner)
	c.m[strings.Clone(name)] = rec
}
