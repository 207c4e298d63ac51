package metrics_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sessiond/sessiond/metrics"
)

// Every configured endpoint has its series from the start, at 0, and the
// counts show under their labels.
func TestWebhookMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	stats := []metrics.WebhookStats{{Endpoint: "billing"}, {Endpoint: "audit"}}
	metrics.RegisterWebhooks(reg, func() []metrics.WebhookStats { return stats })
	n, err := testutil.GatherAndCount(reg)
	if err != nil || n != 2*8 {
		t.Fatalf("%d series before any event (%v); want 8 per endpoint", n, err)
	}
	stats[0] = metrics.WebhookStats{Endpoint: "billing", Delivered: 7, Rejected: 2, Failed: 1, Retries: 3, DeadLetters: 1, Gaps: 1, StoreErrors: 4, Delivering: true}
	want := `
# HELP sessiond_webhook_deliveries_total Notification webhook delivery attempts, by endpoint and result: ok (a 2xx answer), rejected (another status), failed (no answer: the connection failed or the attempt timed out).
# TYPE sessiond_webhook_deliveries_total counter
sessiond_webhook_deliveries_total{endpoint="audit",result="failed"} 0
sessiond_webhook_deliveries_total{endpoint="audit",result="ok"} 0
sessiond_webhook_deliveries_total{endpoint="audit",result="rejected"} 0
sessiond_webhook_deliveries_total{endpoint="billing",result="failed"} 1
sessiond_webhook_deliveries_total{endpoint="billing",result="ok"} 7
sessiond_webhook_deliveries_total{endpoint="billing",result="rejected"} 2
# HELP sessiond_webhook_delivering 1 while this node holds the endpoint's claim and delivers to it; of the nodes sharing a store, one per endpoint.
# TYPE sessiond_webhook_delivering gauge
sessiond_webhook_delivering{endpoint="audit"} 0
sessiond_webhook_delivering{endpoint="billing"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sessiond_webhook_deliveries_total", "sessiond_webhook_delivering"); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]float64{"retries": 3, "dead_letters": 1, "gaps": 1, "store_errors": 4} {
		if got := sum(t, reg, "sessiond_webhook_"+name+"_total"); got != v {
			t.Errorf("sessiond_webhook_%s_total = %v, want %v", name, got, v)
		}
	}
}
