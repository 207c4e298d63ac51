package pebble_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/tmpfstest"
	"github.com/sessiond/sessiond/pebble"
	"github.com/sessiond/sessiond/sessiondtest"
)

// fillStore creates sessions with 1 KiB of metadata from 16 goroutines
// until creates fail, and returns the sessions acknowledged and the first
// error of each writer.
func fillStore(t *testing.T, st *pebble.Store) (acked []*sessiond.Session, errs []error) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	meta := []byte(`{"pad":"` + strings.Repeat("x", 1000) + `"}`)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				s, _ := sessiondtest.NewSession(fmt.Sprintf("w%02d-%d", w, i%100), sessiondtest.Epoch)
				s.Metadata = meta
				_, err := st.Create(context.Background(), sessiond.Change{Session: s, Events: []sessiond.Event{{Type: sessiond.EventCreated, SessionID: s.ID, Subject: s.Subject}}}, sessiond.Limit{})
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				acked = append(acked, s)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return acked, errs
}

// checkStored fails the test unless every session is in st as acknowledged.
func checkStored(t *testing.T, st *pebble.Store, acked []*sessiond.Session) {
	t.Helper()
	missing := 0
	for _, s := range acked {
		got, err := st.Get(context.Background(), s.ID)
		if err != nil {
			if missing++; missing <= 5 {
				t.Errorf("acknowledged session %s: %v", s.ID, err)
			}
			continue
		}
		if got.Subject != s.Subject || string(got.Metadata) != string(s.Metadata) {
			t.Errorf("acknowledged session %s read back as %+v", s.ID, got)
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged sessions missing", missing, len(acked))
	}
}

// The threshold: writes are refused with store_full before the disk fills,
// store nothing, reads go on, writes resume once space is freed, and every
// acknowledged write survives a reopen.
func TestMinFreeSpace(t *testing.T) {
	mnt := tmpfstest.Mount(t, 256<<20)
	filler := filepath.Join(mnt, "filler")
	tmpfstest.Fill(t, filler, 160<<20)
	const minFree = 64 << 20
	dir := filepath.Join(mnt, "store")
	st, err := pebble.Open(pebble.Options{Dir: dir, MinFreeBytes: minFree})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	freeAtOpen := tmpfstest.Free(t, mnt)

	start := time.Now()
	acked, errs := fillStore(t, st)
	elapsed := time.Since(start)
	freeAtRefusal := tmpfstest.Free(t, mnt)
	for _, err := range errs {
		if !errors.Is(err, sessiond.ErrStoreFull) {
			t.Fatalf("a create failed with %v, want store_full", err)
		}
	}
	if len(acked) == 0 {
		t.Fatal("no create succeeded before the threshold")
	}
	if freeAtRefusal == 0 || freeAtRefusal >= minFree {
		t.Errorf("writes refused with %d bytes free, want between 0 and the threshold %d", freeAtRefusal, minFree)
	}
	d := st.Disk()
	if d.Failed || d.WritesRefused["low_space"] < 16 || d.WritesRefused["disk_full"] != 0 || d.FreeBytes >= minFree || d.MinFreeBytes != minFree {
		t.Errorf("Disk() = %+v; want 16 or more writes refused for low space, none failed, free below %d", d, minFree)
	}
	msg := errs[0].Error()
	t.Logf("wrote %d sessions (1 KiB of metadata each) in %v from %s free; writes refused at %s free (threshold %s): %q",
		len(acked), elapsed.Round(time.Millisecond), pebble.FormatBytes(freeAtOpen), pebble.FormatBytes(freeAtRefusal), pebble.FormatBytes(minFree), msg)

	// A refused write stores nothing.
	ctx := context.Background()
	last, _ := st.Head(ctx)
	s, _ := sessiondtest.NewSession("refused", sessiondtest.Epoch)
	if _, err := st.Create(ctx, sessiond.Change{Session: s, Events: []sessiond.Event{{Type: sessiond.EventCreated, SessionID: s.ID}}}, sessiond.Limit{}); !errors.Is(err, sessiond.ErrStoreFull) {
		t.Fatalf("create below the threshold: %v, want store_full", err)
	}
	upd := acked[0].Clone()
	upd.Version++
	upd.LastActive = upd.LastActive.Add(time.Minute)
	if err := st.Update(ctx, sessiond.Change{Session: upd}); !errors.Is(err, sessiond.ErrStoreFull) {
		t.Fatalf("update below the threshold: %v, want store_full", err)
	}
	if _, err := st.Get(ctx, s.ID); !errors.Is(err, sessiond.ErrNotFound) {
		t.Errorf("the refused create is readable: %v", err)
	}
	if head, _ := st.Head(ctx); head.String() != last.String() {
		t.Errorf("a refused write moved the event log from %v to %v", last, head)
	}
	// Reads go on.
	checkStored(t, st, acked)
	if got, err := st.Get(ctx, acked[0].ID); err != nil || got.Version != acked[0].Version {
		t.Errorf("after the refused update, Get = %+v, %v; want version %d", got, err, acked[0].Version)
	}
	if _, err := st.FindToken(ctx, s.TokenHash); !errors.Is(err, sessiond.ErrNotFound) {
		t.Errorf("FindToken of the refused create: %v", err)
	}

	// Space back: writes resume at once, without a restart.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	after, _ := sessiondtest.NewSession("after", sessiondtest.Epoch)
	if _, err := st.Create(ctx, sessiond.Change{Session: after}, sessiond.Limit{}); err != nil {
		t.Fatalf("create after space was freed: %v", err)
	}
	acked = append(acked, after)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st2, err := pebble.Open(pebble.Options{Dir: dir, MinFreeBytes: minFree})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	checkStored(t, st2, acked)
	if _, err := st2.Get(ctx, s.ID); !errors.Is(err, sessiond.ErrNotFound) {
		t.Errorf("the refused create is there after reopening: %v", err)
	}
	t.Logf("after freeing space and reopening: all %d acknowledged sessions there", len(acked))
}

// Open refuses a store whose filesystem has less than the threshold free,
// at once, saying how much is free and what is needed.
func TestOpenBelowThreshold(t *testing.T) {
	mnt := tmpfstest.Mount(t, 32<<20)
	tmpfstest.Fill(t, filepath.Join(mnt, "filler"), 3<<20)
	start := time.Now()
	_, err := pebble.Open(pebble.Options{Dir: filepath.Join(mnt, "store"), MinFreeBytes: 16 << 20})
	var se *pebble.SpaceError
	if !errors.As(err, &se) || !errors.Is(err, sessiond.ErrStoreFull) {
		t.Fatalf("Open below the threshold: %v, want a *SpaceError matching store_full", err)
	}
	if se.Need != 16<<20 || se.Free > 3<<20 || !strings.Contains(err.Error(), "MiB free on "+mnt+"/store, need 16.0 MiB") {
		t.Errorf("error %q (%+v)", err, se)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Open took %v to refuse", d)
	}
}

// With the threshold off, Pebble meets ENOSPC itself. The process must not
// crash: writes fail with store_full, reads go on, Close returns, and once
// the filesystem has room again every acknowledged write is there.
func TestENOSPCWithoutThreshold(t *testing.T) {
	mnt := tmpfstest.Mount(t, 64<<20)
	dir := filepath.Join(mnt, "store")
	st, err := pebble.Open(pebble.Options{Dir: dir, MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		acked []*sessiond.Session
		errs  []error
	}
	done := make(chan result, 1)
	go func() {
		a, e := fillStore(t, st)
		done <- result{a, e}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("writers still blocked 60s after the disk filled")
	}
	for _, err := range r.errs {
		if !errors.Is(err, sessiond.ErrStoreFull) {
			t.Errorf("a create failed with %v, want store_full", err)
		}
	}
	d := st.Disk()
	t.Logf("threshold off: %d sessions acknowledged before ENOSPC; then %v; Disk() = %+v", len(r.acked), r.errs[0], d)
	checkStored(t, st, r.acked)
	s, _ := sessiondtest.NewSession("late", sessiondtest.Epoch)
	if _, err := st.Create(context.Background(), sessiond.Change{Session: s}, sessiond.Limit{}); !errors.Is(err, sessiond.ErrStoreFull) {
		t.Errorf("create on the full disk: %v, want store_full", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- st.Close() }()
	select {
	case err := <-closed:
		t.Logf("Close: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Close hangs on a full disk")
	}

	// Room again: grow the filesystem, reopen (in this process only if
	// Pebble let go of its lock; it does when Close finished).
	tmpfstest.Resize(t, mnt, 512<<20)
	st2, err := pebble.Open(pebble.Options{Dir: dir})
	if err != nil {
		t.Fatalf("reopening with room again: %v", err)
	}
	defer st2.Close()
	checkStored(t, st2, r.acked)
	t.Logf("after growing the filesystem: all %d acknowledged sessions there", len(r.acked))
}
