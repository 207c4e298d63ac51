package hist

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBuckets(t *testing.T) {
	for _, v := range []int64{0, 1, 127, 128, 129, 191, 192, 1000, 1 << 20, 123456789, math.MaxInt64} {
		i := index(v)
		lo, hi := bounds(i)
		if v < lo || v > hi {
			t.Errorf("v=%d: bucket %d is [%d, %d]", v, i, lo, hi)
		}
		if i < 0 || i >= buckets {
			t.Errorf("v=%d: bucket %d out of range", v, i)
		}
	}
	// Buckets tile the line: each starts where the previous ended.
	for i := 1; i < buckets; i++ {
		_, prevHi := bounds(i - 1)
		lo, _ := bounds(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ends at %d", i, lo, prevHi)
		}
	}
}

func TestQuantiles(t *testing.T) {
	var h Histogram
	vals := make([]int64, 100_000)
	for i := range vals {
		vals[i] = int64(rand.ExpFloat64() * 1e6) // mean 1ms
		h.Record(time.Duration(vals[i]))
	}
	slices.Sort(vals)
	for _, q := range []float64{.5, .9, .99, .999} {
		exact := vals[int(math.Ceil(q*float64(len(vals))))-1]
		got := int64(h.Quantile(q))
		if got < exact || float64(got-exact) > float64(exact)/64+1 {
			t.Errorf("q%v: got %d, exact %d", q, got, exact)
		}
	}
	if h.Max() != time.Duration(vals[len(vals)-1]) || h.Min() != time.Duration(vals[0]) {
		t.Errorf("min/max %v/%v, want %v/%v", h.Min(), h.Max(), vals[0], vals[len(vals)-1])
	}
	var m Histogram
	m.Merge(&h)
	if m.Count() != h.Count() || m.Quantile(.99) != h.Quantile(.99) || m.Min() != h.Min() {
		t.Errorf("merge differs")
	}
}
