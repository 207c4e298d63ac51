package redis

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

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
		// The same keys, through a new Store: what was acknowledged is in
		// Redis, not in the Store value.
		Reopen: func(tb testing.TB, old sessiond.Store) sessiond.Store {
			prefix := old.(*Store).k.prefix
			if err := old.Close(); err != nil {
				tb.Fatal(err)
			}
			s, err := NewStore(c, StoreOptions{KeyPrefix: prefix})
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
	t.Run("Deadline", func(t *testing.T) { testDeadline(t, c) })
}

// testDeadline: a call to a server that does not answer returns when its
// context ends, with the context's error, and the server's next answers
// are served again.
func testDeadline(t *testing.T, c *Client) {
	st, err := NewStore(c, StoreOptions{KeyPrefix: fmt.Sprintf("test%d:", prefixes.Add(1))})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	v, _ := sessiondtest.NewSession("alice", sessiondtest.Epoch)
	if _, err := st.Create(t.Context(), sessiond.Change{Session: v}, sessiond.Limit{}); err != nil {
		t.Fatal(err)
	}
	if err := c.rc.Do(t.Context(), c.rc.B().ClientPause().Timeout(1000).All().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = st.Get(ctx, v.ID)
	if took := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || took > 600*time.Millisecond {
		t.Fatalf("Get from a paused server: %v after %v; want the context's deadline after about 100ms", err, took)
	}
	eventually(t, "the server answers again", func() error {
		_, err := st.Get(t.Context(), v.ID)
		return err
	})
}

func TestStoreCluster(t *testing.T) {
	c := open(t, redistest.Cluster(t))
	sessiondtest.TestStore(t, storeHarness(c))
	t.Run("Partitions", func(t *testing.T) { testPartitions(t, c) })
}

func TestStoreSentinel(t *testing.T) {
	sessiondtest.TestStore(t, storeHarness(open(t, redistest.Sentinel(t))))
}

// What the scripts store under a session's record key parses back, and
// what they never store is an error, not a panic.
func TestSplitRecord(t *testing.T) {
	rec, n, err := splitRecord([]byte("RECORD" + "12" + "\x02"))
	if err != nil || string(rec) != "RECORD" || n != 12 {
		t.Fatalf("splitRecord = %q, %d, %v; want RECORD, 12", rec, n, err)
	}
	for _, bad := range []string{"", "x", "R1\x00", "R1\x05", "Rab\x02", "R-1\x02", "\x01"} {
		if _, _, err := splitRecord([]byte(bad)); err == nil {
			t.Errorf("splitRecord(%q) = nil error", bad)
		}
	}
}

func FuzzSplitRecord(f *testing.F) {
	f.Add([]byte("RECORD0\x01"))
	f.Add([]byte("R123\x03"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, n, err := splitRecord(b)
		if err == nil && (n < 0 || len(rec) >= len(b)) {
			t.Fatalf("splitRecord(%q) = %q, %d", b, rec, n)
		}
	})
}
