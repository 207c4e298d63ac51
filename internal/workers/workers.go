// Package workers runs indexed work on a fixed number of goroutines, for
// tests and benchmark programs that make many sessions or connections at
// once.
package workers

import (
	"sync"
	"sync/atomic"
)

// Each calls f(i) for i in [0, n) from at most workers goroutines at a
// time and returns the first error; after one, the indexes not yet
// started are skipped.
func Each(n, workers int, f func(i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n))
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}
