package redis

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/redistest"
	"github.com/sessiond/sessiond/sessiondtest"
)

// prefixes makes each store's key prefix, so that the stores of one
// deployment start empty and never see each other's keys.
var prefixes atomic.Int64

// storeHarness opens stores over the client, each under a key prefix of
// its own.
func storeHarness(c *Client) sessiondtest.Harness {
	return sessiondtest.Harness{
		Open: func(tb testing.TB) sessiond.Store {
			s, err := NewStore(c, StoreOptions{KeyPrefix: fmt.Sprintf("test%d:", prefixes.Add(1))})
			if err != nil {
				tb.Fatal(err)
			}
			return s
		},
	}
}

// Each topology's server (or servers) is started once for all of the
// suite's tests.

func TestStoreStandalone(t *testing.T) {
	c := open(t, redistest.Standalone(t))
	sessiondtest.TestStore(t, storeHarness(c))
	t.Run("Partitions", func(t *testing.T) { testPartitions(t, c) })
}

func TestStoreCluster(t *testing.T) {
	c := open(t, redistest.Cluster(t))
	sessiondtest.TestStore(t, storeHarness(c))
	t.Run("Partitions", func(t *testing.T) { testPartitions(t, c) })
}

func TestStoreSentinel(t *testing.T) {
	sessiondtest.TestStore(t, storeHarness(open(t, redistest.Sentinel(t))))
}
