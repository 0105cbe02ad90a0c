package service

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tqflow/tqflow/pkg/obs"
)

// Check is a readiness check (obs.Check) failing, with the reason, while
// CTR refuses every call (a missing scope, credentials refused).
func Check(stats *Stats) func(context.Context) error {
	return func(context.Context) error {
		if err := stats.Refused(); err != nil {
			return fmt.Errorf("ctr refuses every call (fix the API client, then it resumes by itself): %w", err)
		}
		return nil
	}
}

// Register adds the enricher's CTR metrics to reg:
// tqflow_ctr_refused (1 while CTR refuses every call),
// tqflow_ctr_calls_total and tqflow_ctr_module_errors_total by module.
func Register(reg prometheus.Registerer, stats *Stats) error {
	refused := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: obs.Namespace, Name: "ctr_refused",
		Help: "1 while CTR refuses every call (403 missing_scope or credentials refused): see /readyz and the log for what to fix.",
	}, func() float64 {
		if stats.Refused() != nil {
			return 1
		}
		return 0
	})
	calls := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: obs.Namespace, Name: "ctr_calls_total", Help: "CTR enrich calls made.",
	}, func() float64 { return float64(stats.Calls.Load()) })
	for _, c := range []prometheus.Collector{refused, calls, moduleErrors{stats}} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register enricher metrics: %w", err)
		}
	}
	return nil
}

var moduleErrorsDesc = prometheus.NewDesc(obs.Namespace+"_ctr_module_errors_total",
	"Per-module errors CTR reported inside 200 answers (relay upstream limits, timeouts), by module.",
	[]string{"module"}, nil)

// moduleErrors exports Stats' module error counts.
type moduleErrors struct{ stats *Stats }

func (m moduleErrors) Describe(ch chan<- *prometheus.Desc) { ch <- moduleErrorsDesc }

func (m moduleErrors) Collect(ch chan<- prometheus.Metric) {
	for mod, n := range m.stats.ModuleErrors() {
		if c, err := prometheus.NewConstMetric(moduleErrorsDesc, prometheus.CounterValue, float64(n), mod); err == nil {
			ch <- c
		}
	}
}
