package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// DiskStats is what an embedded store reports about its disk (the pebble
// store's Disk, converted by the caller, so that this package needs no
// store).
type DiskStats struct {
	FreeBytes     uint64            // free on the store's filesystem
	MinFreeBytes  uint64            // below it writes are refused; 0 if off
	WritesRefused map[string]uint64 // by reason, since start
	Failed        bool              // the store failed for good: writes refused until restart
	Quarantined   int               // records set aside because they did not decode
}

// RegisterDisk registers the store's disk gauges and counters, read from
// stats at each scrape.
func RegisterDisk(reg prometheus.Registerer, stats func() DiskStats) {
	reg.MustRegister(&diskCollector{stats: stats})
}

var (
	freeDesc        = prometheus.NewDesc(ns+"_store_free_bytes", "Free space on the embedded store's filesystem (for unprivileged users).", nil, nil)
	minFreeDesc     = prometheus.NewDesc(ns+"_store_min_free_bytes", "Free space the store keeps: below it, writes are refused with store_full (0: no threshold).", nil, nil)
	refusedDesc     = prometheus.NewDesc(ns+"_store_writes_refused_total", "Writes refused for lack of disk space, by reason: low_space (below min_free_space), disk_full (the store met ENOSPC), failed (a failed write of the store's log: writes refused until restart).", []string{"reason"}, nil)
	failedDesc      = prometheus.NewDesc(ns+"_store_failed", "1 once the store failed for good (a failed write of its log): writes are refused until sessiond restarts.", nil, nil)
	quarantinedDesc = prometheus.NewDesc(ns+"_store_quarantined_records", "Store records set aside because they did not decode; `sessiond store check` lists them.", nil, nil)
)

type diskCollector struct{ stats func() DiskStats }

func (c *diskCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{freeDesc, minFreeDesc, refusedDesc, failedDesc, quarantinedDesc} {
		ch <- d
	}
}

func (c *diskCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	ch <- prometheus.MustNewConstMetric(freeDesc, prometheus.GaugeValue, float64(st.FreeBytes))
	ch <- prometheus.MustNewConstMetric(minFreeDesc, prometheus.GaugeValue, float64(st.MinFreeBytes))
	for _, reason := range []string{"low_space", "disk_full", "failed"} {
		ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.CounterValue, float64(st.WritesRefused[reason]), reason)
	}
	failed := 0.0
	if st.Failed {
		failed = 1
	}
	ch <- prometheus.MustNewConstMetric(failedDesc, prometheus.GaugeValue, failed)
	ch <- prometheus.MustNewConstMetric(quarantinedDesc, prometheus.GaugeValue, float64(st.Quarantined))
}
