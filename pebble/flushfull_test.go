package pebble

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/tmpfstest"
	"github.com/sessiond/sessiond/sessiondtest"
)

// With the threshold off and a small memtable, the disk fills up under a
// flush rather than the log: Pebble retries the flush without pause and
// stalls writes. The store refuses new writes with store_full (counted as
// disk_full) instead of stalling them all, and once there is room again
// the stalled writes complete and new ones are accepted, without a restart.
func TestFlushMeetsFullDisk(t *testing.T) {
	mnt := tmpfstest.Mount(t, 4<<20)
	st, err := Open(Options{Dir: mnt + "/store", MinFreeBytes: -1, memTableSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	var (
		mu      sync.Mutex
		acked   []*sessiond.Session
		refused int
		wg      sync.WaitGroup
		stop    atomic.Bool // set once a write was refused: writers then end
	)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				s, _ := sessiondtest.NewSession(fmt.Sprint("w", w), sessiondtest.Epoch)
				s.Metadata = make([]byte, 200)
				_, err := st.Create(ctx, sessiond.Change{Session: s}, sessiond.Limit{})
				mu.Lock()
				if err == nil {
					acked = append(acked, s)
				} else if errors.Is(err, sessiond.ErrStoreFull) {
					refused++
				} else {
					t.Errorf("create: %v, want store_full", err)
				}
				mu.Unlock()
				if err != nil || stop.Load() {
					return
				}
			}
		}()
	}
	// Wait until the store refuses for a full disk; writers stalled in
	// Pebble (at most one group) wait on.
	for deadline := time.Now().Add(60 * time.Second); st.Disk().WritesRefused["disk_full"] == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no write refused for a full disk after 60s: %+v", st.Disk())
		}
	}
	// Writers still stalled in Pebble end with their write once it is
	// done; the others have ended on their refusal.
	stop.Store(true)
	d := st.Disk()
	if d.Failed {
		t.Fatalf("the log write failed (%+v); this test wants a flush to meet the full disk first", d)
	}
	// Writers stalled in Pebble may still append to acked: what is read
	// of it here is taken under mu.
	mu.Lock()
	t.Logf("flush met the full disk: %d acknowledged, %d refused so far, %s free", len(acked), refused, FormatBytes(d.FreeBytes))
	first := slices.Clone(acked[:min(1, len(acked))])
	mu.Unlock()
	for _, s := range first {
		if _, err := st.Get(ctx, s.ID); err != nil {
			t.Errorf("read on the full disk: %v", err)
		}
	}

	// Room again.
	tmpfstest.Resize(t, mnt, 512<<20)
	// The stalled writes complete (the store asks Pebble to flush once
	// there is room), within a bound rather than the package's timeout.
	stalled := make(chan struct{})
	go func() { wg.Wait(); close(stalled) }()
	select {
	case <-stalled:
	case <-time.After(60 * time.Second):
		buf := make([]byte, 1<<20)
		t.Fatalf("writes stalled in Pebble did not complete within 60s of space coming back (%+v)\n%s", st.Disk(), buf[:runtime.Stack(buf, true)])
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		s, _ := sessiondtest.NewSession("after", sessiondtest.Epoch)
		_, err := st.Create(ctx, sessiond.Change{Session: s}, sessiond.Limit{})
		if err == nil {
			acked = append(acked, s)
			break
		}
		if !errors.Is(err, sessiond.ErrStoreFull) || time.Now().After(deadline) {
			t.Fatalf("create after the disk grew: %v", err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st2, err := Open(Options{Dir: mnt + "/store", MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	for _, s := range acked {
		if _, err := st2.Get(ctx, s.ID); err != nil {
			t.Fatalf("acknowledged session %s after reopening: %v", s.ID, err)
		}
	}
	t.Logf("after the disk grew: writes accepted, all %d acknowledged sessions there after reopening", len(acked))
}
