// Command storechoice measures what decided the embedded store: durable
// single-key puts, each fsynced before it is acknowledged, from 64
// concurrent writers, on bbolt (Batch, with its default batch size and with
// one near the writer count) and on Pebble (Sync writes, which its commit
// pipeline groups). It is its own module so that the candidate that lost
// never becomes a dependency of sessiond.
//
//	cd bench/storechoice && go run . -n 200000 -writers 64
package main

import (
	"crypto/rand"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	bolt "go.etcd.io/bbolt"
)

func main() {
	n := flag.Int("n", 200_000, "puts per store")
	writers := flag.Int("writers", 64, "concurrent writers")
	flag.Parse()
	fmt.Printf("# storechoice: %d durable puts of 200-byte values, %d writers, %d CPUs, %s\n", *n, *writers, runtime.NumCPU(), runtime.Version())
	val := make([]byte, 200)
	rand.Read(val)

	for _, tc := range []struct {
		name string
		put  func(dir string) (func(k []byte) error, func())
	}{
		{"bbolt Batch, default MaxBatchSize (1000), MaxBatchDelay 10ms", func(dir string) (func([]byte) error, func()) {
			return boltPut(dir, val, 0)
		}},
		{fmt.Sprintf("bbolt Batch, MaxBatchSize %d", *writers), func(dir string) (func([]byte) error, func()) {
			return boltPut(dir, val, *writers)
		}},
		{"Pebble Set with Sync", func(dir string) (func([]byte) error, func()) {
			db, err := pebble.Open(dir, &pebble.Options{})
			check(err)
			return func(k []byte) error { return db.Set(k, val, pebble.Sync) }, func() { check(db.Close()) }
		}},
	} {
		dir, err := os.MkdirTemp("", "storechoice-")
		check(err)
		put, done := tc.put(dir)
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range *writers {
			wg.Go(func() {
				var k [8]byte
				for i := next.Add(1); i <= int64(*n); i = next.Add(1) {
					binary.BigEndian.PutUint64(k[:], uint64(i))
					check(put(k[:]))
				}
			})
		}
		wg.Wait()
		took := time.Since(start)
		done()
		os.RemoveAll(dir)
		fmt.Printf("%-60s %8.0f puts/s  (%v)\n", tc.name, float64(*n)/took.Seconds(), took.Round(time.Millisecond))
	}
}

func boltPut(dir string, val []byte, maxBatch int) (func([]byte) error, func()) {
	db, err := bolt.Open(dir+"/bolt.db", 0o600, nil)
	check(err)
	if maxBatch > 0 {
		db.MaxBatchSize = maxBatch
	}
	bucket := []byte("s")
	check(db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucketIfNotExists(bucket); return err }))
	return func(k []byte) error {
		return db.Batch(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put(k, val) })
	}, func() { check(db.Close()) }
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
