package sessiond_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/inmem"
	"github.com/sessiond/sessiond/pebble"
)

// benchPolicy validates without writing: no rotation, activity written at
// most once a minute.
func benchPolicy() sessiond.Policy {
	return sessiond.Policy{Name: "bench", TTL: 24 * time.Hour, IdleTimeout: time.Hour, TouchInterval: time.Minute}
}

func benchManager(b *testing.B, st sessiond.Store) *sessiond.Manager {
	b.Helper()
	m, err := sessiond.New(sessiond.Config{Store: st, Policies: []sessiond.Policy{benchPolicy()}})
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close(); st.Close() })
	return m
}

func benchValidate(b *testing.B, st sessiond.Store) {
	m := benchManager(b, st)
	const n = 10000
	tokens := make([]string, n)
	for i := range tokens {
		c, err := m.Create(context.Background(), sessiond.CreateRequest{Subject: fmt.Sprint("user-", i)})
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = c.Token
	}
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		i := next.Add(7919)
		for pb.Next() {
			i++
			if _, err := m.Validate(ctx, tokens[i%n], sessiond.Device{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "validations/s")
}

// BenchmarkValidate: go test -run=^$ -bench=Validate -benchtime=3s .
func BenchmarkValidate(b *testing.B) {
	b.Run("Memory", func(b *testing.B) { benchValidate(b, inmem.New(inmem.Options{})) })
	b.Run("Embedded", func(b *testing.B) {
		st, err := pebble.Open(pebble.Options{Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		benchValidate(b, st)
	})
}

// BenchmarkCreate: go test -run=^$ -bench=Create -benchtime=3s .
// Sessions of 10,000 users, as in ./pebble (where durable creates with 64
// callers are measured). The store grows by every create: the rate includes
// the growth of its maps and the garbage collector's marking of them.
func BenchmarkCreate(b *testing.B) {
	m := benchManager(b, inmem.New(inmem.Options{}))
	users := make([]string, 10_000)
	for i := range users {
		users[i] = fmt.Sprint("user-", i)
	}
	var n atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			req := sessiond.CreateRequest{Subject: users[n.Add(1)%uint64(len(users))]}
			if _, err := m.Create(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
}

// BenchmarkAttachToOneSession attaches 1,000 connections one after another
// to one session, b.N times (a new session each), and reports the p99 of
// the first 100 attaches and of the last 100, and their ratio: attaching
// costs the same whatever the number of connections the session holds.
//
//	go test -run=^$ -bench=AttachToOneSession -benchtime=20x .
func BenchmarkAttachToOneSession(b *testing.B) {
	run := func(b *testing.B, st sessiond.Store) {
		many := sessiond.Policy{Name: "many", TTL: 24 * time.Hour, IdleTimeout: time.Hour, MaxConnections: -1}
		m, err := sessiond.New(sessiond.Config{Store: st, Policies: []sessiond.Policy{many}})
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { m.Close(); st.Close() })
		const n = 1000
		var first, last []time.Duration
		ctx := context.Background()
		b.ResetTimer()
		for range b.N {
			c, err := m.Create(ctx, sessiond.CreateRequest{Subject: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			for i := range n {
				start := time.Now()
				if _, err := m.ConnectTo(ctx, c.Session.ID, sessiond.ConnectRequest{Kind: "http"}); err != nil {
					b.Fatal(err)
				}
				d := time.Since(start)
				switch {
				case i < 100:
					first = append(first, d)
				case i >= n-100:
					last = append(last, d)
				}
			}
			if err := m.Revoke(ctx, c.Session.ID, ""); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		p99 := func(ds []time.Duration) time.Duration {
			slices.Sort(ds)
			return ds[len(ds)*99/100]
		}
		f, l := p99(first), p99(last)
		b.ReportMetric(float64(f.Microseconds()), "first100-p99-µs")
		b.ReportMetric(float64(l.Microseconds()), "last100-p99-µs")
		b.ReportMetric(float64(l)/float64(f), "last/first")
	}
	b.Run("Memory", func(b *testing.B) { run(b, inmem.New(inmem.Options{})) })
	b.Run("Embedded", func(b *testing.B) {
		st, err := pebble.Open(pebble.Options{Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		run(b, st)
	})
}
