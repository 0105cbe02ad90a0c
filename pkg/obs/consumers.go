package obs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tqflow/tqflow/pkg/logging"
)

// ConsumerRef names a durable consumer of a stream.
type ConsumerRef struct {
	Stream, Consumer string
}

// PollInterval is how often [Metrics.PollConsumers] asks the server.
const PollInterval = 15 * time.Second

// PollConsumers copies each consumer's pending, ack-pending and
// redelivered counts into the gauges now and then every interval
// ([PollInterval] when <= 0), until ctx ends; it then returns nil. A
// consumer the server cannot describe (not created yet, or NATS down) is
// logged at debug level, through the context's logger, and its gauges
// keep their last values.
func (m *Metrics) PollConsumers(ctx context.Context, js jetstream.JetStream, interval time.Duration, refs ...ConsumerRef) error {
	if interval <= 0 {
		interval = PollInterval
	}
	log := logging.FromContext(ctx)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		for _, ref := range refs {
			if err := m.pollConsumer(ctx, js, ref); err != nil && ctx.Err() == nil {
				log.Debug("poll consumer", "stream", ref.Stream, "consumer", ref.Consumer, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (m *Metrics) pollConsumer(ctx context.Context, js jetstream.JetStream, ref ConsumerRef) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cons, err := js.Consumer(ctx, ref.Stream, ref.Consumer)
	if err != nil {
		return fmt.Errorf("describe consumer %s on %s: %w", ref.Consumer, ref.Stream, err)
	}
	// js.Consumer fetched the info; CachedInfo saves a second request.
	ci := cons.CachedInfo()
	if ci == nil {
		if ci, err = cons.Info(ctx); err != nil {
			return fmt.Errorf("describe consumer %s on %s: %w", ref.Consumer, ref.Stream, err)
		}
	}
	m.pending.WithLabelValues(ref.Stream, ref.Consumer).Set(float64(ci.NumPending))
	m.ackPending.WithLabelValues(ref.Stream, ref.Consumer).Set(float64(ci.NumAckPending))
	m.redelivered.WithLabelValues(ref.Stream, ref.Consumer).Set(float64(ci.NumRedelivered))
	return nil
}

// checkpoint is the part of the fetcher's checkpoint (JSON in the
// checkpoint bucket, under "<job>.<instance>") that obs reads.
type checkpoint struct {
	Through time.Time `json:"through"`
	At      time.Time `json:"at"`
}

// LoadRuns sets the last-success gauge of every job instance that has a
// checkpoint in kv (the fetcher's checkpoint bucket), so that a restarted
// service reports the last run before it started. A key that is not
// "<job>.<instance>" or a value that does not decode is skipped and
// reported in the joined error; the others are still loaded.
func (m *Metrics) LoadRuns(ctx context.Context, kv jetstream.KeyValue) error {
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("list checkpoints: %w", err)
	}
	defer func() { _ = lister.Stop() }()
	var errs []error
	for key := range lister.Keys() {
		job, instance, ok := strings.Cut(key, ".")
		if !ok {
			errs = append(errs, fmt.Errorf("load checkpoint %q: want a <job>.<instance> key", key))
			continue
		}
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // Deleted since listed.
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("load checkpoint %s: %w", key, err))
			continue
		}
		var cp checkpoint
		if err := json.Unmarshal(e.Value(), &cp); err != nil {
			errs = append(errs, fmt.Errorf("decode checkpoint %s: %w", key, err))
			continue
		}
		at := cp.At
		if at.IsZero() {
			at = cp.Through
		}
		if !at.IsZero() {
			m.RunDone(job, instance, at)
		}
	}
	return errors.Join(errs...)
}
