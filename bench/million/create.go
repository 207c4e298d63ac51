package main

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessiond/sessiond"
)

// subject names the subject of session i: "user-0000042" (12 bytes, like a
// short user id). Each session gets its own copy of the string, as it would
// decoding its own create request.
func subject(i, perSubject int) string {
	b := make([]byte, 0, 16)
	b = append(b, "user-"...)
	s := strconv.Itoa(i / perSubject)
	for range 7 - len(s) {
		b = append(b, '0')
	}
	return string(append(b, s...))
}

// creator creates sessions 0..n-1 on a Manager from several goroutines.
type creator struct {
	m          *sessiond.Manager
	n          int
	goroutines int
	req        func(i int) sessiond.CreateRequest
	// pace, if set, is when session i may be created at the earliest;
	// sessions are claimed in batches of `batch` and each batch waits for
	// the time of its first session.
	pace  func(i int) time.Time
	batch int
	// created, if set, sees each result.
	created func(i int, c *sessiond.Created)
}

func (c *creator) run(ctx context.Context) (time.Duration, error) {
	batch := max(c.batch, 1)
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range c.goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				lo := int(next.Add(int64(batch))) - batch
				if lo >= c.n {
					return
				}
				hi := min(lo+batch, c.n)
				if c.pace != nil {
					if d := time.Until(c.pace(lo)); d > 0 {
						time.Sleep(d)
					}
				}
				for i := lo; i < hi; i++ {
					res, err := c.m.Create(ctx, c.req(i))
					if err != nil {
						once.Do(func() { first = err })
						next.Store(int64(c.n))
						return
					}
					if c.created != nil {
						c.created(i, res)
					}
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start), first
}
