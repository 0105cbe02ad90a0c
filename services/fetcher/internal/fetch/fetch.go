package fetch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/schemas"
)

// Window is the range of updated_at times a run reads: (After, Before).
type Window struct {
	After, Before time.Time
}

// Source reads indicators updated within a window, page by page, never
// holding the whole result.
type Source interface {
	Fetch(ctx context.Context, w Window, page func([]schemas.IndicatorData) error) error
}

// Overlap is how far before the checkpoint a run starts reading. ThreatQ
// timestamps have one-second resolution and its window is exclusive, so an
// indicator updated in the checkpoint's second after the last run read it
// would otherwise be missed; the overlap's repeats are dropped by the
// stream as duplicates (same Nats-Msg-Id).
const Overlap = 2 * time.Second

// Fetcher runs one job instance's fetches.
type Fetcher struct {
	Bus         *bus.Bus
	Checkpoints Checkpoints
	Source      Source
	// Job and Instance name what is fetched ("ctr", "default").
	Job, Instance string
	// Keep, when set, filters indicators client-side (the MISP job
	// re-checks status and score, whose server-side filters vary by
	// ThreatQ version).
	Keep func(schemas.IndicatorData) bool
	// Now returns the time; time.Now when nil.
	Now func() time.Time
	// Log receives progress.
	Log *slog.Logger
	// OnPage, when set, is called after each page with the indicators
	// read so far, and once more when the fetch ends (done), for a
	// progress bar.
	OnPage func(read int, done bool)
}

// Report is what one run did.
type Report struct {
	RunID      string
	Window     Window
	Historical bool
	// Read is how many indicators the source returned; Skipped how many
	// Keep dropped; Published how many the stream stored, Duplicates how
	// many of those it had already.
	Read, Skipped, Published, Duplicates int
	Elapsed                              time.Duration
}

// CheckpointKey returns the KV key of a job instance's checkpoint.
func CheckpointKey(job, instance string) string { return job + "." + instance }

// MsgID returns an indicator message's deterministic ID:
// <job>:<instance>:<indicator id>:<updated_at in unix seconds>. The job is
// part of it because both indicator jobs publish on one stream, often with
// the same instance name, and the stream deduplicates by ID alone. A
// historical run adds its run ID, because a historical run exists to
// process again what was processed before, which the stream would
// otherwise drop as duplicates.
func MsgID(job, instance string, d schemas.IndicatorData, historicalRun string) string {
	id := job + ":" + instance + ":" + strconv.FormatInt(d.ID, 10) + ":" + strconv.FormatInt(d.UpdatedAt.Unix(), 10)
	if historicalRun != "" {
		id += ":h" + historicalRun
	}
	return id
}

// RunOnce reads everything updated since the checkpoint (or since
// historical, when not nil) up to now, publishes it, waits until the stream
// has stored every message, and only then moves the checkpoint to now. A
// run that fails leaves the checkpoint where it was: the next run reads the
// same window again, and the stream drops what it already has.
func (f *Fetcher) RunOnce(ctx context.Context, historical *time.Time) (Report, error) {
	now := time.Now
	if f.Now != nil {
		now = f.Now
	}
	start := now()
	key := CheckpointKey(f.Job, f.Instance)
	cp, rev, err := f.Checkpoints.Load(ctx, key)
	if err != nil {
		return Report{}, err
	}
	rep := Report{RunID: strconv.FormatInt(start.UnixNano(), 36), Historical: historical != nil}
	// Up to the start of the current second, exclusive. What changes in
	// this second, before or during the run (tqflow's own writes included),
	// is the next run's: reading up to now would let an indicator changed
	// mid-run come round again at the window's end, read twice in one run.
	rep.Window.Before = start.UTC().Truncate(time.Second)
	switch {
	case historical != nil:
		rep.Window.After = historical.UTC()
	case !cp.Through.IsZero():
		rep.Window.After = cp.Through.Add(-Overlap)
	}
	histRun := ""
	if historical != nil {
		histRun = rep.RunID
	}
	log := f.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("job", f.Job, "instance", f.Instance, "run_id", rep.RunID)
	log.Info("fetch started", "after", rep.Window.After, "before", rep.Window.Before, "historical", historical != nil)
	subject := bus.IndicatorSubject(f.Job, f.Instance)
	batch := f.Bus.NewBatch(2000)
	lastLog := start
	// Pages are published by a goroutine of their own while the source
	// asks for the next page: the next request's latency hides the
	// publishing. One page waits at most, so memory stays bounded.
	pages := make(chan []schemas.IndicatorData, 1)
	published := make(chan error, 1)
	go func() {
		var perr error
		for page := range pages {
			if perr != nil {
				continue // Drain, so the source is never blocked.
			}
			perr = f.publish(ctx, batch, subject, page, &rep, histRun)
		}
		published <- perr
	}()
	err = f.Source.Fetch(ctx, rep.Window, func(page []schemas.IndicatorData) error {
		rep.Read += len(page)
		select {
		case pages <- page:
		case <-ctx.Done():
			return ctx.Err()
		}
		if f.OnPage != nil {
			f.OnPage(rep.Read, false)
		}
		if t := now(); t.Sub(lastLog) >= 5*time.Second {
			lastLog = t
			log.Info("fetch progress", "read", rep.Read)
		}
		return nil
	})
	close(pages)
	if f.OnPage != nil {
		f.OnPage(rep.Read, true)
	}
	err = errors.Join(err, <-published)
	// Wait for what was published even when the source failed: nothing
	// half-sent is left behind, and the checkpoint stays put either way.
	werr := batch.Wait(ctx)
	rep.Published, rep.Duplicates = batch.Stored()
	rep.Elapsed = now().Sub(start)
	if err := errors.Join(err, werr); err != nil {
		return rep, fmt.Errorf("fetch %s %s: %w", f.Job, f.Instance, err)
	}
	through := rep.Window.Before
	if historical == nil && !cp.Through.IsZero() && cp.Through.After(through) {
		through = cp.Through // Never move backwards (clock skew).
	}
	if err := f.Checkpoints.Save(ctx, key, Checkpoint{Through: through, RunID: rep.RunID, Published: rep.Published, At: now().UTC()}, rev); err != nil {
		return rep, err
	}
	log.Info("fetch done", "read", rep.Read, "skipped", rep.Skipped, "published", rep.Published,
		"duplicates", rep.Duplicates, "elapsed", rep.Elapsed.Round(time.Millisecond))
	return rep, nil
}

// publish publishes one page's indicators, skipping what Keep drops.
func (f *Fetcher) publish(ctx context.Context, batch *bus.Batch, subject string, page []schemas.IndicatorData, rep *Report, histRun string) error {
	for _, d := range page {
		if f.Keep != nil && !f.Keep(d) {
			rep.Skipped++
			continue
		}
		data, err := json.Marshal(schemas.Indicator{
			Schema: schemas.IndicatorV1, Job: f.Job, Instance: f.Instance, RunID: rep.RunID, Indicator: d,
		})
		if err != nil {
			return fmt.Errorf("encode indicator %d: %w", d.ID, err)
		}
		if err := batch.Add(ctx, bus.Outgoing{
			Subject: subject,
			ID:      MsgID(f.Job, f.Instance, d, histRun),
			Data:    data,
			Header:  nats.Header{bus.HeaderCorrelation: []string{rep.RunID}},
		}); err != nil {
			return err
		}
	}
	return nil
}
