package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/wire"
)

// GET /v1/nodes lists the node that answers, marked self, with its lease
// and the live connections it holds (connections tracked by heartbeats
// over REST belong to no node).
func TestNodesListsTheNodeAndItsConnections(t *testing.T) {
	e := htStartWith(t, func(c *sessiond.Config) { c.Node = "node-1" }, nil)
	s := e.createFor("alice")
	e.addConn(s.ID, "vnc")
	for _, device := range []string{"glasses-1", "glasses-2"} {
		if _, err := e.m.Connect(t.Context(), sessiond.ConnectRequest{Subject: "bob", Device: sessiond.Device{ID: device}}); err != nil {
			t.Fatal(err)
		}
	}

	r := e.send("GET", "/v1/nodes", "")
	htWantStatus(t, r, http.StatusOK)
	got := htDecode[wire.NodesResponse](t, r).Nodes
	if len(got) != 1 {
		t.Fatalf("nodes %+v; want node-1 alone", got)
	}
	n := got[0]
	if n.Node != "node-1" || !n.Self || n.Dead || n.Connections != 2 || n.ConnectionsMore || n.Until == nil {
		t.Fatalf("node %+v; want node-1, self, its lease's end, 2 connections", n)
	}
	if !n.Until.After(e.clock.Now()) {
		t.Fatalf("lease until %v, not after now %v", n.Until, e.clock.Now())
	}
	htWantError(t, e.sendWith("GET", "/v1/nodes", "", nil), http.StatusUnauthorized, sessiond.CodeUnauthorized, "")
}
