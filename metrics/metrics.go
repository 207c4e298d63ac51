// Package metrics exposes sessiond's measurements to Prometheus. It
// implements sessiond.Observer and registers on the Registerer it is given,
// never on the global one.
package metrics

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/wire"
)

const ns = "sessiond"

// Metrics implements sessiond.Observer.
type Metrics struct {
	validations *prometheus.CounterVec
	transitions *prometheus.CounterVec
	storeOps    *prometheus.HistogramVec
	storeErrors *prometheus.CounterVec
	schedLag    prometheus.Histogram
	dropped     prometheus.Counter
	requests    *prometheus.HistogramVec
	disposals   *prometheus.CounterVec
	hbTimeouts  *prometheus.CounterVec
	fenced      prometheus.Counter
	authFails   *prometheus.CounterVec
	rtCalls     *prometheus.CounterVec
	rtDuration  *prometheus.HistogramVec

	// Children resolved once, so hot paths do not hash label values.
	validated map[string]prometheus.Counter
	ops       map[string]prometheus.Observer
}

var _ sessiond.Observer = (*Metrics)(nil)

// New creates the metrics and registers them on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		validations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "validations_total",
			Help: "Token validations by result: ok, rotated, grace (replaced token within its grace) or an error code.",
		}, []string{"result"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "transitions_total",
			Help: "Lifecycle events recorded by this node, by event type and end reason.",
		}, []string{"event", "reason"}),
		storeOps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "store_operation_duration_seconds",
			Help:    "Latency of store calls, by operation.",
			Buckets: prometheus.ExponentialBuckets(10e-6, 4, 9), // 10µs .. 655ms
		}, []string{"op"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "store_errors_total",
			Help: "Store calls that failed with a fault (not found and conflicts are outcomes, not faults).",
		}, []string{"op"}),
		schedLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "scheduler_lag_seconds",
			Help:    "How late deadlines (expiry, idle, purge) were handled after they came due.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "event_subscribers_dropped_total",
			Help: "Event subscribers dropped for falling behind.",
		}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "http_request_duration_seconds",
			Help:    "HTTP requests by route and status code.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 4, 9), // 50µs .. 3.3s
		}, []string{"route", "code"}),
		disposals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "disposals_total",
			Help: "Resource disposals and ending hooks run as sessions end, by result: ok, error, panic, timeout.",
		}, []string{"result"}),
		hbTimeouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "heartbeat_timeouts_total",
			Help: "Connections lost for want of heartbeats, by kind.",
		}, []string{"kind"}),
		fenced: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "lease_fenced_total",
			Help: "Times this node found its lease claimed by another node (taken for dead) and closed what it held.",
		}),
		authFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "admin_auth_failures_total",
			Help: "Admin requests refused for their API key, by result: wrong_key (missing or wrong) or rate_limited (the address failed too often).",
		}, []string{"result"}),
		rtCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "runtime_calls_total",
			Help: "Calls of the sessions' runtime (hooks.runtime) by action (hibernate, wake) and result: ok, error, timeout (wake_timeout passed) or panic.",
		}, []string{"action", "result"}),
		rtDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "runtime_call_duration_seconds",
			Help:    "How long the sessions' runtime took to hibernate or wake a session.",
			Buckets: prometheus.ExponentialBuckets(1e-3, 4, 9), // 1ms .. 65s
		}, []string{"action"}),
		validated: make(map[string]prometheus.Counter),
		ops:       make(map[string]prometheus.Observer),
	}
	reg.MustRegister(m.validations, m.transitions, m.storeOps, m.storeErrors, m.schedLag, m.dropped, m.requests, m.disposals, m.hbTimeouts, m.fenced, m.authFails, m.rtCalls, m.rtDuration)
	// Labelled counters are exported from the start, at 0, so that their
	// series exist before the first event (rate() and alerts see them).
	for _, t := range sessiond.EventTypes {
		switch t {
		case sessiond.EventEnding, sessiond.EventEnded:
			for _, r := range sessiond.EndReasons {
				m.transitions.WithLabelValues(string(t), string(r))
			}
		default:
			m.transitions.WithLabelValues(string(t), "")
		}
	}
	for _, r := range []string{"ok", "error", "panic", "timeout"} {
		m.disposals.WithLabelValues(r)
	}
	for _, a := range []sessiond.RuntimeAction{sessiond.RuntimeHibernate, sessiond.RuntimeWake, sessiond.RuntimeDispose} {
		m.rtDuration.WithLabelValues(string(a))
		for _, r := range []string{"ok", "error", "timeout", "panic"} {
			m.rtCalls.WithLabelValues(string(a), r) // exported from the start, at 0
		}
	}
	for _, r := range []string{"wrong_key", "rate_limited"} {
		m.authFails.WithLabelValues(r) // exported from the start, at 0
	}
	results := []string{"ok", "rotated", "grace"}
	for _, c := range []sessiond.Code{sessiond.CodeInvalidArgument, sessiond.CodeNotFound, sessiond.CodeExpired,
		sessiond.CodeEnded, sessiond.CodeDeviceMismatch, sessiond.CodeTokenReused, sessiond.CodeConflict,
		sessiond.CodeUnavailable, sessiond.CodeStoreUnavailable, sessiond.CodeInternal} {
		results = append(results, string(c))
	}
	for _, r := range results {
		m.validated[r] = m.validations.WithLabelValues(r)
	}
	for _, op := range []string{"create", "get", "find_token", "update", "delete", "live", "list", "stats"} {
		m.ops[op] = m.storeOps.WithLabelValues(op)
		m.storeErrors.WithLabelValues(op)
	}
	return m
}

// Validated implements sessiond.Observer.
func (m *Metrics) Validated(result string) {
	if c, ok := m.validated[result]; ok {
		c.Inc()
		return
	}
	m.validations.WithLabelValues(result).Inc()
}

// Transitioned implements sessiond.Observer.
func (m *Metrics) Transitioned(ev *sessiond.Event) {
	m.transitions.WithLabelValues(string(ev.Type), string(ev.Reason)).Inc()
}

// StoreOp implements sessiond.Observer.
func (m *Metrics) StoreOp(op string, d time.Duration, err error) {
	if o, ok := m.ops[op]; ok {
		o.Observe(d.Seconds())
	} else {
		m.storeOps.WithLabelValues(op).Observe(d.Seconds())
	}
	if err != nil {
		switch sessiond.ErrorCode(err) {
		case sessiond.CodeInternal, sessiond.CodeUnavailable, sessiond.CodeStoreUnavailable:
			m.storeErrors.WithLabelValues(op).Inc()
		}
	}
}

// SchedulerLag implements sessiond.Observer.
func (m *Metrics) SchedulerLag(d time.Duration) { m.schedLag.Observe(max(d, 0).Seconds()) }

// SubscriberDropped implements sessiond.Observer.
func (m *Metrics) SubscriberDropped() { m.dropped.Inc() }

// Disposed implements sessiond.Observer.
func (m *Metrics) Disposed(result string) { m.disposals.WithLabelValues(result).Inc() }

// HeartbeatTimeout implements sessiond.Observer.
func (m *Metrics) HeartbeatTimeout(kind string) { m.hbTimeouts.WithLabelValues(kind).Inc() }

// Fenced implements sessiond.Observer.
func (m *Metrics) Fenced() { m.fenced.Inc() }

// RuntimeCalled implements sessiond.Observer.
func (m *Metrics) RuntimeCalled(action, result string, d time.Duration) {
	m.rtCalls.WithLabelValues(action, result).Inc()
	m.rtDuration.WithLabelValues(action).Observe(d.Seconds())
}

// ObserveRequest records one HTTP request; pass it as httpapi.Config.Observe.
func (m *Metrics) ObserveRequest(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Observe(d.Seconds())
}

// AdminAuthFailed counts an admin request refused for its key; pass it as
// httpapi.Config.AuthFailed.
func (m *Metrics) AdminAuthFailed(limited bool) {
	if limited {
		m.authFails.WithLabelValues("rate_limited").Inc()
		return
	}
	m.authFails.WithLabelValues("wrong_key").Inc()
}

// StatsFunc reports the engine's counts; (*sessiond.Manager).Stats is one.
type StatsFunc func(context.Context) (sessiond.Stats, error)

// RegisterStats registers gauges read from stats at each scrape: sessions
// by state, subjects with live sessions, and deadlines scheduled.
func RegisterStats(reg prometheus.Registerer, stats StatsFunc) {
	reg.MustRegister(&statsCollector{stats: stats})
}

var (
	sessionsDesc  = prometheus.NewDesc(ns+"_sessions", "Sessions in the store, by state.", []string{"state"}, nil)
	subjectsDesc  = prometheus.NewDesc(ns+"_subjects", "Subjects holding at least one live session.", nil, nil)
	scheduledDesc = prometheus.NewDesc(ns+"_scheduled_deadlines", "Deadlines held by this node's scheduler.", nil, nil)
)

type statsCollector struct{ stats StatsFunc }

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- sessionsDesc
	ch <- subjectsDesc
	ch <- scheduledDesc
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.stats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(sessionsDesc, err)
		return
	}
	for _, s := range sessiond.States {
		ch <- prometheus.MustNewConstMetric(sessionsDesc, prometheus.GaugeValue, float64(st.Sessions[s]), s.String())
	}
	ch <- prometheus.MustNewConstMetric(subjectsDesc, prometheus.GaugeValue, float64(st.Subjects))
	ch <- prometheus.MustNewConstMetric(scheduledDesc, prometheus.GaugeValue, float64(st.Scheduled))
}

// RegisterEdge registers the WebSocket edge's counters, read from stats at
// each scrape.
func RegisterEdge(reg prometheus.Registerer, stats func() wire.WebSocketStats) {
	reg.MustRegister(&edgeCollector{stats: stats})
}

var (
	wsOpenDesc     = prometheus.NewDesc(ns+"_websocket_connections", "WebSocket connections open on this node.", nil, nil)
	wsConnectsDesc = prometheus.NewDesc(ns+"_websocket_connects_total", "WebSocket connections attached, by outcome: created (a new session), resumed (a disconnected one), attached (an existing live one).", []string{"outcome"}, nil)
	wsRefusedDesc  = prometheus.NewDesc(ns+"_websocket_refused_total", "WebSocket connection attempts refused, by reason: attach (credential, session, per-session and per-subject limits), rate (a connect rate limit: 429), full (the node held its most sockets: 503).", []string{"reason"}, nil)
	wsPendingDesc  = prometheus.NewDesc(ns+"_websocket_detaches_pending", "Connections whose sockets closed but whose detach from their session is still being retried.", nil, nil)
	wsReconDesc    = prometheus.NewDesc(ns+"_websocket_reconciled_total", "Mismatches between this node's sockets and the store's records that the edge's reconcile fixed.", nil, nil)
	wsHBDesc       = prometheus.NewDesc(ns+"_websocket_heartbeat_timeouts_total", "WebSocket connections closed for silence.", nil, nil)
	wsClosesDesc   = prometheus.NewDesc(ns+"_websocket_closes_total", "WebSocket close codes sent by the server, by code; client_closed counts closes by the client or network.", []string{"code"}, nil)
	wsMsgsDesc     = prometheus.NewDesc(ns+"_websocket_messages_total", "Messages received from WebSocket clients.", nil, nil)
)

type edgeCollector struct{ stats func() wire.WebSocketStats }

func (c *edgeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{wsOpenDesc, wsConnectsDesc, wsRefusedDesc, wsPendingDesc, wsReconDesc, wsHBDesc, wsClosesDesc, wsMsgsDesc} {
		ch <- d
	}
}

func (c *edgeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	ch <- prometheus.MustNewConstMetric(wsOpenDesc, prometheus.GaugeValue, float64(st.Open))
	attached := st.Connects - st.Created - st.Resumed
	for outcome, n := range map[string]int64{"created": st.Created, "resumed": st.Resumed, "attached": attached} {
		ch <- prometheus.MustNewConstMetric(wsConnectsDesc, prometheus.CounterValue, float64(n), outcome)
	}
	for reason, n := range map[string]int64{"attach": st.Refused, "rate": st.RefusedRate, "full": st.RefusedFull} {
		ch <- prometheus.MustNewConstMetric(wsRefusedDesc, prometheus.CounterValue, float64(n), reason)
	}
	ch <- prometheus.MustNewConstMetric(wsPendingDesc, prometheus.GaugeValue, float64(st.DetachesPending))
	ch <- prometheus.MustNewConstMetric(wsReconDesc, prometheus.CounterValue, float64(st.Reconciled))
	ch <- prometheus.MustNewConstMetric(wsHBDesc, prometheus.CounterValue, float64(st.HeartbeatTimeouts))
	for code, n := range st.CloseCodes {
		ch <- prometheus.MustNewConstMetric(wsClosesDesc, prometheus.CounterValue, float64(n), code)
	}
	ch <- prometheus.MustNewConstMetric(wsClosesDesc, prometheus.CounterValue, float64(st.ClientClosed), "client_closed")
	ch <- prometheus.MustNewConstMetric(wsMsgsDesc, prometheus.CounterValue, float64(st.Messages))
}
