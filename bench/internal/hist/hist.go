// Package hist is a latency histogram for the benchmark programs: HDR-style
// log-linear buckets over int64 nanoseconds, 64 sub-buckets per power of
// two (so a reported quantile is within 1/64 = 1.6% of the true value, and
// exact below 128ns), in a fixed 3,776-bucket array: memory stays bounded
// (30 KiB) however many values are recorded. Recording is lock-free and safe
// from many goroutines; the exact minimum, maximum and mean are kept too.
package hist

import (
	"fmt"
	"math/bits"
	"sync/atomic"
	"time"
)

const (
	subBits = 6                      // 64 sub-buckets per power of two
	sub     = 1 << subBits           // 64
	linear  = 2 * sub                // values below this have a bucket each
	buckets = (64-subBits)*sub + sub // indexes 0 .. 3775
)

// Histogram records durations. The zero value is ready to use.
type Histogram struct {
	counts [buckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Int64
	max    atomic.Int64
	min    atomic.Int64 // stored as value+1 so that zero means unset
}

func index(v int64) int {
	if v < linear {
		return int(v)
	}
	e := bits.Len64(uint64(v)) - 1 // v's highest set bit; >= subBits+1
	shift := e - subBits
	return (shift+1)*sub + int(uint64(v)>>shift) - sub
}

// bounds returns the smallest and largest value that fall in bucket i.
func bounds(i int) (lo, hi int64) {
	if i < linear {
		return int64(i), int64(i)
	}
	shift := i/sub - 1
	m := int64(i%sub + sub)
	return m << shift, (m+1)<<shift - 1
}

// Record adds one duration; negative ones count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[index(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
	for {
		m := h.min.Load()
		if (m != 0 && v+1 >= m) || h.min.CompareAndSwap(m, v+1) {
			break
		}
	}
}

// Merge adds o's values to h. o must not be recorded into meanwhile.
func (h *Histogram) Merge(o *Histogram) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c > 0 {
			h.counts[i].Add(c)
		}
	}
	h.n.Add(o.n.Load())
	h.sum.Add(o.sum.Load())
	if m := o.max.Load(); m > h.max.Load() {
		h.max.Store(m)
	}
	if m := o.min.Load(); m != 0 && (h.min.Load() == 0 || m < h.min.Load()) {
		h.min.Store(m)
	}
}

// Count returns how many values were recorded.
func (h *Histogram) Count() uint64 { return h.n.Load() }

// Max returns the largest value recorded, exactly.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Min returns the smallest value recorded, exactly.
func (h *Histogram) Min() time.Duration {
	if m := h.min.Load(); m > 0 {
		return time.Duration(m - 1)
	}
	return 0
}

// Mean returns the average value.
func (h *Histogram) Mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / int64(n))
}

// Quantile returns the value below or at which a fraction q (0..1) of the
// recorded values lie: the upper end of the bucket holding the value of rank
// ceil(q*n), capped at the exact maximum. Like HDR histograms, it errs high,
// by at most one bucket width (1.6%).
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.999999)
	rank = max(1, min(rank, n))
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			_, hi := bounds(i)
			return time.Duration(min(hi, h.max.Load()))
		}
	}
	return h.Max()
}

// Summary is the usual one-line report.
func (h *Histogram) Summary() string {
	return fmt.Sprintf("n=%d min=%v p50=%v p90=%v p99=%v p99.9=%v max=%v mean=%v",
		h.Count(), Round(h.Min()), Round(h.Quantile(.50)), Round(h.Quantile(.90)),
		Round(h.Quantile(.99)), Round(h.Quantile(.999)), Round(h.Max()), Round(h.Mean()))
}

// Round shortens a duration for printing to about three significant digits.
func Round(d time.Duration) time.Duration {
	switch {
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	case d >= 100*time.Microsecond:
		return d.Round(time.Microsecond)
	case d >= 10*time.Microsecond:
		return d.Round(100 * time.Nanosecond)
	case d >= time.Microsecond:
		return d.Round(10 * time.Nanosecond)
	}
	return d
}
