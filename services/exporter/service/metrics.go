package service

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tqflow/tqflow/pkg/obs"
)

var (
	attributesDesc = prometheus.NewDesc(obs.Namespace+"_misp_attributes_total",
		"Attributes the exporter sent to MISP, by outcome: saved (stored), existing (MISP held the exact value), "+
			"merged (MISP took it for another value of the event: its duplicate rule ignores case and accents, "+
			"so the exact value is not in MISP).",
		[]string{"outcome"}, nil)
	eventsDesc = prometheus.NewDesc(obs.Namespace+"_misp_events_total",
		"MISP events by what the exporter did with them: adopted (found under our UUID after lost state), "+
			"foreign (found under our UUID but not ours: left alone), published.",
		[]string{"outcome"}, nil)
)

// Register adds the exporter's MISP outcome counters to reg:
// tqflow_misp_attributes_total and tqflow_misp_events_total by outcome.
func Register(reg prometheus.Registerer, stats *Stats) error {
	if err := reg.Register(collector{stats}); err != nil {
		return fmt.Errorf("register exporter metrics: %w", err)
	}
	return nil
}

// collector exports Stats' counts.
type collector struct{ s *Stats }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- attributesDesc
	ch <- eventsDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	for outcome, n := range map[string]int64{
		"saved": c.s.Saved.Load(), "existing": c.s.Existing.Load(), "merged": c.s.Merged.Load(),
	} {
		ch <- prometheus.MustNewConstMetric(attributesDesc, prometheus.CounterValue, float64(n), outcome)
	}
	for outcome, n := range map[string]int64{
		"adopted": c.s.Adopted.Load(), "foreign": c.s.Foreign.Load(), "published": c.s.Published.Load(),
	} {
		ch <- prometheus.MustNewConstMetric(eventsDesc, prometheus.CounterValue, float64(n), outcome)
	}
}
