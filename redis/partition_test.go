package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/sessiondtest"
)

// testPartitions checks partitioning with few partitions, so that each
// holds several subjects: sessions spread over partitions (slots), ids
// claimed outside their home partition, and the reads that visit every
// partition. (The conformance suites run with the store's 16.)
func testPartitions(t *testing.T, c *Client) {
	const n = 4
	newStore := func(t *testing.T) *Store {
		s, err := NewStore(c, StoreOptions{KeyPrefix: fmt.Sprintf("test%d:", prefixes.Add(1))})
		if err != nil {
			t.Fatal(err)
		}
		s.k.n = n
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	// subjects[p] is a subject of partition p.
	var subjects [n]string
	for i, found := 0, 0; found < n; i++ {
		subj := fmt.Sprint("subject-", i)
		if p := (keys{n: n}).subjectPartition(subj); subjects[p] == "" {
			subjects[p], found = subj, found+1
		}
	}
	ctx := context.Background()
	create := func(st *Store, v *sessiond.Session, lim sessiond.Limit) error {
		_, err := st.Create(ctx, sessiond.Change{Session: v, Events: []sessiond.Event{{Type: sessiond.EventCreated, SessionID: v.ID}}}, lim)
		return err
	}
	session := func(subject, id string) *sessiond.Session {
		v, _ := sessiondtest.NewSession(subject, sessiondtest.Epoch)
		if id != "" {
			v.ID = id
		}
		return v
	}

	t.Run("RacingCreatesOfACallerChosenID", func(t *testing.T) {
		st := newStore(t)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var winners []string
		for i := range 20 {
			wg.Go(func() {
				err := create(st, session(subjects[i%n], "contested"), sessiond.Limit{})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					winners = append(winners, subjects[i%n])
				case !errors.Is(err, sessiond.ErrExists):
					t.Errorf("racing create: %v", err)
				}
			})
		}
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("%d racing creates of one id over %d partitions succeeded, want 1", len(winners), n)
		}
		got, err := st.Get(ctx, "contested")
		if err != nil || got.Subject != winners[0] {
			t.Fatalf("Get = %+v, %v; want the session of %s", got, err, winners[0])
		}
	})

	t.Run("IDOfNewIDsFormWithAnotherPartitionsShard", func(t *testing.T) {
		st := newStore(t)
		// An id NewID made for subjects[0], chosen by a caller for subjects[1].
		id := sessiond.NewID(sessiondtest.Epoch, subjects[0])
		v := session(subjects[1], id)
		conn := sessiond.Connection{ID: "abcdefghijklmnop." + id, Kind: "vnc", Node: "n1", ConnectedAt: sessiondtest.Epoch, LastHeartbeat: sessiondtest.Epoch}
		v.ConnCount = 1
		if _, err := st.Create(ctx, sessiond.Change{Session: v, PutConns: []sessiond.Connection{conn}}, sessiond.Limit{}); err != nil {
			t.Fatal(err)
		}
		got, err := st.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		sessiondtest.SameSession(t, got, v)
		if err := create(st, session(subjects[0], id), sessiond.Limit{}); !errors.Is(err, sessiond.ErrExists) {
			t.Fatalf("create of the id in its home partition: %v, want ErrExists", err)
		}
		if conns, err := st.Conns(ctx, id); err != nil || len(conns) != 1 {
			t.Fatalf("Conns = %+v, %v", conns, err)
		}
		if _, err := st.Conn(ctx, conn.ID); err != nil {
			t.Fatalf("Conn: %v", err)
		}
		if got, err := st.NodeConns(ctx, "n1", 10); err != nil || len(got) != 1 {
			t.Fatalf("NodeConns = %+v, %v", got, err)
		}
		if err := st.Delete(ctx, id, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Get(ctx, id); !errors.Is(err, sessiond.ErrNotFound) {
			t.Fatalf("Get after delete: %v", err)
		}
		// The delete released the claim: the home partition takes the id.
		if err := create(st, session(subjects[0], id), sessiond.Limit{}); err != nil {
			t.Fatalf("create after the delete: %v", err)
		}
		if got, err := st.Get(ctx, id); err != nil || got.Subject != subjects[0] {
			t.Fatalf("Get = %+v, %v", got, err)
		}
	})

	t.Run("RefusedCreateReleasesItsClaim", func(t *testing.T) {
		st := newStore(t)
		id := ""
		for i := 0; id == ""; i++ {
			if cand := fmt.Sprint("mine-", i); st.k.homePartition(cand) != st.k.subjectPartition(subjects[2]) {
				id = cand
			}
		}
		if err := create(st, session(subjects[2], ""), sessiond.Limit{}); err != nil {
			t.Fatal(err)
		}
		if err := create(st, session(subjects[2], id), sessiond.Limit{Max: 1}); !errors.Is(err, sessiond.ErrLimitReached) {
			t.Fatalf("create over the limit: %v", err)
		}
		if err := create(st, session(subjects[2], id), sessiond.Limit{}); err != nil {
			t.Fatalf("create of the id after a refused one: %v", err)
		}
	})

	t.Run("ReadsVisitEveryPartition", func(t *testing.T) {
		st := newStore(t)
		want := map[string]bool{}
		long := strings.Repeat("x", sessiond.MaxIDLen-1)
		for i := range 30 {
			id := ""
			if i%3 == 0 {
				id = fmt.Sprintf("%s%d", long, i%10) // long ids: uvarints of two bytes in the records the scripts read
			}
			v := session(subjects[i%n], id)
			var puts []sessiond.Connection
			if i%2 == 0 {
				puts = []sessiond.Connection{{ID: "abcdefghijklmnop." + v.ID, Kind: "websocket", Node: fmt.Sprint("node-", i%3), ConnectedAt: sessiondtest.Epoch}}
			}
			if _, err := st.Create(ctx, sessiond.Change{Session: v, PutConns: puts}, sessiond.Limit{}); err != nil {
				if id != "" && errors.Is(err, sessiond.ErrExists) {
					continue
				}
				t.Fatal(err)
			}
			want[v.ID] = true
		}
		var got []string
		q := sessiond.Query{Limit: 7}
		for {
			page, err := st.List(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range page.Sessions {
				got = append(got, v.ID)
			}
			if page.Next == "" {
				break
			}
			q.Cursor = page.Next
		}
		if len(got) != len(want) || !slices.IsSorted(got) {
			t.Fatalf("List over %d partitions: %d sessions (sorted: %v), want %d", n, len(got), slices.IsSorted(got), len(want))
		}
		stats, err := st.Stats(ctx)
		if err != nil || stats.Total != len(want) || stats.Subjects != n {
			t.Fatalf("Stats = %+v, %v; want %d sessions of %d subjects", stats, err, len(want), n)
		}
		nodes, err := st.ConnNodes(ctx)
		if err != nil || !slices.Equal(nodes, []string{"node-0", "node-1", "node-2"}) {
			t.Fatalf("ConnNodes = %v, %v", nodes, err)
		}
		total := 0
		for _, node := range nodes {
			conns, err := st.NodeConns(ctx, node, 100)
			if err != nil {
				t.Fatal(err)
			}
			total += len(conns)
		}
		if total != stats.Connections["websocket"] || total == 0 {
			t.Fatalf("NodeConns over the nodes: %d, connections counted: %v", total, stats.Connections)
		}
	})
}
