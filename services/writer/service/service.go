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
	// Concurrency is how many batches this process writes at once.
	Concurrency int `env:"WRITER_CONCURRENCY" envDefault:"2"`
	// BatchSize is the most writes sent in one consume call (ThreatQ's
	// vendor SDK uses 500).
	BatchSize int `env:"WRITER_BATCH_SIZE" envDefault:"250"`
	// MaxAckPending caps unacknowledged writes across every writer replica.
	MaxAckPending int `env:"WRITER_MAX_ACK_PENDING" envDefault:"2000"`
	// MaxDeliver bounds attempts per write before it is dead-lettered.
	MaxDeliver int `env:"WRITER_MAX_DELIVER" envDefault:"10"`
	// AckWait is how long a delivery may go unacknowledged (a crashed
	// worker's messages come back after it); the runner keeps live work
	// from expiring with InProgress.
	AckWait time.Duration `env:"WRITER_ACK_WAIT" envDefault:"60s"`
	// DrainTimeout bounds how long shutdown waits for in-flight writes.
	DrainTimeout time.Duration `env:"WRITER_DRAIN_TIMEOUT" envDefault:"20s"`
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if err := c.ThreatQ.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Concurrency < 1 || c.Concurrency > 64 {
		errs = append(errs, fmt.Errorf("WRITER_CONCURRENCY %d: want 1 to 64", c.Concurrency))
	}
	if c.BatchSize < 1 || c.BatchSize > 500 {
		errs = append(errs, fmt.Errorf("WRITER_BATCH_SIZE %d: want 1 to 500", c.BatchSize))
	}
	if c.MaxAckPending < c.BatchSize {
		errs = append(errs, fmt.Errorf("WRITER_MAX_ACK_PENDING %d: want at least WRITER_BATCH_SIZE", c.MaxAckPending))
	}
	if c.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("WRITER_ACK_WAIT %s: want at least 1s", c.AckWait))
	}
	if c.MaxDeliver < 1 {
		errs = append(errs, fmt.Errorf("WRITER_MAX_DELIVER %d: want at least 1", c.MaxDeliver))
	}
	return errors.Join(errs...)
}

// ConsumerName is the writer's durable consumer.
const ConsumerName = "writer"

// Spec returns the writer's consumer.
func (c Config) Spec() bus.ConsumerSpec {
	return bus.ConsumerSpec{
		Stream:        bus.StreamWrites,
		Name:          ConsumerName,
		Subjects:      []string{"tq.writes.>"},
		AckWait:       c.AckWait,
		MaxDeliver:    c.MaxDeliver,
		MaxAckPending: c.MaxAckPending,
	}
}

// Stats counts what the writer did.
type Stats = write.Stats

// Run writes until ctx ends, then drains.
func Run(ctx context.Context, c Config, b *bus.Bus, log *slog.Logger, stats *Stats, onSettle func(bus.ConsumerSpec, *bus.Message, bus.Outcome, error)) error {
	tq, err := threatq.New(c.ThreatQ)
	if err != nil {
		return fmt.Errorf("writer: %w", err)
	}
	w := &write.Writer{ThreatQ: adapter{tq}, Stats: stats}
	log.Info("writer started", "threatq", c.ThreatQ.URL, "batch_size", c.BatchSize, "concurrency", c.Concurrency)
	return b.RunBatch(ctx, c.Spec(), w.Handle, bus.RunOptions{
		Concurrency:  c.Concurrency,
		BatchSize:    c.BatchSize,
		BatchWait:    50 * time.Millisecond,
		DrainTimeout: c.DrainTimeout,
		DoubleAck:    true,
		Logger:       log.With("service", "writer"),
		OnSettle:     onSettle,
	})
}
