package metrics_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/metrics"
	"github.com/sessiond/sessiond/wire"
)

func TestObserverCounts(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.Validated("ok")
	m.Validated("ok")
	m.Validated(string(sessiond.CodeExpired))
	m.Validated("something_new")
	m.Transitioned(&sessiond.Event{Type: sessiond.EventEnded, Reason: sessiond.EndIdle})
	m.StoreOp("find_token", time.Millisecond, nil)
	m.StoreOp("update", time.Millisecond, sessiond.ErrConflict)       // an outcome, not a fault
	m.StoreOp("update", time.Millisecond, errors.New("disk on fire")) // a fault
	m.SchedulerLag(3 * time.Millisecond)
	m.SubscriberDropped()
	m.ObserveRequest("GET /v1/stats", 200, time.Millisecond)

	want := `
# HELP sessiond_validations_total Token validations by result: ok, rotated, grace (replaced token within its grace) or an error code.
# TYPE sessiond_validations_total counter
sessiond_validations_total{result="ok"} 2
sessiond_validations_total{result="session_expired"} 1
sessiond_validations_total{result="something_new"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want+zeroValidations()), "sessiond_validations_total"); err != nil {
		t.Fatal(err)
	}
	if got := sum(t, reg, "sessiond_store_errors_total"); got != 1 {
		t.Fatalf("store errors = %v, want 1 (conflicts are not faults)", got)
	}
	if got := sum(t, reg, "sessiond_event_subscribers_dropped_total"); got != 1 {
		t.Fatalf("dropped = %v", got)
	}
	// Every event type has its series from the start (ending and ended one
	// per end reason); only the one recorded counts.
	n, err := testutil.GatherAndCount(reg, "sessiond_transitions_total")
	if want := len(sessiond.EventTypes) - 2 + 2*len(sessiond.EndReasons); err != nil || n != want {
		t.Fatalf("transition series: %d, %v; want %d", n, err, want)
	}
	if got := sum(t, reg, "sessiond_transitions_total"); got != 1 {
		t.Fatalf("transitions = %v, want 1", got)
	}
	n, err = testutil.GatherAndCount(reg, "sessiond_scheduler_lag_seconds", "sessiond_http_request_duration_seconds")
	if err != nil || n != 2 {
		t.Fatalf("series: %d, %v", n, err)
	}
}

// zeroValidations lists the results registered up front at zero.
func zeroValidations() string {
	var b strings.Builder
	for _, r := range []string{"conflict", "device_mismatch", "grace", "internal", "invalid_argument", "rotated", "session_ended", "session_not_found", "store_unavailable", "token_reused", "unavailable"} {
		b.WriteString(`sessiond_validations_total{result="` + r + `"} 0` + "\n")
	}
	return b.String()
}

// sum adds up the values of a counter family.
func sum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var total float64
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
			return total
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestStatsGauges(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics.RegisterStats(reg, func(context.Context) (sessiond.Stats, error) {
		return sessiond.Stats{Sessions: map[sessiond.State]int{sessiond.StateActive: 3, sessiond.StateEnded: 1}, Subjects: 2, Scheduled: 4}, nil
	})
	want := `
# HELP sessiond_subjects Subjects holding at least one live session.
# TYPE sessiond_subjects gauge
sessiond_subjects 2
# HELP sessiond_scheduled_deadlines Deadlines held by this node's scheduler.
# TYPE sessiond_scheduled_deadlines gauge
sessiond_scheduled_deadlines 4
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sessiond_subjects", "sessiond_scheduled_deadlines"); err != nil {
		t.Fatal(err)
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "sessiond_sessions" {
			continue
		}
		got := map[string]float64{}
		for _, m := range mf.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
		if len(got) != len(sessiond.States) || got["active"] != 3 || got["ended"] != 1 || got["disconnected"] != 0 {
			t.Fatalf("sessions by state: %v", got)
		}
		return
	}
	t.Fatal("no sessiond_sessions")
}

func TestAdminAuthFailuresByResult(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	want := `
# HELP sessiond_admin_auth_failures_total Admin requests refused for their API key, by result: wrong_key (missing or wrong) or rate_limited (the address failed too often).
# TYPE sessiond_admin_auth_failures_total counter
sessiond_admin_auth_failures_total{result="rate_limited"} 0
sessiond_admin_auth_failures_total{result="wrong_key"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sessiond_admin_auth_failures_total"); err != nil {
		t.Fatalf("before any failure: %v", err)
	}
	m.AdminAuthFailed(false)
	m.AdminAuthFailed(false)
	m.AdminAuthFailed(true)
	want = strings.NewReplacer(`"rate_limited"} 0`, `"rate_limited"} 1`, `"wrong_key"} 0`, `"wrong_key"} 2`).Replace(want)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sessiond_admin_auth_failures_total"); err != nil {
		t.Fatal(err)
	}
}

func TestDiskMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	st := metrics.DiskStats{FreeBytes: 3 << 20, MinFreeBytes: 256 << 20, WritesRefused: map[string]uint64{"low_space": 7}, Quarantined: 2}
	metrics.RegisterDisk(reg, func() metrics.DiskStats { return st })
	want := `
# HELP sessiond_store_free_bytes Free space on the embedded store's filesystem (for unprivileged users).
# TYPE sessiond_store_free_bytes gauge
sessiond_store_free_bytes 3.145728e+06
# HELP sessiond_store_min_free_bytes Free space the store keeps: below it, writes are refused with store_full (0: no threshold).
# TYPE sessiond_store_min_free_bytes gauge
sessiond_store_min_free_bytes 2.68435456e+08
# HELP sessiond_store_quarantined_records Store records set aside because they did not decode; ` + "`sessiond store check`" + ` lists them.
# TYPE sessiond_store_quarantined_records gauge
sessiond_store_quarantined_records 2
# HELP sessiond_store_failed 1 once the store failed for good (a failed write of its log): writes are refused until sessiond restarts.
# TYPE sessiond_store_failed gauge
sessiond_store_failed 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sessiond_store_free_bytes", "sessiond_store_min_free_bytes", "sessiond_store_quarantined_records", "sessiond_store_failed"); err != nil {
		t.Fatal(err)
	}
	if got := sum(t, reg, "sessiond_store_writes_refused_total"); got != 7 {
		t.Fatalf("writes refused = %v, want 7", got)
	}
	st.WritesRefused["failed"], st.Failed = 1, true
	if got := sum(t, reg, "sessiond_store_writes_refused_total"); got != 8 {
		t.Fatalf("writes refused = %v, want 8 (read at each scrape)", got)
	}
	if got := testutil.ToFloat64(gaugeOf(t, reg, "sessiond_store_failed")); got != 1 {
		t.Fatalf("failed = %v, want 1", got)
	}
}

// gaugeOf is the one gauge of that name, as a Collector for testutil.
func gaugeOf(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: mf.GetHelp()})
			g.Set(mf.GetMetric()[0].GetGauge().GetValue())
			return g
		}
	}
	t.Fatalf("no gauge %s", name)
	return nil
}

func TestEdgeRefusalsByReason(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics.RegisterEdge(reg, func() wire.WebSocketStats {
		return wire.WebSocketStats{Refused: 3, RefusedRate: 5, RefusedFull: 7, DetachesPending: 2, Reconciled: 4, CloseCodes: map[string]int{}}
	})
	want := `
# HELP sessiond_websocket_refused_total WebSocket connection attempts refused, by reason: attach (credential, session, per-session and per-subject limits), rate (a connect rate limit: 429), full (the node held its most sockets: 503).
# TYPE sessiond_websocket_refused_total counter
sessiond_websocket_refused_total{reason="attach"} 3
sessiond_websocket_refused_total{reason="full"} 7
sessiond_websocket_refused_total{reason="rate"} 5
# HELP sessiond_websocket_detaches_pending Connections whose sockets closed but whose detach from their session is still being retried.
# TYPE sessiond_websocket_detaches_pending gauge
sessiond_websocket_detaches_pending 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sessiond_websocket_refused_total", "sessiond_websocket_detaches_pending"); err != nil {
		t.Fatal(err)
	}
}
