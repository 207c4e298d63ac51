package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unsafe"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/inmem"
	"github.com/sessiond/sessiond/internal/deadline"
	"github.com/sessiond/sessiond/internal/memindex"
)

// targetBytes is the project's target for the engine plus its scheduler,
// per live session, beyond the metadata itself.
const targetBytes = 400

// heap is a reading of the heap after a forced collection.
type heap struct{ alloc, inuse uint64 }

func measure() heap {
	runtime.GC()
	runtime.GC() // the second empties sync.Pool victim caches
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return heap{ms.HeapAlloc, ms.HeapInuse}
}

// delta is what a step added to the heap.
type delta struct{ alloc, inuse int64 }

func (h heap) sub(o heap) delta {
	return delta{int64(h.alloc) - int64(o.alloc), int64(h.inuse) - int64(o.inuse)}
}

func (d delta) minus(bytes int64) delta { return delta{d.alloc - bytes, d.inuse - bytes} }

type table struct {
	n    int
	rows []row
}

type row struct {
	name  string
	d     delta
	fixed bool   // a fixed cost: no per-session figure
	note  string // printed after the figures
}

func (t *table) add(name string, d delta, note string) {
	t.rows = append(t.rows, row{name, d, false, note})
}
func (t *table) fixed(name string, d delta, note string) {
	t.rows = append(t.rows, row{name, d, true, note})
}

func mib(b int64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }

func (t *table) print() {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "component\tHeapAlloc MiB\tB/session\tHeapInuse B/session\tnote")
	for _, r := range t.rows {
		per, perInuse := fmt.Sprintf("%.1f", float64(r.d.alloc)/float64(t.n)), fmt.Sprintf("%.1f", float64(r.d.inuse)/float64(t.n))
		if r.fixed {
			per, perInuse = "(fixed) "+per, "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.name, mib(r.d.alloc), per, perInuse, r.note)
	}
	tw.Flush()
}

func memoryPhase(o options) (bool, error) {
	n := o.n
	fmt.Printf("\n== memory: %d live sessions, default policy (ttl 24h, idle 30m), %d session(s) per subject\n", n, o.perSubject)
	fmt.Println("   figures are HeapAlloc deltas after runtime.GC() (live bytes, size-class rounded); HeapInuse deltas for reference")
	t := &table{n: n}
	now := time.Now()

	// The scheduler alone. Its keys are session ids, which the engine shares
	// with the stored sessions (same string data): they are made first and
	// counted apart.
	base := measure()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = sessiond.NewID(now, subject(i, o.perSubject))
	}
	withIDs := measure()
	sched := deadline.New(deadline.SystemClock, 1, func(string, time.Time) {})
	at := now.Add(24 * time.Hour)
	start := time.Now()
	for i, id := range ids {
		sched.Set(id, at.Add(time.Duration(i)*time.Microsecond))
	}
	setTook := time.Since(start)
	withSched := measure()
	if sched.Len() != n {
		return false, fmt.Errorf("scheduler holds %d keys, want %d", sched.Len(), n)
	}
	schedD := withSched.sub(withIDs)
	t.add("scheduler: deadline.Scheduler, n keys", schedD,
		fmt.Sprintf("item 32 B + map[string]*item slot + heap []*item; %d Sets in %v", n, setTook.Round(time.Millisecond)))
	t.add("  (its keys: n ids, 26 B each)", withIDs.sub(base).minus(int64(n)*16),
		"owned by the sessions, counted in their records below; excl. the []string")
	sched.Close()
	runtime.KeepAlive(ids)

	// Session records, then a memindex.Index holding them.
	base = measure()
	recs := make([]*sessiond.Session, n)
	for i := range recs {
		_, h := sessiond.NewToken("x")
		recs[i] = &sessiond.Session{
			ID: sessiond.NewID(now, subject(i, o.perSubject)), Subject: subject(i, o.perSubject), Policy: "default",
			State: sessiond.StateActive, CreatedAt: now, LastActive: now, ExpiresAt: now.Add(24 * time.Hour),
			IdleTimeout: 30 * time.Minute, Version: 1, TokenHash: h,
		}
	}
	withRecs := measure()
	recsD := withRecs.sub(base).minus(int64(n) * 8) // less the []*Session
	t.add("session records: Session + id + subject", recsD,
		fmt.Sprintf("Session struct %d B (allocated: %d) + id string 32 + subject 16", unsafe.Sizeof(sessiond.Session{}), allocSize()))
	idx := memindex.New()
	for lo := 0; lo < n; lo += 1024 {
		idx.Load(recs[lo:min(lo+1024, n)], nil)
	}
	withIdx := measure()
	t.add("memindex structures", withIdx.sub(withRecs),
		"byID, byToken, subjects (+ subject struct, live slice), id btree")
	runtime.KeepAlive(recs)
	recs = nil // from here the index alone holds the records
	idxTotal := measure().sub(base)
	t.add("memindex total (records + structures)", idxTotal, "")
	if idx.Len() != n {
		return false, fmt.Errorf("index holds %d sessions, want %d", idx.Len(), n)
	}
	runtime.KeepAlive(idx)

	// The engine: Manager + inmem store, through Create.
	eng, err := engineRun(o, 0, t)
	if err != nil {
		return false, err
	}
	t.add("ENGINE TOTAL (Manager + inmem + scheduler)", eng, "via Manager.Create, no metadata")
	var engMeta delta
	if o.metadata > 0 {
		if engMeta, err = engineRun(o, o.metadata, nil); err != nil {
			return false, err
		}
		t.add(fmt.Sprintf("ENGINE TOTAL, %d B metadata", metaLen(o.metadata)), engMeta, "")
		t.add("  of which metadata (difference)", engMeta.minus(eng.alloc), "")
	}
	t.print()

	// Where a record's bytes go.
	printLayout()

	per := float64(eng.alloc) / float64(n)
	met := per <= targetBytes
	fmt.Printf("\ntarget: engine + scheduler <= %d B/session beyond metadata: %.0f B/session (HeapInuse %.0f): %s\n",
		targetBytes, per, float64(eng.inuse)/float64(n), verdict(met))
	if o.metadata > 0 {
		beyond := float64(engMeta.alloc)/float64(n) - float64(metaLen(o.metadata))
		fmt.Printf("        with %d B metadata: %.0f B/session beyond the metadata itself: %s\n",
			metaLen(o.metadata), beyond, verdict(beyond <= targetBytes))
		met = met && beyond <= targetBytes
	}
	return met, nil
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT MET"
}

// metaLen is the length of the metadata object made for -metadata n: the
// smallest object, {"d":""}, is 8 bytes.
func metaLen(n int) int { return max(n, 8) }

func makeMetadata(n int) json.RawMessage {
	n = metaLen(n)
	return json.RawMessage(`{"d":"` + strings.Repeat("x", n-8) + `"}`)
}

// engineRun creates o.n sessions through a Manager on a fresh inmem store
// and returns the heap they hold. With t set, it also adds the store's event
// ring and the Manager's own fixed cost to t, and writes the heap profile.
func engineRun(o options, metadata int, t *table) (delta, error) {
	ctx := context.Background()
	base := measure()
	st := inmem.New(inmem.Options{})
	withStore := measure()
	m, err := sessiond.New(sessiond.Config{Store: st, Logger: quietLogger(), Workers: o.schedWorkers})
	if err != nil {
		return delta{}, err
	}
	if err := m.Start(ctx); err != nil {
		return delta{}, err
	}
	withManager := measure()
	var meta json.RawMessage
	if metadata > 0 {
		meta = makeMetadata(metadata)
	}
	c := &creator{
		m: m, n: o.n, goroutines: o.goroutines, batch: 64,
		req: func(i int) sessiond.CreateRequest {
			return sessiond.CreateRequest{Subject: subject(i, o.perSubject), Metadata: meta}
		},
	}
	took, err := c.run(ctx)
	if err != nil {
		return delta{}, err
	}
	withSessions := measure()
	st1, err := m.Stats(ctx)
	if err != nil {
		return delta{}, err
	}
	if st1.Total != o.n || st1.Scheduled != o.n || st1.Sessions[sessiond.StateActive] != o.n {
		return delta{}, fmt.Errorf("after %d creates: %d sessions, %d active, %d scheduled", o.n, st1.Total, st1.Sessions[sessiond.StateActive], st1.Scheduled)
	}
	label := "no metadata"
	if metadata > 0 {
		label = fmt.Sprintf("%d B metadata", metaLen(metadata))
	}
	fmt.Printf("engine (%s): %d creates from %d goroutines in %v (%.0f/s)\n", label, o.n, o.goroutines,
		took.Round(time.Millisecond), float64(o.n)/took.Seconds())
	if t != nil {
		ring := int64(inmem.DefaultEventRetention) * int64(unsafe.Sizeof(sessiond.Event{}))
		t.fixed("inmem event ring (preallocated)", withStore.sub(base),
			fmt.Sprintf("%d events x %d B = %s MiB, whatever n is", inmem.DefaultEventRetention, unsafe.Sizeof(sessiond.Event{}), mib(ring)))
		t.fixed("Manager, started, no sessions", withManager.sub(withStore), "")
		if o.memprofile != "" {
			if err := writeHeapProfile(o.memprofile); err != nil {
				return delta{}, err
			}
			fmt.Printf("heap profile with %d sessions live written to %s\n", o.n, o.memprofile)
		}
	}
	m.Close()
	st.Close()
	debug.FreeOSMemory()
	return withSessions.sub(withManager), nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	runtime.GC()
	return pprof.Lookup("heap").WriteTo(f, 0)
}

// allocSize measures the bytes the heap gives one Session: its size rounded
// up to the allocator's size class.
func allocSize() int64 {
	const k = 20000
	keep := make([]*sessiond.Session, k)
	before := measure() // with the slice already made
	for i := range keep {
		keep[i] = &sessiond.Session{}
	}
	after := measure()
	runtime.KeepAlive(keep)
	return (int64(after.alloc) - int64(before.alloc) + k/2) / k
}

// printLayout lists the Session struct's fields by size, so that the
// record's cost can be traced to them.
func printLayout() {
	t := reflect.TypeFor[sessiond.Session]()
	fmt.Printf("\nSession struct: %d B, allocated in %d B; fields by size:\n ", t.Size(), allocSize())
	var sum uintptr
	type field struct {
		name string
		size uintptr
	}
	var fields []field
	for i := range t.NumField() {
		f := t.Field(i)
		fields = append(fields, field{f.Name, f.Type.Size()})
		sum += f.Type.Size()
	}
	slices.SortStableFunc(fields, func(a, b field) int { return int(b.size) - int(a.size) })
	for _, f := range fields {
		fmt.Printf(" %s %d", f.name, f.size)
	}
	fmt.Printf(" (padding %d)\n", t.Size()-sum)
}
