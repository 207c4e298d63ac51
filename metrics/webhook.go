package metrics

import "github.com/prometheus/client_golang/prometheus"

// WebhookStats are one notification endpoint's counts
// (webhook.EndpointStats, converted by the caller, so that this package
// needs no webhook).
type WebhookStats struct {
	Endpoint string
	// Delivery attempts by result: a 2xx answer, another status, no
	// answer (the connection failed or the attempt timed out).
	Delivered, Rejected, Failed int64

	Retries     int64 // attempts after a notification's first
	DeadLetters int64 // notifications dropped after their last attempt failed
	Gaps        int64 // places where the store's log no longer held events not yet sent
	StoreErrors int64 // store calls of the notifier that failed
	Delivering  bool  // this node holds the endpoint's claim
}

// RegisterWebhooks registers the notification webhooks' counters, read
// from stats at each scrape: one series per endpoint stats returns (every
// configured one, from the start, at 0).
func RegisterWebhooks(reg prometheus.Registerer, stats func() []WebhookStats) {
	reg.MustRegister(&webhookCollector{stats: stats})
}

var (
	webhookDeliveriesDesc = prometheus.NewDesc(ns+"_webhook_deliveries_total",
		"Notification webhook delivery attempts, by endpoint and result: ok (a 2xx answer), rejected (another status), failed (no answer: the connection failed or the attempt timed out).",
		[]string{"endpoint", "result"}, nil)
	webhookRetriesDesc = prometheus.NewDesc(ns+"_webhook_retries_total",
		"Notification delivery attempts after a notification's first, by endpoint.", []string{"endpoint"}, nil)
	webhookDeadDesc = prometheus.NewDesc(ns+"_webhook_dead_letters_total",
		"Notifications dropped after their last attempt failed (max_attempts), by endpoint; each is logged.", []string{"endpoint"}, nil)
	webhookGapsDesc = prometheus.NewDesc(ns+"_webhook_gaps_total",
		"Gaps in the store's event log met by an endpoint: events gone before they were sent (an outage longer than event_retention).", []string{"endpoint"}, nil)
	webhookStoreErrorsDesc = prometheus.NewDesc(ns+"_webhook_store_errors_total",
		"Store calls of the notifier that failed (reading the log, claiming or committing an endpoint's cursor) and were tried again, by endpoint.", []string{"endpoint"}, nil)
	webhookDeliveringDesc = prometheus.NewDesc(ns+"_webhook_delivering",
		"1 while this node holds the endpoint's claim and delivers to it; of the nodes sharing a store, one per endpoint.", []string{"endpoint"}, nil)
)

type webhookCollector struct{ stats func() []WebhookStats }

func (c *webhookCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{webhookDeliveriesDesc, webhookRetriesDesc, webhookDeadDesc, webhookGapsDesc, webhookStoreErrorsDesc, webhookDeliveringDesc} {
		ch <- d
	}
}

func (c *webhookCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, st := range c.stats() {
		counter(webhookDeliveriesDesc, st.Delivered, st.Endpoint, "ok")
		counter(webhookDeliveriesDesc, st.Rejected, st.Endpoint, "rejected")
		counter(webhookDeliveriesDesc, st.Failed, st.Endpoint, "failed")
		counter(webhookRetriesDesc, st.Retries, st.Endpoint)
		counter(webhookDeadDesc, st.DeadLetters, st.Endpoint)
		counter(webhookGapsDesc, st.Gaps, st.Endpoint)
		counter(webhookStoreErrorsDesc, st.StoreErrors, st.Endpoint)
		delivering := 0.0
		if st.Delivering {
			delivering = 1
		}
		ch <- prometheus.MustNewConstMetric(webhookDeliveringDesc, prometheus.GaugeValue, delivering, st.Endpoint)
	}
}
