package sessiondtest

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sessiond/sessiond"
)

// The process that recorded a connection comes back under another node
// name (a container restart changes the host name, the --node default):
// once the old node's lease expires, its connection counts as lost, once,
// and the session follows the grace logic to its end.
func testConnectionsOfAGoneNodeAreLost(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		a := connectEnv(t, h, sessiond.Config{LeaseTTL: leaseTTL, Node: "host-a"})
		c := a.connectDevice("alice", "glasses-1")
		a.stop() // the process dies; its lease is no longer renewed

		b := connectEnv(t, h, sessiond.Config{LeaseTTL: leaseTTL, Node: "host-b", Store: a.store.Store})
		if s := b.session(c.Session.ID); s.State != sessiond.StateActive || s.ConnCount != 1 {
			t.Fatalf("before host-a's lease expires: %v with %d connections", s.State, s.ConnCount)
		}
		time.Sleep(leaseTTL)
		synctest.Wait()
		s := b.session(c.Session.ID)
		if s.State != sessiond.StateDisconnected || s.ConnCount != 0 {
			t.Fatalf("after host-a's lease expired: %v with %d connections; want disconnected, none", s.State, s.ConnCount)
		}
		if leases, _ := b.store.Leases(t.Context()); len(leases) != 1 || leases[0].Node != "host-b" {
			t.Fatalf("leases after the expiry was worked off: %+v", leases)
		}
		time.Sleep(glasses().DisconnectGrace)
		synctest.Wait()
		if s := b.session(c.Session.ID); s.State != sessiond.StateEnded || s.EndReason != sessiond.EndGraceElapsed {
			t.Fatalf("after the grace: %v (%s)", s.State, s.EndReason)
		}
		if got := b.eventsOf(c.Session.ID); len(got) != 6 || got[2] != "connection_closed/node_lost" || got[3] != "disconnected" {
			t.Fatalf("events %v; want created, connected, the connection closed as node_lost, one disconnected, ending and ended", got)
		}
	})
}

// Several nodes see the same dead node's lease expire: each connection is
// lost exactly once.
func testAGoneNodeIsWorkedOffOnce(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		a := connectEnv(t, h, sessiond.Config{LeaseTTL: leaseTTL, Node: "host-a"})
		var ids []string
		for i := range 20 {
			ids = append(ids, a.connectDevice("user", string(rune('a'+i))).Session.ID)
		}
		a.stop()
		b := connectEnv(t, h, sessiond.Config{LeaseTTL: leaseTTL, Node: "host-b", Store: a.store.Store})
		connectEnv(t, h, sessiond.Config{LeaseTTL: leaseTTL, Node: "host-c", Store: a.store.Store})
		connectEnv(t, h, sessiond.Config{LeaseTTL: leaseTTL, Node: "host-d", Store: a.store.Store})
		time.Sleep(leaseTTL)
		synctest.Wait()
		for _, id := range ids {
			n := 0
			for _, ev := range b.eventsOf(id) {
				if ev == "disconnected" {
					n++
				}
			}
			if s := b.session(id); s.State != sessiond.StateDisconnected || n != 1 {
				t.Fatalf("session %s: %v with %d disconnected events; want disconnected once", id, s.State, n)
			}
		}
	})
}

// A node cut off from the store for longer than its lease is taken for
// dead: another node works its connections off. When it comes back, it
// finds its lease claimed, is told (OnFenced) to close what it holds, and
// takes a new lease.
func testAFencedNodeIsTold(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		shared := connectEnv(t, h, sessiond.Config{LeaseTTL: leaseTTL, Node: "host-b"})
		flaky := &FaultyStore{Store: shared.store.Store}
		a := connectEnv(t, h, sessiond.Config{LeaseTTL: leaseTTL, Node: "host-a", Store: flaky})
		var fenced atomic.Int32
		a.m.OnFenced(func() { fenced.Add(1) })
		c := a.connectDevice("alice", "glasses-1")
		old := a.m.Lease()

		flaky.LeasesDown.Store(true)
		time.Sleep(leaseTTL + time.Second)
		synctest.Wait()
		if s := shared.session(c.Session.ID); s.ConnCount != 0 || s.State != sessiond.StateDisconnected {
			t.Fatalf("host-a's connection after its lease lapsed: %v with %d", s.State, s.ConnCount)
		}
		if fenced.Load() != 0 {
			t.Fatal("fenced while the store was unreachable: it cannot know yet")
		}
		flaky.LeasesDown.Store(false)
		time.Sleep(leaseTTL / 3)
		synctest.Wait()
		if fenced.Load() != 1 {
			t.Fatalf("fenced %d times after the store came back, want 1", fenced.Load())
		}
		// Without a lease, host-a records no WebSocket: another node may
		// still be detaching what is recorded as host-a's.
		_, err := a.m.Connect(t.Context(), sessiond.ConnectRequest{Subject: "bob", Device: sessiond.Device{ID: "glasses-2"}})
		wantCode(t, err, sessiond.CodeUnavailable)
		time.Sleep(leaseTTL / 3)
		synctest.Wait()
		if l := a.m.Lease(); l.Version == 0 || !l.Until.After(old.Until) {
			t.Fatalf("host-a's lease after fencing: %+v; want a new one", l)
		}
	})
}

// A node that comes back while another node is working off the
// connections of its previous process waits for that to end before it
// takes its lease and records connections: the claimer detaches whatever
// is recorded as the node's, so a connection recorded meanwhile would be
// lost. If the claimer dies too, its claim lapses, and the node takes its
// lease over and detaches its old connections itself.
func testARestartedNodeWaitsForTheClaimOnIt(t *testing.T, h Harness) {
	for _, finished := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			a := connectEnv(t, h, sessiond.Config{LeaseTTL: leaseTTL, Node: "host-a"})
			c := a.connectDevice("alice", "glasses-1")
			a.stop()
			time.Sleep(leaseTTL)
			// Another node claims host-a's lease, as leaseDue does, and
			// takes two seconds to work it off (or dies, never finishing).
			st := a.store.Store
			leases, err := st.Leases(t.Context())
			if err != nil || len(leases) != 1 {
				t.Fatalf("leases %+v, %v", leases, err)
			}
			claim := sessiond.NodeLease{Node: "host-a", Until: time.Now().Add(leaseTTL), Dead: true, Version: leases[0].Version + 1}
			if err := st.PutLease(t.Context(), claim); err != nil {
				t.Fatal(err)
			}
			if finished {
				go func() {
					time.Sleep(2 * time.Second)
					_ = st.DeleteLease(context.Background(), "host-a", claim.Version)
				}()
			}
			began := time.Now()
			again := connectEnv(t, h, sessiond.Config{LeaseTTL: leaseTTL, Node: "host-a", Store: st})
			want := 2 * time.Second
			if !finished {
				want = leaseTTL
			}
			if waited := time.Since(began); waited < want {
				t.Fatalf("host-a started %v after the claim on its lease (claimer finished: %v); want it to wait %v", waited, finished, want)
			}
			if l := again.m.Lease(); l.Version == 0 || l.Dead {
				t.Fatalf("host-a's lease after the wait: %+v", l)
			}
			if !finished {
				if s := again.session(c.Session.ID); s.ConnCount != 0 {
					t.Fatal("host-a took over a lapsed claim and kept its previous process's connection")
				}
			}
		})
	}
}

// leaseTTL is the node lease of the lease tests: the default. The other
// tests use suiteLeaseTTL.
const leaseTTL = sessiond.DefaultLeaseTTL

// A store that no node could reach for longer than a lease says nothing of
// the nodes: when it is back, no node takes another for dead, none is
// fenced, and the connections they hold stay.
func testAnOutageForAllFencesNoOne(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		shared := openStore(t, h)
		fa, fb := &FaultyStore{Store: shared}, &FaultyStore{Store: shared}
		a := connectEnv(t, h, sessiond.Config{LeaseTTL: leaseTTL, Node: "host-a", Store: fa})
		b := connectEnv(t, h, sessiond.Config{LeaseTTL: leaseTTL, Node: "host-b", Store: fb})
		var fenced atomic.Int32
		a.m.OnFenced(func() { fenced.Add(1) })
		b.m.OnFenced(func() { fenced.Add(1) })
		ca, cb := a.connectDevice("alice", "glasses-1"), b.connectDevice("bob", "glasses-2")

		fa.LeasesDown.Store(true)
		fb.LeasesDown.Store(true)
		time.Sleep(2 * leaseTTL)
		synctest.Wait()
		fa.LeasesDown.Store(false)
		fb.LeasesDown.Store(false)
		time.Sleep(3 * leaseTTL)
		synctest.Wait()
		if n := fenced.Load(); n != 0 {
			t.Fatalf("%d nodes fenced after an outage that every node saw", n)
		}
		for _, c := range []*sessiond.Connected{ca, cb} {
			if s := a.session(c.Session.ID); s.State != sessiond.StateActive || s.ConnCount != 1 {
				t.Fatalf("after the outage, %s is %v with %d connections; want active with its one", c.Session.Subject, s.State, s.ConnCount)
			}
		}
	})
}

// Nodes lists every node sharing the store with its lease and the
// connections it holds, also a node that died and holds connections until
// its lease expires, and marks the asking node as itself.
func testNodesListsLeasesAndConnections(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		a := connectEnv(t, h, sessiond.Config{LeaseTTL: leaseTTL, Node: "host-a"})
		for i := range 3 {
			a.connectDevice("user", string(rune('a'+i)))
		}
		b := connectEnv(t, h, sessiond.Config{LeaseTTL: leaseTTL, Node: "host-b", Store: a.store.Store})
		b.connectDevice("other", "x")
		a.stop()

		nodes, err := b.m.Nodes(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(nodes) != 2 {
			t.Fatalf("nodes %+v; want host-a and host-b", nodes)
		}
		ha, hb := nodes[0], nodes[1]
		if ha.Node != "host-a" || ha.Self || ha.Connections != 3 || ha.ConnectionsMore || ha.Until.IsZero() {
			t.Fatalf("host-a, stopped with its lease running: %+v; want 3 connections, a lease, not self", ha)
		}
		if hb.Node != "host-b" || !hb.Self || hb.Connections != 1 || hb.Until.Before(time.Now()) {
			t.Fatalf("host-b: %+v; want itself, 1 connection, a live lease", hb)
		}

		time.Sleep(leaseTTL)
		synctest.Wait()
		nodes, err = b.m.Nodes(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(nodes) != 1 || nodes[0].Node != "host-b" || nodes[0].Connections != 1 {
			t.Fatalf("after host-a's lease expired and was worked off: %+v; want host-b alone", nodes)
		}
	})
}
