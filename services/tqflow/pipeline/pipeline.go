// Package pipeline composes tqflow's services into one process: the
// fetcher, and the workers of the enabled jobs, sharing one NATS
// connection or each with its own. tqflow run uses it, and so do the
// end-to-end tests and benchmarks, so that they exercise what operators
// run.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/obs"
	"github.com/tqflow/tqflow/pkg/threatq"
	"github.com/tqflow/tqflow/schemas"
	enrichersvc "github.com/tqflow/tqflow/services/enricher/service"
	exportersvc "github.com/tqflow/tqflow/services/exporter/service"
	fetchersvc "github.com/tqflow/tqflow/services/fetcher/service"
	loadersvc "github.com/tqflow/tqflow/services/signature-loader/service"
	writersvc "github.com/tqflow/tqflow/services/writer/service"
)

// Config is every service's configuration for one process.
type Config struct {
	Fetcher  fetchersvc.Config
	Enricher enrichersvc.Config
	Writer   writersvc.Config
	Loader   loadersvc.Config
	Exporter exportersvc.Config
}

func (pc *Config) has(job string) bool { return slices.Contains(pc.Fetcher.Jobs, job) }

// Parse reads the configurations the enabled jobs need, reporting every
// problem of all of them at once.
func (pc *Config) Parse(env *app.Env) error {
	// The workers' consumer settings take their defaults from NewConfig.
	pc.Enricher, pc.Writer, pc.Exporter = enrichersvc.NewConfig(), writersvc.NewConfig(), exportersvc.NewConfig()
	if err := env.Parse(&pc.Fetcher); err != nil {
		// Still parse the rest, so the operator sees every problem.
		return app.JoinUsage(err, env.ParseAll(&pc.Enricher, &pc.Writer))
	}
	var need []any
	if pc.has(schemas.JobCTR) {
		need = append(need, &pc.Enricher)
	}
	if pc.has(fetchersvc.JobET) {
		need = append(need, &pc.Loader)
	}
	if pc.has(schemas.JobMISP) {
		need = append(need, &pc.Exporter)
	}
	if pc.has(schemas.JobCTR) || pc.has(fetchersvc.JobET) {
		need = append(need, &pc.Writer)
	}
	if err := env.ParseAll(need...); err != nil {
		return err
	}
	pc.Fetcher.Instance = env.Instance
	pc.Enricher.Instance = env.Instance
	pc.Loader.Instance = env.Instance
	pc.Exporter.Instance = env.Instance
	return nil
}

// Instrument has every API client of the pipeline (ThreatQ, CTR, MISP and
// ET) time its calls on m, as tqflow_api_request_duration_seconds by
// system; call it before [New], which builds the fetcher's clients.
func (pc *Config) Instrument(m *obs.Metrics) {
	tq := m.WrapTransport(obs.SystemThreatQ)
	pc.Fetcher.ThreatQ.WrapTransport = tq
	pc.Writer.ThreatQ.WrapTransport = tq // The signature-loader's catalog too.
	pc.Fetcher.ET.ET.WrapTransport = m.WrapTransport(obs.SystemET)
	pc.Enricher.CTR.WrapTransport = m.WrapTransport(obs.SystemCTR)
	pc.Exporter.MISP.WrapTransport = m.WrapTransport(obs.SystemMISP)
}

// Buses gives each service its NATS connection; a nil one uses Default.
// Separate connections let a test crash one service (close its connection
// without draining) while the others run on.
type Buses struct {
	Default, Fetcher, Enricher, Writer *bus.Bus
}

func (b Buses) pick(x *bus.Bus) *bus.Bus {
	if x != nil {
		return x
	}
	return b.Default
}

// Pipeline is every service of the enabled jobs, in one process.
type Pipeline struct {
	cfg     Config
	buses   Buses
	log     *slog.Logger
	fetcher *fetchersvc.Fetcher

	enricher enrichersvc.Stats
	writer   writersvc.Stats
	loader   loadersvc.Stats
	exporter exportersvc.Stats
	dead     atomic.Int64
	observe  func(bus.ConsumerSpec, *bus.Message, bus.Outcome, error)
}

// Observe has f called for every message the pipeline's workers settle
// (for metrics); call it before starting the workers.
func (p *Pipeline) Observe(f func(bus.ConsumerSpec, *bus.Message, bus.Outcome, error)) { p.observe = f }

// New builds the pipeline; nothing runs until RunOnce or StartWorkers.
func New(ctx context.Context, cfg Config, buses Buses, log *slog.Logger) (*Pipeline, error) {
	f, err := fetchersvc.New(ctx, cfg.Fetcher, buses.pick(buses.Fetcher), log)
	if err != nil {
		return nil, err
	}
	return &Pipeline{cfg: cfg, buses: buses, log: log, fetcher: f}, nil
}

// EnricherStats returns what the pipeline's enricher counts, and whether
// CTR refuses it (for readiness and metrics).
func (p *Pipeline) EnricherStats() *enrichersvc.Stats { return &p.enricher }

// Fetcher returns the pipeline's fetcher.
func (p *Pipeline) Fetcher() *fetchersvc.Fetcher { return p.fetcher }

func (p *Pipeline) settled(spec bus.ConsumerSpec, m *bus.Message, o bus.Outcome, err error) {
	if o == bus.DeadLettered {
		p.dead.Add(1)
	}
	if p.observe != nil {
		p.observe(spec, m, o, err)
	}
}

// consumers returns the durable consumers the enabled jobs use, by stream.
func (p *Pipeline) consumers() [][2]string {
	var cs [][2]string
	if p.cfg.has(schemas.JobCTR) {
		cs = append(cs, [2]string{bus.StreamIndicators, p.cfg.Enricher.Spec().Name})
	}
	if p.cfg.has(fetchersvc.JobET) {
		cs = append(cs, [2]string{bus.StreamRulesets, p.cfg.Loader.Spec().Name})
	}
	if p.cfg.has(schemas.JobMISP) {
		cs = append(cs, [2]string{bus.StreamIndicators, p.cfg.Exporter.Spec().Name})
	}
	if p.cfg.has(schemas.JobCTR) || p.cfg.has(fetchersvc.JobET) {
		cs = append(cs, [2]string{bus.StreamWrites, writersvc.ConsumerName})
	}
	return cs
}

// StartWorkers runs the enabled jobs' workers until ctx ends; wait returns
// their joined errors after they drained.
func (p *Pipeline) StartWorkers(ctx context.Context) (wait func() error) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	run := func(name string, fn func() error) {
		wg.Go(func() {
			if err := fn(); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				mu.Unlock()
			}
		})
	}
	if p.cfg.has(schemas.JobCTR) {
		run("enricher", func() error {
			return enrichersvc.Run(ctx, p.cfg.Enricher, p.buses.pick(p.buses.Enricher), p.log, &p.enricher, p.settled)
		})
	}
	if p.cfg.has(fetchersvc.JobET) {
		run("signature-loader", func() error {
			tq, err := threatq.New(p.cfg.Writer.ThreatQ)
			if err != nil {
				return err
			}
			return loadersvc.Run(ctx, p.cfg.Loader, p.buses.Default, loadersvc.ThreatQCatalog{TQ: tq}, p.log, &p.loader, p.settled)
		})
	}
	if p.cfg.has(schemas.JobMISP) {
		run("exporter", func() error {
			return exportersvc.Run(ctx, p.cfg.Exporter, p.buses.Default, p.log, &p.exporter, p.settled)
		})
	}
	if p.cfg.has(schemas.JobCTR) || p.cfg.has(fetchersvc.JobET) {
		run("writer", func() error {
			return writersvc.Run(ctx, p.cfg.Writer, p.buses.pick(p.buses.Writer), p.log, &p.writer, p.settled)
		})
	}
	return func() error {
		wg.Wait()
		return errors.Join(errs...)
	}
}

// WaitDrained waits until every consumer of the pipeline has nothing
// pending and nothing unacknowledged, twice in a row (a message can sit
// between an ack upstream and a publish downstream for an instant).
func (p *Pipeline) WaitDrained(ctx context.Context) error {
	calm := 0
	for calm < 2 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		busy := false
		for _, c := range p.consumers() {
			cons, err := p.buses.Default.JetStream().Consumer(ctx, c[0], c[1])
			if err != nil {
				busy = true // Not created yet.
				break
			}
			info, err := cons.Info(ctx)
			if err != nil {
				return fmt.Errorf("read consumer %s: %w", c[1], err)
			}
			if info.NumPending > 0 || info.NumAckPending > 0 {
				busy = true
				break
			}
		}
		if busy {
			calm = 0
		} else {
			calm++
		}
	}
	return nil
}

// waitDrainedOrRefused is WaitDrained, except that a run whose CTR
// refuses every call (a missing scope, credentials refused) ends at once
// with that reason: the messages stay in the stream for a later run.
func (p *Pipeline) waitDrainedOrRefused(ctx context.Context) error {
	if !p.cfg.has(schemas.JobCTR) {
		return p.WaitDrained(ctx)
	}
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.WaitDrained(dctx) }()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-tick.C:
			if err := p.enricher.Refused(); err != nil {
				cancel()
				<-done
				return fmt.Errorf("enricher: ctr refuses every call; the indicators stay queued for the next run: %w", err)
			}
		}
	}
}

// Summary is what a --once run did.
type Summary struct {
	Reports    map[string]fetchersvc.Report
	ET         *fetchersvc.ETReport
	Enricher   *enrichersvc.Stats
	Writer     *writersvc.Stats
	Loader     *loadersvc.Stats
	Exporter   *exportersvc.Stats
	DeadLetter int64
	Elapsed    time.Duration
}

// RunOnce fetches once, waits until the workers have processed everything,
// stops them and returns the summary.
func (p *Pipeline) RunOnce(ctx context.Context, historical *time.Time) (Summary, error) {
	start := time.Now()
	wctx, stop := context.WithCancel(ctx)
	wait := p.StartWorkers(wctx)
	reps, ferr := p.fetcher.RunOnce(ctx, historical)
	var derr error
	if ferr == nil {
		derr = p.waitDrainedOrRefused(ctx)
	}
	stop()
	werr := wait()
	s := Summary{Reports: reps.Indicators, ET: reps.ET, Enricher: &p.enricher, Writer: &p.writer, Loader: &p.loader, Exporter: &p.exporter,
		DeadLetter: p.dead.Load(), Elapsed: time.Since(start)}
	return s, errors.Join(ferr, derr, werr)
}

// Print writes the summary as a table.
func (s Summary) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\ttqflow run summary\t")
	if r, ok := s.Reports[schemas.JobCTR]; ok {
		fmt.Fprintf(tw, "indicators read\t%d\t\n", r.Read)
		fmt.Fprintf(tw, "new to the pipeline\t%d\t\n", r.Published-r.Duplicates)
		fmt.Fprintf(tw, "enriched (CTR had context)\t%d\t\n", s.Enricher.Enriched.Load())
		fmt.Fprintf(tw, "no CTR context (nothing written)\t%d\t\n", s.Enricher.NoContext.Load())
		fmt.Fprintf(tw, "already up to date (nothing written)\t%d\t\n", s.Enricher.Unchanged.Load())
		fmt.Fprintf(tw, "skipped (type CTR does not support)\t%d\t\n", s.Enricher.Unsupported.Load())
		fmt.Fprintf(tw, "answered from cache\t%d\t\n", s.Enricher.CacheHits.Load())
		fmt.Fprintf(tw, "CTR calls\t%d\t\n", s.Enricher.Calls.Load())
		mods := s.Enricher.ModuleErrors()
		for _, m := range slices.Sorted(maps.Keys(mods)) {
			fmt.Fprintf(tw, "CTR module errors: %s\t%d\t\n", m, mods[m])
		}
		if n := s.Enricher.Incomplete.Load(); n > 0 {
			fmt.Fprintf(tw, "left to a later run (CTR modules kept failing)\t%d\t\n", n)
		}
		fmt.Fprintf(tw, "indicators written\t%d\t\n", s.Writer.Indicators.Load())
		fmt.Fprintf(tw, "attributes written\t%d\t\n", s.Writer.Attributes.Load())
		fmt.Fprintf(tw, "old attribute values removed\t%d\t\n", s.Writer.Removed.Load())
	}
	if r, ok := s.Reports[schemas.JobMISP]; ok {
		fmt.Fprintf(tw, "MISP: Active indicators at or above the score read\t%d\t\n", r.Read-r.Skipped)
		fmt.Fprintf(tw, "MISP: attributes added\t%d\t\n", s.Exporter.Saved.Load())
		fmt.Fprintf(tw, "MISP: attributes already there\t%d\t\n", s.Exporter.Existing.Load())
		fmt.Fprintf(tw, "MISP: events created\t%d\t\n", s.Exporter.Events.Load())
		fmt.Fprintf(tw, "MISP: types MISP has no place for\t%d\t\n", s.Exporter.Unsupported.Load())
	}
	if s.ET != nil {
		for _, src := range s.ET.Sources {
			state := "unchanged (nothing downloaded)"
			if src.Changed {
				state = fmt.Sprintf("downloaded, %d rules files published", src.Published-src.Duplicates)
			}
			if src.Err != nil {
				state = "failed: " + src.Err.Error()
			}
			fmt.Fprintf(tw, "ET %s\t%s\t\n", src.Source, state)
		}
		fmt.Fprintf(tw, "rules parsed\t%d\t\n", s.Loader.Rules.Load())
		fmt.Fprintf(tw, "signatures written (new or changed)\t%d\t\n", s.Writer.Signatures.Load())
	}
	fmt.Fprintf(tw, "dead letters\t%d\t\n", s.DeadLetter)
	fmt.Fprintf(tw, "elapsed\t%s\t\n", s.Elapsed.Round(time.Millisecond))
	_ = tw.Flush()
}
