package fetch

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Job is one run of one job's fetch. historical, when set, is the date a
// --historical run reads from.
type Job func(ctx context.Context, historical *time.Time) error

// Schedule runs a fetcher's jobs, each only while its fetcher holds the
// job instance's lease: once ([Schedule.RunOnce]) or every Interval
// ([Schedule.Run]). Its fields are set before the first run and not
// changed after; one Schedule may run RunOnce and Run, not both at once.
type Schedule struct {
	// Instance names the job instance, for the lease key and the logs.
	Instance string
	// Interval is the time between the end of one run and the start of
	// the next.
	Interval time.Duration
	// Lease returns a fresh lease for a job of this instance.
	Lease func(job string) *Lease
	// Log receives the standby, active and failure messages.
	Log *slog.Logger
	// OnSuccess, when set, is called after each job run that succeeded.
	OnSuccess func(job string, at time.Time)
}

func (s *Schedule) succeeded(job string) {
	if s.OnSuccess != nil {
		s.OnSuccess(job, time.Now())
	}
}

// RunOnce runs every job once, holding each job's lease while it runs. A
// job whose lease another fetcher holds is not run: its error says so.
// Errors of all jobs are joined.
func (s *Schedule) RunOnce(ctx context.Context, jobs map[string]Job, historical *time.Time) error {
	var errs []error
	for name, run := range jobs {
		lease := s.Lease(name)
		if err := lease.Acquire(ctx); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := run(ctx, historical); err != nil {
			errs = append(errs, err)
		} else {
			s.succeeded(name)
		}
		if rerr := lease.Release(context.WithoutCancel(ctx)); rerr != nil {
			s.Log.Warn("release lease", "job", name, "err", rerr)
		}
	}
	return errors.Join(errs...)
}

// Run runs every job every Interval until ctx ends. Only the holder of a
// job instance's lease runs it; other fetchers stand by, trying again every
// lease renewal period, and take over within the lease TTL when the holder
// goes (at once when it released the lease). A historical date applies to
// each run of a job until one succeeds. Run returns nil once ctx ended:
// fetch failures are logged and retried on the next run.
func (s *Schedule) Run(ctx context.Context, jobs map[string]Job, historical *time.Time) error {
	errc := make(chan error, len(jobs))
	for name, run := range jobs {
		go func() { errc <- s.runJob(ctx, name, run, historical) }()
	}
	var errs []error
	for range jobs {
		errs = append(errs, <-errc)
	}
	return errors.Join(errs...)
}

func (s *Schedule) runJob(ctx context.Context, name string, run Job, historical *time.Time) error {
	log := s.Log.With("job", name, "instance", s.Instance)
	lease := s.Lease(name)
	standby := false
	for {
		if err := lease.Acquire(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !standby {
				log.Info("standing by: another fetcher is active", "err", err)
				standby = true
			}
			if !sleep(ctx, lease.Every) {
				return nil
			}
			continue
		}
		standby = false
		log.Info("active: holding the lease")
		hctx, cancel := context.WithCancel(ctx)
		held := make(chan struct{})
		go func() {
			defer close(held)
			lease.Hold(hctx, func(err error) {
				log.Error("lease lost: stopping fetches until it is back", "err", err)
				cancel()
			})
		}()
		for hctx.Err() == nil {
			if err := run(hctx, historical); err != nil {
				if hctx.Err() == nil {
					log.Error("fetch failed; the next run reads the same window again", "err", err, "historical", historical != nil)
				}
			} else {
				s.succeeded(name)
				// A historical date holds until a run with it succeeded: a
				// failed first run must not leave only the new window.
				historical = nil
			}
			if !sleep(hctx, s.Interval) {
				break
			}
		}
		cancel()
		// Hold renews the lease's revision: it must have stopped before the
		// lease is taken again or released with the revision it last set.
		<-held
		if ctx.Err() != nil {
			if err := lease.Release(context.WithoutCancel(ctx)); err != nil {
				log.Debug("release lease", "err", err)
			}
			return nil
		}
	}
}

// sleep waits d or until ctx ends, and reports whether it waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
