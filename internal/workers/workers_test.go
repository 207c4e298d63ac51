package workers

import (
	"errors"
	"sync/atomic"
	"testing"
)

func TestEachCallsEveryIndexOnce(t *testing.T) {
	const n = 1000
	var seen [n]atomic.Int32
	var running, most atomic.Int32
	err := Each(n, 8, func(i int) error {
		r := running.Add(1)
		for m := most.Load(); r > m && !most.CompareAndSwap(m, r); m = most.Load() {
		}
		seen[i].Add(1)
		running.Add(-1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range seen {
		if c := seen[i].Load(); c != 1 {
			t.Fatalf("index %d called %d times", i, c)
		}
	}
	if m := most.Load(); m > 8 {
		t.Fatalf("%d calls at once, want at most 8", m)
	}
}

func TestEachStopsAtTheFirstError(t *testing.T) {
	boom := errors.New("boom")
	var calls atomic.Int32
	err := Each(1000, 1, func(i int) error {
		calls.Add(1)
		if i == 10 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || calls.Load() != 11 {
		t.Fatalf("err %v after %d calls; want boom after 11", err, calls.Load())
	}
}
