// Package service wires the fetcher: its configuration, its ThreatQ source,
// its lease and its schedule. main.go and tqflow run both start it through
// [Run] or [RunOnce].
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/threatq"
	"github.com/tqflow/tqflow/schemas"
	"github.com/tqflow/tqflow/services/fetcher/internal/fetch"
	"github.com/tqflow/tqflow/services/fetcher/internal/rulesets"
)

// Config is the fetcher's configuration, from the environment.
type Config struct {
	// Instance names the job instance (the seed's -n).
	Instance string `env:"INSTANCE" envDefault:"default"`
	// Jobs lists the jobs this fetcher runs: ctr, misp, et.
	Jobs    []string       `env:"JOBS" envDefault:"ctr"`
	ThreatQ threatq.Config `envPrefix:"THREATQ_"`
	// SavedSearch is the Threat Library saved search (Data Collection)
	// whose indicators the CTR job enriches.
	SavedSearch string `env:"CTR_SAVED_SEARCH"`
	// MISPThreshold is the lowest score the MISP job exports.
	MISPThreshold float64 `env:"MISP_SCORE_THRESHOLD" envDefault:"0"`
	// Interval is how often the fetch runs when not --once. The seed
	// connectors ran from cron at most hourly.
	Interval time.Duration `env:"FETCH_INTERVAL" envDefault:"1h"`
	// ET configures the ET job: sources, flavour, rulesets, oinkcode.
	ET rulesets.Config
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if !bus.ValidToken(c.Instance) {
		errs = append(errs, fmt.Errorf("INSTANCE %q: want 1 to 64 letters, digits, - or _", c.Instance))
	}
	needTQ := false
	for _, j := range c.Jobs {
		switch j {
		case schemas.JobCTR:
			needTQ = true
			if c.SavedSearch == "" {
				errs = append(errs, errors.New("CTR_SAVED_SEARCH is required for the ctr job: the saved search whose indicators are enriched"))
			}
		case schemas.JobMISP:
			needTQ = true
			if c.MISPThreshold < 0 || c.MISPThreshold > 10 {
				errs = append(errs, fmt.Errorf("MISP_SCORE_THRESHOLD %v: want 0 to 10", c.MISPThreshold))
			}
		case schemas.JobET:
			if err := c.ET.Validate(); err != nil {
				errs = append(errs, err)
			}
		default:
			errs = append(errs, fmt.Errorf("JOBS: unknown job %q (want ctr, misp or et)", j))
		}
	}
	if needTQ {
		if err := c.ThreatQ.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Interval < time.Minute {
		errs = append(errs, fmt.Errorf("FETCH_INTERVAL %s: want at least 1m", c.Interval))
	}
	return errors.Join(errs...)
}

// Report is what one indicator fetch run did.
type Report = fetch.Report

// ETReport is what one ET fetch run did.
type ETReport = rulesets.Report

// Reports is what one run of every job did.
type Reports struct {
	// Indicators has the ctr and misp jobs' reports.
	Indicators map[string]Report
	// ET is the et job's, when it ran.
	ET *ETReport
}

// job is one job's fetch.
type job func(ctx context.Context, historical *time.Time, reps *Reports) error

// Fetcher runs the configured jobs' fetches.
type Fetcher struct {
	cfg    Config
	bus    *bus.Bus
	log    *slog.Logger
	jobs   map[string]job
	leases jetstream.KeyValue

	// OnSuccess, when set, is called after each job run that succeeded
	// (the last-successful-run metric).
	OnSuccess func(job, instance string, at time.Time)
	// OnPage, when set, is called after each page of an indicator job's
	// fetch with the indicators read so far, and when it ends (done).
	OnPage func(job string, read int, done bool)
	// Now, when set, is the clock the indicator jobs cut their windows
	// with (see fetch.Fetcher.Now); time.Now when nil. Tests set it with
	// the ThreatQ simulator's, to move past a second instead of waiting.
	Now func() time.Time
}

// New builds the fetcher's jobs. c is taken as valid
// ([Config.Validate]): config.Parse validates it where it is read, and
// whoever builds one in Go validates it.
func New(ctx context.Context, c Config, b *bus.Bus, log *slog.Logger) (*Fetcher, error) {
	var tq *threatq.Client
	if slices.Contains(c.Jobs, schemas.JobCTR) || slices.Contains(c.Jobs, schemas.JobMISP) {
		var err error
		if tq, err = threatq.New(c.ThreatQ); err != nil {
			return nil, fmt.Errorf("fetcher: %w", err)
		}
	}
	cps, err := b.KeyValue(ctx, bus.BucketCheckpoints)
	if err != nil {
		return nil, fmt.Errorf("fetcher: %w", err)
	}
	leases, err := b.KeyValue(ctx, bus.BucketLeases)
	if err != nil {
		return nil, fmt.Errorf("fetcher: %w", err)
	}
	f := &Fetcher{cfg: c, bus: b, log: log.With("service", "fetcher"), jobs: map[string]job{}, leases: leases}
	for _, name := range c.Jobs {
		if name == schemas.JobET {
			rf, err := rulesets.New(ctx, c.ET, c.Instance, b, f.log)
			if err != nil {
				return nil, fmt.Errorf("fetcher: %w", err)
			}
			f.jobs[name] = func(ctx context.Context, _ *time.Time, reps *Reports) error {
				rep, err := rf.RunOnce(ctx)
				reps.ET = &rep
				return err
			}
			continue
		}
		ff := &fetch.Fetcher{Bus: b, Checkpoints: fetch.Checkpoints{KV: cps}, Job: name, Instance: c.Instance, Log: f.log,
			OnPage: func(read int, done bool) {
				if f.OnPage != nil {
					f.OnPage(name, read, done)
				}
			},
			Now: func() time.Time {
				if f.Now != nil {
					return f.Now()
				}
				return time.Now()
			}}
		switch name {
		case schemas.JobCTR:
			ff.Source = &savedSearch{tq: tq, name: c.SavedSearch, log: f.log}
		case schemas.JobMISP:
			threshold := c.MISPThreshold
			ff.Source = &activeAbove{tq: tq, threshold: threshold}
			ff.Keep = func(d schemas.IndicatorData) bool { return keepForMISP(d, threshold) }
		}
		f.jobs[name] = func(ctx context.Context, historical *time.Time, reps *Reports) error {
			rep, err := ff.RunOnce(ctx, historical)
			reps.Indicators[name] = rep
			return err
		}
	}
	return f, nil
}

// keepForMISP re-checks, client-side, what the MISP job's server-side
// filter asked for: filter semantics vary by ThreatQ version.
func keepForMISP(d schemas.IndicatorData, threshold float64) bool {
	return d.Status == "Active" && d.Score >= threshold
}

// RunOnce runs every job once, holding each job's lease while it runs.
func (f *Fetcher) RunOnce(ctx context.Context, historical *time.Time) (Reports, error) {
	reps := Reports{Indicators: map[string]Report{}}
	err := f.schedule().RunOnce(ctx, f.bind(&reps), historical)
	return reps, err
}

// Run fetches every Interval until ctx ends. Only the holder of a job
// instance's lease fetches; other replicas stand by and take over within
// the lease TTL when it goes. A historical date applies to each run until
// one succeeds.
func (f *Fetcher) Run(ctx context.Context, historical *time.Time) error {
	jobs := map[string]fetch.Job{}
	for name, run := range f.jobs {
		jobs[name] = func(ctx context.Context, historical *time.Time) error {
			return run(ctx, historical, &Reports{Indicators: map[string]Report{}})
		}
	}
	return f.schedule().Run(ctx, jobs, historical)
}

// bind gives every job the one report they fill.
func (f *Fetcher) bind(reps *Reports) map[string]fetch.Job {
	jobs := map[string]fetch.Job{}
	for name, run := range f.jobs {
		jobs[name] = func(ctx context.Context, historical *time.Time) error { return run(ctx, historical, reps) }
	}
	return jobs
}

func (f *Fetcher) schedule() *fetch.Schedule {
	return &fetch.Schedule{
		Instance: f.cfg.Instance,
		Interval: f.cfg.Interval,
		Lease:    f.lease,
		Log:      f.log,
		OnSuccess: func(job string, at time.Time) {
			if f.OnSuccess != nil {
				f.OnSuccess(job, f.cfg.Instance, at)
			}
		},
	}
}

func (f *Fetcher) lease(job string) *fetch.Lease {
	host, _ := os.Hostname()
	return &fetch.Lease{
		KV:     f.leases,
		Key:    job + "." + f.cfg.Instance,
		Holder: host + "-" + strconv.Itoa(os.Getpid()),
		Every:  bus.LeaseTTL / 3,
	}
}
