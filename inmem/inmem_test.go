package inmem_test

import (
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/inmem"
	"github.com/sessiond/sessiond/sessiondtest"
)

var harness = sessiondtest.Harness{
	Open: func(testing.TB) sessiond.Store { return inmem.New(inmem.Options{}) },
}

func TestConformance(t *testing.T) { sessiondtest.TestStore(t, harness) }

func TestEngine(t *testing.T) { sessiondtest.TestEngine(t, harness) }

func TestEventRetention(t *testing.T) {
	st := inmem.New(inmem.Options{EventRetention: 3})
	ctx := t.Context()
	for i := range 5 {
		s, _ := sessiondtest.NewSession("alice", sessiondtest.Epoch)
		ev := []sessiond.Event{{Type: sessiond.EventCreated, SessionID: s.ID}}
		if _, err := st.Create(ctx, sessiond.Change{Session: s, Events: ev}, sessiond.Limit{}); err != nil {
			t.Fatal(err)
		}
		if ev[0].Seq != uint64(i+1) {
			t.Fatalf("seq %d, want %d", ev[0].Seq, i+1)
		}
	}
	evs, _ := st.Events(ctx, sessiond.Cursor{}, 10)
	if len(evs) != 3 || evs[0].Seq != 3 || evs[2].Seq != 5 {
		t.Fatalf("with retention 3 after 5 events, Events(0) = %+v; want seqs 3..5", evs)
	}
}
