package memindex

import (
	"slices"
	"testing"

	"github.com/sessiond/sessiond"
)

func numbered(from, to uint64) []sessiond.Event {
	var out []sessiond.Event
	for s := from; s <= to; s++ {
		out = append(out, sessiond.Event{Seq: s, Type: sessiond.EventCreated})
	}
	return out
}

func seqs(evs []sessiond.Event) []uint64 {
	out := []uint64{}
	for _, e := range evs {
		out = append(out, e.Seq)
	}
	return out
}

func TestEventRing(t *testing.T) {
	r := NewEventRing(4)
	if evs, complete := r.After(0, 10); evs != nil || complete || r.Last() != 0 {
		t.Fatalf("empty ring: After(0) = %v, %v; Last %d", evs, complete, r.Last())
	}
	r.Append(numbered(1, 3))
	r.Append(numbered(4, 6)) // wraps: holds 3..6
	if r.Last() != 6 {
		t.Fatalf("Last = %d, want 6", r.Last())
	}
	for _, c := range []struct {
		after    uint64
		limit    int
		want     []uint64
		complete bool
	}{
		{0, 10, []uint64{3, 4, 5, 6}, false}, // 1 and 2 fell out
		{1, 10, []uint64{3, 4, 5, 6}, false},
		{2, 10, []uint64{3, 4, 5, 6}, true},
		{4, 10, []uint64{5, 6}, true},
		{2, 2, []uint64{3, 4}, true},
		{6, 10, []uint64{}, true},
		{9, 10, []uint64{}, true},
		{3, 0, []uint64{}, true},
	} {
		evs, complete := r.After(c.after, c.limit)
		if got := seqs(evs); complete != c.complete || !slices.Equal(got, c.want) {
			t.Errorf("After(%d, %d) = %v, %v; want %v, %v", c.after, c.limit, got, complete, c.want, c.complete)
		}
	}
	// A gap starts the ring afresh: it never claims to hold what it missed.
	r.Append(numbered(10, 11))
	if evs, complete := r.After(6, 10); complete || len(evs) != 2 || evs[0].Seq != 10 {
		t.Fatalf("after a gap, After(6) = %v, %v; want 10, 11, incomplete", seqs(evs), complete)
	}
	if evs, complete := r.After(9, 10); !complete || len(evs) != 2 {
		t.Fatalf("after a gap, After(9) = %v, %v; want 10, 11, complete", seqs(evs), complete)
	}
	// The first events a ring gets need not start at 1 (a store reopened).
	r = NewEventRing(8)
	r.Append(numbered(41, 42))
	if evs, complete := r.After(40, 10); !complete || len(evs) != 2 {
		t.Fatalf("ring from 41: After(40) = %v, %v", seqs(evs), complete)
	}
	if _, complete := r.After(39, 10); complete {
		t.Fatal("ring from 41: After(39) claims to hold 40")
	}
}
