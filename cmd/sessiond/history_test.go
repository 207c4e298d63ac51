package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond/sessiondtest"
	"github.com/sessiond/sessiond/wire"
)

// TestHistoryThroughTheServer: a server started with --history keeps the
// lifecycle events of what it serves in PostgreSQL, and every connection:
// in sessiond_connections, and through the API and the CLI.
func TestHistoryThroughTheServer(t *testing.T) {
	cfg := testConfig(t)
	admin, schema := testHistory(t, &cfg)
	ts := startServer(t, cfg)
	s := create(t, ts.client(), "alice")
	api := func(method, path, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, ts.url+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+ts.key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = resp.Body.Close() })
		return resp
	}
	// Two connections: one removed over REST, one still attached when the
	// session is revoked.
	var conns [2]wire.ConnectionResponse
	for i := range conns {
		resp := api("POST", "/v1/sessions/"+s.ID+"/connections", `{"kind":"vnc","client_ip":"203.0.113.7","user_agent":"TigerVNC/1.13"}`)
		if err := json.NewDecoder(resp.Body).Decode(&conns[i]); err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("registering a connection: %d, %v", resp.StatusCode, err)
		}
	}
	if resp := api("DELETE", "/v1/connections/"+conns[0].Connection.ID, ""); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE /v1/connections/{id}: %d", resp.StatusCode)
	}
	if err := ts.client().Revoke(t.Context(), s.ID); err != nil {
		t.Fatal(err)
	}
	want := []string{"created", "connected", "connected", "connection_closed", "ending", "connection_closed", "ended"}
	var types []string
	sessiondtest.Eventually(t, "the session's events in PostgreSQL", func() bool {
		rows, err := admin.Query(context.Background(), "SELECT type FROM "+schema+".sessiond_events WHERE session_id = $1 ORDER BY seq", s.ID)
		if err != nil {
			return false // the schema is not made yet
		}
		types, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err == nil && len(types) == len(want)
	})
	if !slices.Equal(types, want) {
		t.Fatalf("history of the session: %v; want %v", types, want)
	}
	// One row per connection, closed with its reason.
	rows, err := admin.Query(context.Background(), "SELECT conn_id, kind, client_ip, user_agent, close_reason, closed_at IS NOT NULL AND duration >= '0' FROM "+
		schema+".sessiond_connections WHERE session_id = $1 ORDER BY opened_at, conn_id", s.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for rows.Next() {
		var id, kind, ip, ua, reason string
		var closed bool
		if err := rows.Scan(&id, &kind, &ip, &ua, &reason, &closed); err != nil {
			t.Fatal(err)
		}
		got[id] = fmt.Sprint(kind, " ", ip, " ", ua, " ", reason, " ", closed)
	}
	if rows.Err() != nil || len(got) != 2 || got[conns[0].Connection.ID] != "vnc 203.0.113.7 TigerVNC/1.13 removed true" ||
		got[conns[1].Connection.ID] != "vnc 203.0.113.7 TigerVNC/1.13 session_ended true" {
		t.Fatalf("sessiond_connections of the session: %v, %v", got, rows.Err())
	}
	// And through the API.
	req, _ := http.NewRequestWithContext(t.Context(), "GET", ts.url+"/v1/sessions/"+s.ID+"/history", nil)
	req.Header.Set("Authorization", "Bearer "+ts.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page wire.HistoryResponse
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != http.StatusOK || len(page.Events) != 7 || page.Events[6].Type != "ended" {
		t.Fatalf("GET /v1/sessions/{id}/history: %d, %+v, %v; want its 7 events", resp.StatusCode, page, err)
	}
	if d := page.Events[3].Conn; d == nil || d.CloseReason != "removed" || d.ClientIP != "203.0.113.7" || d.UserAgent != "TigerVNC/1.13" || d.ClosedAt.IsZero() {
		t.Fatalf("the removed connection's event through the API: %+v", page.Events[3])
	}
	// Counted in the metrics.
	mresp, err := http.Get(ts.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer mresp.Body.Close()
	body, _ := io.ReadAll(mresp.Body)
	if !regexp.MustCompile(`(?m)^sessiond_history_events_written_total [1-9]`).Match(body) || !strings.Contains(string(body), "sessiond_history_gaps_total 0") {
		t.Fatalf("/metrics lacks the history's counts:\n%s", body)
	}
	// And through the CLI.
	out := mustCLI(t, "history", "--addr", ts.addr, "--api-key", ts.key, "--subject", "alice", "--since", "1h")
	if strings.Count(out, "\n") != 8 || strings.Count(out, " "+s.ID+" ") != 7 || !strings.Contains(out, "ended") || !strings.Contains(out, "revoked") || !strings.Contains(out, "USER_AGENT") {
		t.Fatalf("sessiond history --subject alice --since 1h printed:\n%s", out)
	}
	// Every connection that closed, with its details, one a line.
	out = mustCLI(t, "history", "--addr", ts.addr, "--api-key", ts.key, "--subject", "alice", "--type", "connection_closed")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !regexp.MustCompile(`connection_closed +ending +revoked +`+regexp.QuoteMeta(conns[1].Connection.ID)+` +vnc +203\.0\.113\.7 +\S+ +\d+(\.\d+)?m?s +session_ended +"TigerVNC/1\.13"`).MatchString(lines[2]) ||
		!strings.Contains(lines[1], "removed") {
		t.Fatalf("sessiond history --subject alice --type connection_closed printed:\n%s", out)
	}
	if code, _, errOut := cli(t, noEnv, "history", "--addr", ts.addr, "--api-key", ts.key, "--subject", "alice", "--type", "Not-A-Type"); code == 0 || !strings.Contains(errOut, "type") {
		t.Fatalf("sessiond history --type Not-A-Type: exit %d, %s", code, errOut)
	}
	if code, _, errOut := cli(t, noEnv, "history"); code != 2 || !strings.Contains(errOut, "session id or --subject") {
		t.Fatalf("sessiond history without a session or subject: exit %d, %s", code, errOut)
	}
}
