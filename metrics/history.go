package metrics

import "github.com/prometheus/client_golang/prometheus"

// HistoryStats are the history sink's counts (postgres.History.Stats).
type HistoryStats struct {
	Written  int64 // events written to PostgreSQL
	Gaps     int64 // gaps found in the store's log (events lost to its retention)
	Failures int64 // batches that failed and were tried again
}

// RegisterHistory registers the history sink's counters, read from stats
// at each scrape.
func RegisterHistory(reg prometheus.Registerer, stats func() HistoryStats) {
	reg.MustRegister(&historyCollector{stats: stats})
}

var (
	historyWrittenDesc  = prometheus.NewDesc(ns+"_history_events_written_total", "Lifecycle events written to the PostgreSQL history.", nil, nil)
	historyGapsDesc     = prometheus.NewDesc(ns+"_history_gaps_total", "Gaps the history found in the store's event log: events gone before it could copy them (an outage longer than event_retention); each is a row of sessiond_history_gaps.", nil, nil)
	historyFailuresDesc = prometheus.NewDesc(ns+"_history_failures_total", "History batches that failed (PostgreSQL unreachable) and were tried again.", nil, nil)
)

type historyCollector struct{ stats func() HistoryStats }

func (c *historyCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- historyWrittenDesc
	ch <- historyGapsDesc
	ch <- historyFailuresDesc
}

func (c *historyCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	ch <- prometheus.MustNewConstMetric(historyWrittenDesc, prometheus.CounterValue, float64(st.Written))
	ch <- prometheus.MustNewConstMetric(historyGapsDesc, prometheus.CounterValue, float64(st.Gaps))
	ch <- prometheus.MustNewConstMetric(historyFailuresDesc, prometheus.CounterValue, float64(st.Failures))
}
