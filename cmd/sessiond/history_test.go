package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond/sessiondtest"
	"github.com/sessiond/sessiond/wire"
)

// TestHistoryThroughTheServer: a server started with --history keeps the
// lifecycle events of what it serves in PostgreSQL.
func TestHistoryThroughTheServer(t *testing.T) {
	cfg := testConfig(t)
	admin, schema := testHistory(t, &cfg)
	ts := startServer(t, cfg)
	s := create(t, ts.client(), "alice")
	if err := ts.client().Revoke(t.Context(), s.ID); err != nil {
		t.Fatal(err)
	}
	var types []string
	sessiondtest.Eventually(t, "the session's events in PostgreSQL", func() bool {
		rows, err := admin.Query(context.Background(), "SELECT type FROM "+schema+".sessiond_events WHERE session_id = $1 ORDER BY seq", s.ID)
		if err != nil {
			return false // the schema is not made yet
		}
		types, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err == nil && len(types) == 3
	})
	if types[0] != "created" || types[1] != "ending" || types[2] != "ended" {
		t.Fatalf("history of the session: %v; want created, ending, ended", types)
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
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != http.StatusOK || len(page.Events) != 3 || page.Events[2].Type != "ended" {
		t.Fatalf("GET /v1/sessions/{id}/history: %d, %+v, %v; want its 3 events", resp.StatusCode, page, err)
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
	if strings.Count(out, s.ID) != 3 || !strings.Contains(out, "ended") || !strings.Contains(out, "revoked") {
		t.Fatalf("sessiond history --subject alice --since 1h printed:\n%s", out)
	}
	if code, _, errOut := cli(t, noEnv, "history"); code != 2 || !strings.Contains(errOut, "session id or --subject") {
		t.Fatalf("sessiond history without a session or subject: exit %d, %s", code, errOut)
	}
}
