package obs

import (
	"context"
	"errors"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tqflow/tqflow/pkg/bus"
)

// Namespace prefixes every metric name.
const Namespace = "tqflow"

// Metrics is one process's metrics, on a registry of its own. It is safe
// for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	settled      *prometheus.CounterVec
	redeliveries *prometheus.CounterVec
	deadLetters  *prometheus.CounterVec
	handler      *prometheus.HistogramVec
	api          *prometheus.HistogramVec
	pending      *prometheus.GaugeVec
	ackPending   *prometheus.GaugeVec
	redelivered  *prometheus.GaugeVec
	lastSuccess  *prometheus.GaugeVec
}

// New returns the metrics of a service (its name becomes the service label
// of every metric), with Go runtime and process metrics and build
// information registered.
func New(service string) *Metrics {
	reg := prometheus.NewRegistry()
	r := prometheus.WrapRegistererWith(prometheus.Labels{"service": service}, reg)
	f := func(c prometheus.Collector) prometheus.Collector { r.MustRegister(c); return c }
	m := &Metrics{reg: reg}
	m.settled = f(prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "messages_settled_total",
		Help: "Messages settled, by consumer and outcome (acked, retried, dead_lettered).",
	}, []string{"consumer", "outcome"})).(*prometheus.CounterVec)
	m.redeliveries = f(prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "redeliveries_total",
		Help: "Settlements of messages delivered more than once, by consumer.",
	}, []string{"consumer"})).(*prometheus.CounterVec)
	m.deadLetters = f(prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "dead_letters_total",
		Help: "Messages dead-lettered, by consumer and reason (permanent, max_deliver).",
	}, []string{"consumer", "reason"})).(*prometheus.CounterVec)
	m.handler = f(prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "handler_duration_seconds",
		Help:    "Duration of handler calls (a whole batch for batch handlers), by consumer.",
		Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"consumer"})).(*prometheus.HistogramVec)
	m.api = f(prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "api_request_duration_seconds",
		Help:    "Duration of HTTP calls to outside systems, by system and status class (2xx..5xx, error).",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"system", "code"})).(*prometheus.HistogramVec)
	gauge := func(name, help string) *prometheus.GaugeVec {
		return f(prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help},
			[]string{"stream", "consumer"})).(*prometheus.GaugeVec)
	}
	m.pending = gauge("consumer_pending_messages", "Messages of the stream the consumer has not been delivered yet (its lag).")
	m.ackPending = gauge("consumer_ack_pending_messages", "Messages delivered to the consumer and not acknowledged yet.")
	m.redelivered = gauge("consumer_redelivered_messages", "Messages the consumer has redelivered and not acknowledged yet.")
	m.lastSuccess = f(prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "last_success_timestamp_seconds",
		Help: "Unix time of the last successful run of a job instance.",
	}, []string{"job", "instance"})).(*prometheus.GaugeVec)
	version, revision := buildVersion()
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "build_info",
		Help:        "Build information; always 1.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": goVersion()},
	}, func() float64 { return 1 }))
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func buildVersion() (version, revision string) {
	version, revision = "(unknown)", ""
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return version, revision
	}
	if bi.Main.Version != "" {
		version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			revision = s.Value
		}
	}
	return version, revision
}

func goVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.GoVersion
	}
	return ""
}

// Registry returns the registry the metrics are on, for a service's own
// metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler returns the /metrics handler.
func (m *Metrics) Handler() http.Handler { return handlerFor(m.reg) }

// OnSettle counts a settled message, a dead-lettered one by the reason
// the runner gives. It has the signature of [bus.RunOptions.OnSettle].
func (m *Metrics) OnSettle(s bus.Settlement) {
	m.settled.WithLabelValues(s.Spec.Name, s.Outcome.String()).Inc()
	if s.Message != nil && s.Message.Delivered > 1 {
		m.redeliveries.WithLabelValues(s.Spec.Name).Inc()
	}
	if s.Outcome == bus.DeadLettered {
		m.deadLetters.WithLabelValues(s.Spec.Name, s.Reason).Inc()
	}
}

// TimeHandler returns h, timing each call as consumer's.
func (m *Metrics) TimeHandler(consumer string, h bus.Handler) bus.Handler {
	obs := m.handler.WithLabelValues(consumer)
	return func(ctx context.Context, msg *bus.Message) error {
		start := time.Now()
		defer func() { obs.Observe(time.Since(start).Seconds()) }()
		return h(ctx, msg)
	}
}

// TimeBatch returns h, timing each call (one batch) as consumer's.
func (m *Metrics) TimeBatch(consumer string, h bus.BatchHandler) bus.BatchHandler {
	obs := m.handler.WithLabelValues(consumer)
	return func(ctx context.Context, ms []*bus.Message) []error {
		start := time.Now()
		defer func() { obs.Observe(time.Since(start).Seconds()) }()
		return h(ctx, ms)
	}
}

// RunDone records a successful run of a job instance, finished at at.
func (m *Metrics) RunDone(job, instance string, at time.Time) {
	m.lastSuccess.WithLabelValues(job, instance).Set(float64(at.UnixNano()) / 1e9)
}

// observeAPI records one API call.
func (m *Metrics) observeAPI(system string, status int, err error, d time.Duration) {
	m.api.WithLabelValues(system, statusClass(status, err)).Observe(d.Seconds())
}

func statusClass(status int, err error) string {
	if err != nil || status < 100 || status > 599 {
		return "error"
	}
	return strconv.Itoa(status/100) + "xx"
}

// errNilMetrics is returned by constructors given no metrics.
var errNilMetrics = errors.New("no metrics")
