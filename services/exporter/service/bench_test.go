package service_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/bus/bustest"
	"github.com/tqflow/tqflow/pkg/sim"
	"github.com/tqflow/tqflow/pkg/sim/mispsim"
)

// seedRate is the seed connector's published figure: 9,682 indicators in
// 262 s (shared/seeds/misp-export-guide.txt), about 37 per second.
const seedRate = 9682.0 / 262.0

// BenchmarkExport exports 100,000 indicators of one day (four events)
// against the MISP simulator, with no latency and with 200 ms added to
// every request, and reports indicators per second, the MISP requests made
// and the ratio to the seed connector's rate. Run it with
//
//	go test ./services/exporter/service -run '^$' -bench BenchmarkExport -benchtime 1x
func BenchmarkExport(b *testing.B) {
	const n = 100_000
	for _, latency := range []time.Duration{0, 200 * time.Millisecond} {
		b.Run(fmt.Sprintf("latency=%s", latency), func(b *testing.B) {
			var elapsed time.Duration
			var requests int64
			for range b.N {
				b.StopTimer()
				s, url := newMISP(b, mispsim.Options{Seed: 1})
				bs := bustest.New(b)
				publish(b, bs, generate(n, 0, day1))
				s.Faults.Set(sim.Faults{Latency: latency})
				cfg := testConfig(url)
				cfg.Concurrency, cfg.Parallel = 8, 4
				start := time.Now()
				b.StartTimer()
				run(b, bs, cfg, n, 10*time.Minute)
				b.StopTimer()
				elapsed += time.Since(start)
				requests += s.Stats.Total()
				if got := len(s.Events()); got != 4 {
					b.Fatalf("%d events, want 4", got)
				}
			}
			rate := float64(n) * float64(b.N) / elapsed.Seconds()
			b.ReportMetric(rate, "indicators/s")
			b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
			b.ReportMetric(rate/seedRate, "x_seed")
		})
	}
}
