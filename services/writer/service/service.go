// Package service wires the writer: its configuration, its ThreatQ client
// and its consumer. main.go and tqflow run both start it through [Run].
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tqflow/tqflow/pkg/bus"
	"github.com/tqflow/tqflow/pkg/threatq"
	"github.com/tqflow/tqflow/services/writer/internal/write"
)

// Config is the writer's configuration, from the environment.
type Config struct {
	ThreatQ threatq.Config `envPrefix:"THREATQ_"`
	// AckWait is how long a delivery may go unacknowledged (a crashed
	// worker's messages come back after it); the runner keeps live work
	// from expiring with InProgress.
	AckWait time.Duration `env:"WRITER_ACK_WAIT" envDefault:"60s"`
	// WorkerConfig holds WRITER_CONCURRENCY (batches this process writes
	// at once), WRITER_BATCH_SIZE (writes sent in one consume call;
	// ThreatQ's vendor SDK uses 500), WRITER_MAX_ACK_PENDING
	// (unacknowledged writes across every replica), WRITER_MAX_DELIVER and
	// WRITER_DRAIN_TIMEOUT, with their defaults.
	bus.WorkerConfig `envPrefix:"WRITER_" envDefaults:"CONCURRENCY=2,BATCH_SIZE=250,MAX_ACK_PENDING=2000,MAX_DELIVER=10,DRAIN_TIMEOUT=20s"`
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if err := c.ThreatQ.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("WRITER_ACK_WAIT %s: want at least 1s", c.AckWait))
	}
	if err := c.WorkerConfig.Validate("WRITER_", 500); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ConsumerName is the writer's durable consumer.
const ConsumerName = "writer"

// Spec returns the writer's consumer.
func (c Config) Spec() bus.ConsumerSpec {
	return c.WorkerConfig.Spec(bus.ConsumerSpec{
		Stream:   bus.StreamWrites,
		Name:     ConsumerName,
		Subjects: []string{"tq.writes.>"},
		AckWait:  c.AckWait,
	})
}

// Stats counts what the writer did.
type Stats = write.Stats

// Run writes until ctx ends, then drains. c is taken as valid
// ([Config.Validate]): config.Parse validates it where it is read, and
// whoever builds one in Go validates it.
func Run(ctx context.Context, c Config, b *bus.Bus, log *slog.Logger, stats *Stats, onSettle func(bus.Settlement)) error {
	tq, err := threatq.New(c.ThreatQ)
	if err != nil {
		return fmt.Errorf("writer: %w", err)
	}
	w := NewWriter(tq, stats)
	log.Info("writer started", "threatq", c.ThreatQ.URL, "batch_size", c.BatchSize, "concurrency", c.Concurrency)
	return b.RunBatch(ctx, c.Spec(), w.Handle, c.WorkerConfig.Options(bus.RunOptions{
		BatchWait: 50 * time.Millisecond,
		DoubleAck: true,
		Logger:    log.With("service", "writer"),
		OnSettle:  onSettle,
	}))
}
