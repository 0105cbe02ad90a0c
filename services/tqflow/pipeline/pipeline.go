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
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tqflow/tqflow/pkg/app"
	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/config"
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
	// A fetcher problem does not stop the rest being parsed: the operator
	// sees every problem of the enabled jobs (JOBS is read even when the
	// fetcher's configuration is invalid), and none of the others'.
	ferr := env.Parse(&pc.Fetcher)
	var need []any
	if pc.has(schemas.JobCTR) {
		need = append(need, &pc.Enricher)
	}
	if pc.has(schemas.JobET) {
		need = append(need, &pc.Loader)
	}
	if pc.has(schemas.JobMISP) {
		need = append(need, &pc.Exporter)
	}
	if pc.has(schemas.JobCTR) || pc.has(schemas.JobET) {
		need = append(need, &pc.Writer)
	}
	if err := app.JoinUsage(ferr, env.ParseAll(need...)); err != nil {
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
	pc.Writer.ThreatQ.WrapTransport = tq
	pc.Loader.ThreatQ.WrapTransport = tq
	pc.Fetcher.ET.ET.WrapTransport = m.WrapTransport(obs.SystemET)
	pc.Enricher.CTR.WrapTransport = m.WrapTransport(obs.SystemCTR)
	pc.Exporter.MISP.WrapTransport = m.WrapTransport(obs.SystemMISP)
}

// Buses gives each service its NATS connection; a nil one uses Default.
// Separate connections let a test crash one service (close its connection
// without draining) while the others run on.
// Each service on its own connection also lets a test run each as its own
// NATS user, as compose does.
type Buses struct {
	Default, Fetcher, Enricher, Writer, Loader, Exporter *bus.Bus
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
	observe  []func(bus.Settlement)

	// Set by StartWorkers: the workers' group context, and channels closed
	// when every worker consumes and when one stopped.
	gctx            context.Context
	started, failed chan struct{}
}

// Observe has f called, after those given before, for every message the
// pipeline's workers settle (for metrics); call it before starting the
// workers.
func (p *Pipeline) Observe(f func(bus.Settlement)) {
	p.observe = append(p.observe, f)
}

// statusNames are the status names the enabled jobs write.
func (pc *Config) statusNames() []threatq.StatusName {
	var names []threatq.StatusName
	if pc.has(schemas.JobCTR) {
		names = append(names, threatq.StatusName{Var: "CTR_STATUS", Name: pc.Enricher.Status})
	}
	if pc.has(schemas.JobET) {
		names = append(names,
			threatq.StatusName{Var: "ET_STANDARD_STATUS", Name: pc.Loader.StandardStatus, Signature: true},
			threatq.StatusName{Var: "ET_NONSTANDARD_STATUS", Name: pc.Loader.NonStandardStatus, Signature: true},
			threatq.StatusName{Var: "ET_RETIRED_STATUS", Name: pc.Loader.RetiredStatus, Signature: true})
	}
	return names
}

// checkStatuses resolves every configured status name in ThreatQ, exactly
// as spelt; a name it does not have is a [*config.Error] naming it and
// listing the instance's statuses, before anything is fetched or
// published.
func checkStatuses(ctx context.Context, cfg Config) error {
	names := cfg.statusNames()
	if len(names) == 0 {
		return nil
	}
	tq, err := threatq.New(cfg.Writer.ThreatQ)
	if err != nil {
		return fmt.Errorf("check configured statuses: %w", err)
	}
	_, err = tq.ResolveStatuses(ctx, names)
	var unknown *threatq.UnknownStatusError
	if errors.As(err, &unknown) {
		return &config.Error{Err: err}
	}
	if err != nil {
		return fmt.Errorf("check configured statuses: %w", err)
	}
	return nil
}

// New builds the pipeline; nothing runs until RunOnce or StartWorkers.
// cfg is taken as valid, as [Config.Parse] returns it: the enabled jobs'
// configurations validated once, where they are read.
// It first resolves every configured status name in ThreatQ.
func New(ctx context.Context, cfg Config, buses Buses, log *slog.Logger) (*Pipeline, error) {
	if err := checkStatuses(ctx, cfg); err != nil {
		return nil, err
	}
	f, err := fetchersvc.New(ctx, cfg.Fetcher, buses.pick(buses.Fetcher), log)
	if err != nil {
		return nil, err
	}
	return &Pipeline{cfg: cfg, buses: buses, log: log, fetcher: f}, nil
}

// EnricherStats returns what the pipeline's enricher counts, and whether
// CTR refuses it (for readiness and metrics).
func (p *Pipeline) EnricherStats() *enrichersvc.Stats { return &p.enricher }

// ExporterStats is what the MISP exporter has done so far.
func (p *Pipeline) ExporterStats() *exportersvc.Stats { return &p.exporter }

// Fetcher returns the pipeline's fetcher.
func (p *Pipeline) Fetcher() *fetchersvc.Fetcher { return p.fetcher }

func (p *Pipeline) settled(s bus.Settlement) {
	if s.Outcome == bus.DeadLettered {
		p.dead.Add(1)
	}
	for _, f := range p.observe {
		f(s)
	}
}

// specs returns the durable consumers the enabled jobs use.
func (p *Pipeline) specs() []bus.ConsumerSpec {
	var cs []bus.ConsumerSpec
	if p.cfg.has(schemas.JobCTR) {
		cs = append(cs, p.cfg.Enricher.Spec())
	}
	if p.cfg.has(schemas.JobET) {
		cs = append(cs, p.cfg.Loader.Spec())
	}
	if p.cfg.has(schemas.JobMISP) {
		cs = append(cs, p.cfg.Exporter.Spec())
	}
	if p.cfg.has(schemas.JobCTR) || p.cfg.has(schemas.JobET) {
		cs = append(cs, p.cfg.Writer.Spec())
	}
	return cs
}

// consumers returns the durable consumers the enabled jobs use, by stream.
func (p *Pipeline) consumers() [][2]string {
	var cs [][2]string
	for _, s := range p.specs() {
		cs = append(cs, [2]string{s.Stream, s.Name})
	}
	return cs
}

// Instrument feeds m and srv from the pipeline through the wiring the
// separate services use ([obs.Wire]): every handler of every worker
// timed, every consumer of the enabled jobs part of readiness and polled
// for its lag every interval ([obs.PollInterval] when <= 0), the
// fetcher's last success per job and instance (from its checkpoints
// first), and every settled message counted. Call it once, before the workers start; the polling
// stops when ctx ends.
func (p *Pipeline) Instrument(ctx context.Context, m *obs.Metrics, srv *obs.Server, interval time.Duration) {
	b := p.buses
	w := obs.Wire(ctx, m, srv, interval, b.Default, b.Fetcher, b.Enricher, b.Writer, b.Loader, b.Exporter)
	w.Watch(p.specs()...)
	if err := w.LoadRuns(ctx); err != nil {
		p.log.Warn("load last runs", "err", err)
	}
	p.fetcher.OnSuccess = w.OnSuccess
	p.Observe(m.OnSettle)
}

// ErrWorkerStopped is a worker returning while the pipeline still runs:
// the pipeline stops as a whole.
var ErrWorkerStopped = errors.New("worker stopped")

// StartWorkers runs the enabled jobs' workers until ctx ends or one of
// them stops, which stops the others: a pipeline missing a worker is not
// running. wait returns the first worker's error (its reason for stopping)
// after they all drained; [Pipeline.Failed] is closed when one stopped.
func (p *Pipeline) StartWorkers(ctx context.Context) (wait func() error) {
	g, gctx := errgroup.WithContext(ctx)
	p.failed, p.gctx = make(chan struct{}), gctx
	started := map[string]bool{}
	var mu sync.Mutex
	want := p.consumers()
	p.started = make(chan struct{})
	var startedOnce sync.Once
	hook := func(spec bus.ConsumerSpec) {
		mu.Lock()
		defer mu.Unlock()
		started[spec.Name] = true
		for _, c := range want {
			if !started[c[1]] {
				return
			}
		}
		startedOnce.Do(func() { close(p.started) })
	}
	var unhook []func()
	for _, b := range []*bus.Bus{p.buses.Default, p.buses.Fetcher, p.buses.Enricher, p.buses.Writer, p.buses.Loader, p.buses.Exporter} {
		if b != nil {
			unhook = append(unhook, b.NotifyConsuming(hook))
		}
	}
	if len(want) == 0 {
		startedOnce.Do(func() { close(p.started) })
	}
	var failOnce sync.Once
	run := func(name string, fn func() error) {
		g.Go(func() (err error) {
			defer func() {
				if r := recover(); r != nil {
					p.log.Error("worker panic", "worker", name, "panic", r, "stack", string(debug.Stack()))
					err = fmt.Errorf("%s: %w: panic: %v", name, ErrWorkerStopped, r)
				}
				if err != nil && ctx.Err() == nil {
					failOnce.Do(func() {
						p.log.Error("worker stopped; stopping the pipeline", "worker", name, "err", err)
						close(p.failed)
					})
				}
			}()
			err = fn()
			switch {
			case err != nil:
				return fmt.Errorf("%s: %w", name, err)
			case ctx.Err() == nil && gctx.Err() == nil:
				return fmt.Errorf("%s: %w", name, ErrWorkerStopped)
			}
			return nil
		})
	}
	if p.cfg.has(schemas.JobCTR) {
		run("enricher", func() error {
			return enrichersvc.Run(gctx, p.cfg.Enricher, p.buses.pick(p.buses.Enricher), p.log, &p.enricher, p.settled)
		})
	}
	if p.cfg.has(schemas.JobET) {
		run("signature-loader", func() error {
			cat, err := loadersvc.NewThreatQCatalog(p.cfg.Loader.ThreatQ)
			if err != nil {
				return err
			}
			return loadersvc.Run(gctx, p.cfg.Loader, p.buses.pick(p.buses.Loader), cat, p.log, &p.loader, p.settled)
		})
	}
	if p.cfg.has(schemas.JobMISP) {
		run("exporter", func() error {
			return exportersvc.Run(gctx, p.cfg.Exporter, p.buses.pick(p.buses.Exporter), p.log, &p.exporter, p.settled)
		})
	}
	if p.cfg.has(schemas.JobCTR) || p.cfg.has(schemas.JobET) {
		run("writer", func() error {
			return writersvc.Run(gctx, p.cfg.Writer, p.buses.pick(p.buses.Writer), p.log, &p.writer, p.settled)
		})
	}
	return func() error {
		err := g.Wait()
		for _, f := range unhook {
			f()
		}
		return err
	}
}

// Failed is closed when a worker started by [Pipeline.StartWorkers]
// stopped while the pipeline was running.
func (p *Pipeline) Failed() <-chan struct{} { return p.failed }

// WaitStarted waits until every worker of [Pipeline.StartWorkers] passed
// its start-up checks (statuses resolved, MISP key accepted, ...) and
// consumes, so that nothing is fetched for a pipeline that cannot process
// it. It returns the failed worker's error if one stopped first.
func (p *Pipeline) WaitStarted(ctx context.Context) error {
	select {
	case <-p.started:
		return nil
	case <-p.failed:
		return context.Cause(p.gctx)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Supervise returns a context that ends with ctx or when a worker stops,
// its cause then the worker's error: give it to the fetcher.
func (p *Pipeline) Supervise(ctx context.Context) (context.Context, context.CancelFunc) {
	sctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(p.gctx, func() {
		select {
		case <-p.failed:
			cancel(context.Cause(p.gctx))
		default:
		}
	})
	return sctx, func() { stop(); cancel(nil) }
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

// RunOnce starts the workers, waits until they all passed their start-up
// checks, fetches once, waits until the workers have processed everything,
// stops them and returns the summary. A worker that stops ends it at once
// with that worker's error.
func (p *Pipeline) RunOnce(ctx context.Context, historical *time.Time) (Summary, error) {
	start := time.Now()
	wctx, stop := context.WithCancel(ctx)
	wait := p.StartWorkers(wctx)
	sctx, unsupervise := p.Supervise(ctx)
	var reps fetchersvc.Reports
	ferr := p.WaitStarted(sctx)
	if ferr == nil {
		reps, ferr = p.fetcher.RunOnce(sctx, historical)
	}
	var derr error
	if ferr == nil {
		derr = p.waitDrainedOrRefused(sctx)
	}
	unsupervise()
	stop()
	werr := wait()
	s := Summary{Reports: reps.Indicators, ET: reps.ET, Enricher: &p.enricher, Writer: &p.writer, Loader: &p.loader, Exporter: &p.exporter,
		DeadLetter: p.dead.Load(), Elapsed: time.Since(start)}
	if werr != nil {
		// The worker's reason, not the cancellations it caused.
		return s, werr
	}
	return s, errors.Join(ferr, derr)
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
		fmt.Fprintf(tw, "MISP: values merged by MISP with another (case, accents)\t%d\t\n", s.Exporter.Merged.Load())
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
		for _, l := range s.ET.Lists {
			state := "unchanged (nothing downloaded)"
			if l.Changed {
				state = fmt.Sprintf("%d addresses: %d added, %d expired, %d bad lines", l.Entries, l.Added, l.Removed, l.BadLines)
			}
			if l.Err != nil {
				state = "failed: " + l.Err.Error()
			}
			fmt.Fprintf(tw, "ET %s\t%s\t\n", l.List, state)
		}
		fmt.Fprintf(tw, "rules parsed\t%d\t\n", s.Loader.Rules.Load())
		fmt.Fprintf(tw, "signatures written (new or changed)\t%d\t\n", s.Writer.Signatures.Load())
	}
	fmt.Fprintf(tw, "dead letters\t%d\t\n", s.DeadLetter)
	fmt.Fprintf(tw, "elapsed\t%s\t\n", s.Elapsed.Round(time.Millisecond))
	_ = tw.Flush()
}
