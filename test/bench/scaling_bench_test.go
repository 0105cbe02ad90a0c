package bench_test

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/pkg/bus/bustest"
	"github.com/tqflow/tqflow/pkg/sim"
	"github.com/tqflow/tqflow/pkg/sim/sandbox"
	enrichersvc "github.com/tqflow/tqflow/services/enricher/service"
	"github.com/tqflow/tqflow/services/tqflow/pipeline"
)

// BenchmarkEnricherScaling runs the CTR job with 1, 2 and 4 enricher
// replicas (each on its own connection, sharing the durable consumer, as
// containers would) against a CTR that takes 100 ms per call, and prints
// the throughput as a table. Each replica runs ENRICHER_CONCURRENCY=2
// batches of 50 (one CTR call each), so the CTR latency, not the CPU, sets
// the pace until MaxAckPending binds.
func BenchmarkEnricherScaling(b *testing.B) {
	n := benchSize(b, 20_000)
	type row struct {
		replicas int
		rate     float64
		elapsed  time.Duration
		calls    int64
	}
	for range b.N {
		var rows []row
		for _, replicas := range []int{1, 2, 4} {
			b.StopTimer()
			sb, err := sandbox.Start(sandbox.Options{Seed: 9, Indicators: n, ContextShare: 0.3, CTRModuleErrors: -1})
			if err != nil {
				b.Fatal(err)
			}
			sb.CTR.Faults.Set(sim.Faults{Latency: 100 * time.Millisecond, PathPrefix: "/iroh/iroh-enrich/"})
			srv := bustest.Server(b)
			vars := sb.Env()
			vars["JOBS"] = "ctr"
			vars["ENRICHER_CONCURRENCY"] = "2"
			vars["ENRICHER_BATCH_SIZE"] = "50"
			vars["ENRICHER_CACHE"] = "false"
			vars["CTR_MAX_REQUESTS_PER_HOUR"] = "100000000" // No org limit in this simulator.
			env := &app.Env{Resolved: &app.Resolved{Vars: vars, Instance: "default", Log: slog.New(slog.DiscardHandler)}}
			var pc pipeline.Config
			if err := pc.Parse(env); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			p, err := pipeline.New(ctx, pc, pipeline.Buses{Default: bustest.Connect(b, srv)}, env.Log)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			start := time.Now()
			wctx, stop := context.WithCancel(ctx)
			wait := p.StartWorkers(wctx) // The first replica, and the writer.
			var wg sync.WaitGroup
			for range replicas - 1 {
				bb := bustest.Connect(b, srv)
				wg.Go(func() { _ = enrichersvc.Run(wctx, pc.Enricher, bb, env.Log, &enrichersvc.Stats{}, nil) })
			}
			if _, err := p.Fetcher().RunOnce(ctx, nil); err != nil {
				b.Fatal(err)
			}
			if err := p.WaitDrained(ctx); err != nil {
				b.Fatal(err)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			stop()
			wg.Wait()
			_ = wait()
			rows = append(rows, row{replicas, float64(n) / elapsed.Seconds(), elapsed, sb.CTR.Stats.Total()})
			sb.Close()
			b.ReportMetric(float64(n)/elapsed.Seconds(), "indicators/s-"+strconv.Itoa(replicas)+"x")
		}
		fmt.Printf("\nCTR job, %d indicators, CTR at 100 ms per call, 2 batches of 50 per enricher replica:\n", n)
		fmt.Printf("  %-9s %14s %10s %10s %9s\n", "replicas", "indicators/s", "elapsed", "CTR calls", "speed-up")
		for _, r := range rows {
			fmt.Printf("  %-9d %14.0f %10s %10d %8.2fx\n", r.replicas, r.rate, r.elapsed.Round(time.Millisecond), r.calls, r.rate/rows[0].rate)
		}
		fmt.Println()
	}
}
